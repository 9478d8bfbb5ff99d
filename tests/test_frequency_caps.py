"""Frequency caps: at most `max` messages of a channel (and purpose) per customer in `days`
days, across campaigns, enforced when messages are claimed, also with two real dispatchers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from engine.campaigns import import_file
from engine.config import Settings
from engine.db import write_transaction
from engine.executor import run
from engine.models import Activity, Campaign, Customer, Message
from engine.outbox import dispatch
from engine.workspace import set_setting
from tests.accepting_fake import Faults, accepting_provider
from tests.conftest import Db
from tests.fakes import RecordingChannel
from tests.webapp import token_for
from tests.world import customer, insert_world

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2025, 6, 2)
NOW = datetime(2025, 6, 2, 12, 0)
SETTINGS = Settings(public_url="https://nf.example", secret_key="test-secret")
TWO_A_WEEK = {"channel": "sms", "max": 2, "days": 7, "over": "skip"}
TEMPLATES = [{"key": "sms", "channel": "sms", "body": "Hi {{ customer.first_name }}"},
             {"key": "mail", "channel": "email", "subject": "Hi", "body": "Hi"}]


def campaign(key: str, purpose: str = "marketing", template: str = "sms",
             **message: Any) -> dict[str, Any]:
    return {"key": key, "name": key, "status": "active", "purpose": purpose,
            "graph": {"nodes": [{"id": "t", "type": "trigger", "config": {"kind": "manual"}},
                                {"id": "m", "type": "send-message",
                                 "config": {"template": template, **message}}],
                      "edges": [["t", "m"]]}}


def world(db: Db, tmp_path: Path, caps: list[dict[str, Any]], campaigns: list[dict[str, Any]],
          people: int = 2) -> None:
    with write_transaction(db.engine) as conn:
        insert_world(conn, [customer(f"C{i}", first_name=f"P{i}", phone=f"+2782{i:07d}",
                                     phone_valid=True, email=f"p{i}@example.com",
                                     email_valid=True, marketing_consent=True)
                            for i in range(people)])
        set_setting(conn, "frequency_caps", caps)
    path = tmp_path / "doc.json"
    path.write_text(json.dumps({"version": 1, "templates": TEMPLATES, "campaigns": campaigns}))
    import_file(db.engine, path)
    for c in campaigns:
        result = run(db.engine, c["key"], DAY, manual=True, now=datetime(2025, 6, 2, 6))
        assert result.status == "completed", result.error


def outcomes(db: Db) -> dict[tuple[str, str], tuple[str, str | None]]:
    """(customer, campaign) -> (status, skip reason)."""
    with db.engine.connect() as conn:
        return {(r.external_id, r.key): (r.status, r.skip_reason) for r in conn.execute(
            select(Customer.external_id, Campaign.key, Message.status, Message.skip_reason)
            .join(Customer, Customer.id == Message.customer_id)
            .join(Campaign, Campaign.id == Message.campaign_id))}


def test_two_sms_a_week_let_exactly_two_through_across_three_campaigns(db: Db,
                                                                      tmp_path: Path) -> None:
    world(db, tmp_path, [TWO_A_WEEK], [campaign(k) for k in ("a", "b", "c")])
    sms = RecordingChannel()
    dispatch(db.engine, SETTINGS, {"email": RecordingChannel(), "sms": sms}, now=NOW,
             batch_size=1)
    assert Counter(m.to for m in sms.sent) == {"+27820000000": 2, "+27820000001": 2}
    assert outcomes(db) == {(c, k): ("sent", None) if k in "ab" else
                            ("skipped", "frequency_cap")
                            for c in ("C0", "C1") for k in "abc"}
    with db.engine.connect() as conn:
        skipped = conn.execute(select(Activity.summary, Activity.details)
                               .where(Activity.kind == "message_skipped")).all()
    assert [s.summary for s in skipped] == ["SMS not sent: frequency cap reached"] * 2
    assert {s.details["reason"] for s in skipped} == {"frequency_cap"}
    # A week later there is room again: a fourth campaign goes out.
    path = tmp_path / "more.json"
    path.write_text(json.dumps({"version": 1, "campaigns": [campaign("d")]}))
    import_file(db.engine, path)
    run(db.engine, "d", DAY + timedelta(days=8), manual=True, now=NOW + timedelta(days=8))
    dispatch(db.engine, SETTINGS, {"email": RecordingChannel(), "sms": sms},
             now=NOW + timedelta(days=8))
    assert Counter(m.to for m in sms.sent) == {"+27820000000": 3, "+27820000001": 3}


def test_over_a_delay_cap_a_message_waits_for_the_oldest_to_leave_the_window(
        db: Db, tmp_path: Path) -> None:
    # a's node has no quiet hours, so it goes at 22:00; b's takes the workspace's.
    world(db, tmp_path, [{**TWO_A_WEEK, "max": 1, "over": "delay"}],
          [campaign("a", quiet_hours=None), campaign("b")], people=1)
    sms = RecordingChannel()
    dispatch(db.engine, SETTINGS, {"email": RecordingChannel(), "sms": sms}, now=NOW)
    assert len(sms.sent) == 1
    with db.engine.connect() as conn:
        waiting = conn.execute(select(Message.status, Message.send_after)
                               .where(Message.status != "sent")).one()
    assert waiting == ("queued", NOW + timedelta(days=7))
    dispatch(db.engine, SETTINGS, {"email": RecordingChannel(), "sms": sms},
             now=NOW + timedelta(days=7, seconds=1))
    assert len(sms.sent) == 2


def test_a_message_delayed_by_a_cap_also_waits_out_the_quiet_hours(db: Db,
                                                                   tmp_path: Path) -> None:
    # a's node has no quiet hours, so it goes at 22:00; b's takes the workspace's.
    world(db, tmp_path, [{**TWO_A_WEEK, "max": 1, "over": "delay"}],
          [campaign("a", quiet_hours=None), campaign("b")], people=1)
    with write_transaction(db.engine) as conn:
        conn.execute(Customer.__table__.update().values(timezone="Europe/Vilnius"))
        set_setting(conn, "quiet_hours", {"sms": {"start": "21:00", "end": "08:00"}})
    evening = datetime(2025, 6, 2, 19, 0)  # 22:00 in Vilnius
    dispatch(db.engine, SETTINGS, {"email": RecordingChannel(), "sms": RecordingChannel()},
             now=evening)
    with db.engine.connect() as conn:
        waiting = conn.execute(select(Message.send_after)
                               .where(Message.status == "queued")).scalar_one()
    # A week after the first went, 22:00 in Vilnius: inside the quiet hours, so 08:00 next day.
    assert waiting == datetime(2025, 6, 10, 5, 0)


def test_caps_count_their_channel_and_purpose_and_service_nodes_may_ignore_them(
        db: Db, tmp_path: Path) -> None:
    world(db, tmp_path, [{"channel": "sms", "purpose": "marketing", "max": 1, "days": 7}], [
        campaign("promo"), campaign("promo2"), campaign("mail", template="mail"),
        campaign("service", purpose="service"),
        campaign("urgent", ignore_caps=True)], people=1)
    dispatch(db.engine, SETTINGS, {"email": RecordingChannel(), "sms": RecordingChannel()},
             now=NOW, batch_size=1)
    assert outcomes(db) == {
        ("C0", "promo"): ("sent", None),
        ("C0", "promo2"): ("skipped", "frequency_cap"),
        ("C0", "mail"): ("sent", None),  # another channel
        ("C0", "service"): ("sent", None),  # another purpose
        ("C0", "urgent"): ("sent", None),  # ignore_caps
    }


def test_frequency_caps_settings_are_validated(app: Flask, db: Db) -> None:
    client, admin = app.test_client(), token_for(db, "admin")
    bad = client.put("/api/v1/settings", json={"frequency_caps": [{**TWO_A_WEEK,
                                                                   "over": "drop"}]},
                     headers=admin)
    assert bad.status_code == 400
    assert bad.json["error"]["details"][0]["path"] == "$.frequency_caps[0].over"
    good = client.put("/api/v1/settings", json={"frequency_caps": [TWO_A_WEEK]}, headers=admin)
    assert good.status_code == 200
    assert good.json["frequency_caps"] == [{**TWO_A_WEEK, "purpose": None}]
    page = client.get("/settings", headers=admin).get_data(as_text=True)
    assert 'id="frequency_caps"' in page


@pytest.mark.slow
def test_two_real_dispatchers_let_exactly_two_through(db: Db, tmp_path: Path,
                                                     cli_env: dict[str, str]) -> None:
    # Few customers, many campaigns, small batches: the two dispatchers' claims keep meeting
    # on the same customers.
    people, campaigns = 4, "abcdefgh"
    world(db, tmp_path, [TWO_A_WEEK], [campaign(k) for k in campaigns], people=people)
    log = tmp_path / "dispatchers.log"
    with accepting_provider(Faults(refuse=0, slow=0, delay=(0.0, 0.01))) as fake:
        env = {**os.environ, **cli_env, "PYTHONPATH": str(ROOT),
               "NUDGEFLOW_SMS_PROVIDER": "twilio", "NUDGEFLOW_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
               "NUDGEFLOW_TWILIO_AUTH_TOKEN": "t", "NUDGEFLOW_TWILIO_FROM": "+15005550006",
               "NUDGEFLOW_TWILIO_BASE_URL": fake.url}
        with log.open("ab") as out:
            dispatchers = [subprocess.Popen(
                [sys.executable, "-m", "engine", "dispatch", "--interval", "1",
                 "--batch-size", "3"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
                for _ in range(2)]
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with db.engine.connect() as conn:
                    left = conn.execute(select(func.count()).select_from(Message).where(
                        Message.status.in_(("queued", "sending")))).scalar_one()
                if not left:
                    break
                time.sleep(0.3)
            assert not left, f"{left} message(s) still queued or sending"
        finally:
            for d in dispatchers:
                d.kill()
                d.wait()
        accepted = fake.times()
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    assert accepted == {f"+2782{i:07d}": 2 for i in range(people)}
    statuses = Counter(s for s, _ in outcomes(db).values())
    assert statuses == {"sent": 2 * people, "skipped": (len(campaigns) - 2) * people}
