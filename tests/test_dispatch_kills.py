"""The dispatcher's promise, proven with real processes: every message reaches the provider once
and is recorded as what the provider did, while dispatchers are SIGKILLed at random moments,
two of them run at once, the provider is slow (some requests outlast the lease), refuses or
garbles a quarter of the requests, a campaign is stopped halfway and a template raises for some
customers. The only duplicates allowed are messages of requests open when a dispatcher died.

The number of kills is small for CI; `make soak` runs many more (NUDGEFLOW_SOAK_KILLS)."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.campaigns import import_file
from engine.db import write_transaction
from engine.executor import run
from engine.models import Activity, Campaign, Customer, Message
from tests.accepting_fake import Faults, accepting_provider
from tests.conftest import Db
from tests.world import customer, insert_world

ROOT = Path(__file__).resolve().parent.parent
KILLS = int(os.environ.get("NUDGEFLOW_SOAK_KILLS", "8"))
LEASE = 2  # seconds; some requests take 3
DAY = date(2025, 6, 2)
GROUPS = 12  # distinct email bodies, so SendGrid requests carry several messages each

DOC = {
    "version": 1,
    "segments": [],
    "templates": [
        {"key": "news", "channel": "email", "subject": "News for {{ customer.first_name }}",
         "body": "Hello group {{ customer.attributes.group }}"},
        {"key": "points", "channel": "email", "subject": "Your points",
         "body": "Share: {{ 100 // customer.attributes.points }}"},
        {"key": "sms", "channel": "sms", "body": "Hi {{ customer.first_name }}"},
        {"key": "promo", "channel": "email", "subject": "Promo",
         "body": "Promo for group {{ customer.attributes.group }}"},
    ],
    "campaigns": [
        {"key": key, "name": key, "status": "active", "purpose": "service",
         "graph": {"nodes": [
             {"id": "t", "type": "trigger", "config": {"kind": "manual"}},
             {"id": "m", "type": "send-message", "config": {"template": template}}],
             "edges": [["t", "m"]]}}
        for key, template in (("news", "news"), ("points", "points"), ("sms", "sms"),
                              ("promo", "promo"))],
}


def _world(db: Db, tmp_path: Path, people: int) -> None:
    with write_transaction(db.engine) as conn:
        insert_world(conn, [customer(
            f"C{i:04d}", first_name=f"P{i}", email=f"p{i}@example.com", email_valid=True,
            phone=f"+2782{i:07d}", phone_valid=True, marketing_consent=True,
            attributes={"group": i % GROUPS, "points": 0 if i % 10 == 3 else 1 + i % 7})
            for i in range(people)])
    path = tmp_path / "campaigns.json"
    path.write_text(json.dumps(DOC))
    import_file(db.engine, path)
    for key in ("promo", "news", "points", "sms"):  # promo first: STOP comes in its midst
        result = run(db.engine, key, DAY, manual=True, now=datetime(2025, 6, 2, 6))
        assert result.status == "completed", result.error


def _messages(db: Db) -> dict[int, Any]:
    with db.engine.connect() as conn:
        return {m.id: m for m in conn.execute(
            select(Message.id, Message.status, Message.channel, Message.address,
                   Message.last_error, Message.attempts, Campaign.key.label("campaign"),
                   Customer.attributes)
            .join(Campaign, Campaign.id == Message.campaign_id)
            .join(Customer, Customer.id == Message.customer_id))}


def _env(cli_env: dict[str, str], provider: str, **settings: str) -> dict[str, str]:
    """Dispatchers sending email through SendGrid and SMS through Twilio, both the fake
    `provider`, with a LEASE-second lease and NUDGEFLOW_<name> `settings`."""
    return {**os.environ, **cli_env, "PYTHONPATH": str(ROOT),
            "NUDGEFLOW_EMAIL_PROVIDER": "sendgrid", "NUDGEFLOW_SENDGRID_API_KEY": "SG.test",
            "NUDGEFLOW_SENDGRID_HOST": provider,
            "NUDGEFLOW_SMS_PROVIDER": "twilio", "NUDGEFLOW_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "NUDGEFLOW_TWILIO_AUTH_TOKEN": "t", "NUDGEFLOW_TWILIO_FROM": "+15005550006",
            "NUDGEFLOW_TWILIO_BASE_URL": provider, "NUDGEFLOW_DISPATCH_LEASE_SECONDS": str(LEASE),
            **{f"NUDGEFLOW_{k}": v for k, v in settings.items()}}


def _start(env: dict[str, str], log: Path, batch_size: int = 40) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "engine", "dispatch", "--interval", "1",
             "--batch-size", str(batch_size)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _done(db: Db) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Message).where(
            Message.status.in_(("sent", "failed")))).scalar_one())


def _progress(db: Db, since: int, deadline: float) -> None:
    """Wait until a few more outcomes are recorded than `since`."""
    while _done(db) < since + 5 and time.monotonic() < deadline:
        time.sleep(0.1)


def _settle(db: Db, deadline: float) -> None:
    while time.monotonic() < deadline:
        with db.engine.connect() as conn:
            waiting = conn.execute(select(func.count()).select_from(Message).where(
                Message.status.in_(("queued", "sending", "held")))).scalar_one()
        if not waiting:
            return
        time.sleep(0.5)
    raise AssertionError(f"{waiting} message(s) still queued, held or sending")


@pytest.mark.slow
def test_killed_dispatchers_send_each_message_once(db: Db, tmp_path: Path,
                                                   cli_env: dict[str, str]) -> None:
    _world(db, tmp_path, people=160)
    before = _messages(db)
    assert Counter(m.status for m in before.values()) == {"queued": 640}
    rng = random.Random(12)
    kills: list[float] = []
    log = tmp_path / "dispatchers.log"
    with accepting_provider(Faults(refuse=0.25, slow=0.05, slow_seconds=LEASE * 1.5)) as fake:
        env = _env(cli_env, fake.url, RETRY_BACKOFF_SECONDS="0", MAX_ATTEMPTS="100",
                   DISPATCH_IN_FLIGHT="2")
        dispatchers = [_start(env, log), _start(env, log)]
        stop_output = ""
        try:
            for k in range(KILLS):
                # Kill while the dispatchers are at work: once outcomes have moved on since
                # the last kill, at a random moment within the next second.
                _progress(db, _done(db), time.monotonic() + 60)
                time.sleep(rng.uniform(0, 1.0))
                victim = rng.randrange(len(dispatchers))
                kills.append(time.monotonic())
                dispatchers[victim].send_signal(signal.SIGKILL)
                dispatchers[victim].wait()
                dispatchers[victim] = _start(env, log)
                if k == KILLS // 2:  # STOP, while the dispatchers are at it
                    stop = subprocess.run(
                        [sys.executable, "-m", "engine", "messages", "cancel",
                         "--campaign", "promo"],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
                    assert stop.returncode == 0, stop.stderr
                    stop_output = stop.stdout
            _settle(db, time.monotonic() + 180)
        finally:
            for d in dispatchers:
                d.kill()
                d.wait()
        accepted = fake.times()
        excused = fake.open_at(kills, slack=1.5)
        print(f"\nkills {len(kills)}, accepted {sum(accepted.values())} "
              f"for {len(accepted)} recipients, refused {dict(fake.refused)}")
    after = _messages(db)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]

    # Who the provider took, by our message id (email) or phone number (SMS).
    def times(m: Any) -> int:
        return accepted[m.address] if m.channel == "sms" else accepted[str(m.id)]

    statuses = Counter(m.status for m in after.values())
    assert set(statuses) <= {"sent", "failed", "cancelled"}, statuses  # none lost or stuck
    duplicates = [m for m in after.values() if times(m) > 1]
    print(f"statuses {dict(statuses)}, duplicates {len(duplicates)}, "
          f"recipients in requests open at a kill {len(excused)}")
    for m in duplicates:  # only a request open at a kill may be repeated
        assert (m.address if m.channel == "sms" else str(m.id)) in excused, m

    for m in after.values():
        if m.status == "sent":
            assert times(m) >= 1, m
        elif (m.address if m.channel == "sms" else str(m.id)) not in excused:
            # failed or cancelled: the provider never took it (unless a request carrying it
            # was open at a kill: then nobody can know, and a later refusal or STOP stands)
            assert times(m) == 0, m
    # The template raises for exactly the customers with 0 points: those fail, alone, with
    # the reason; every other message of that campaign went out.
    failed = {m.id for m in after.values() if m.status == "failed"}
    assert failed == {m.id for m in after.values()
                      if m.campaign == "points" and m.attributes["points"] == 0}
    assert all("ZeroDivisionError" in after[i].last_error for i in failed)
    # STOP cancelled only promo messages, and said how many it left to the dispatchers.
    cancelled = {m.id for m in after.values() if m.status == "cancelled"}
    assert {after[i].campaign for i in cancelled} <= {"promo"}
    said = re.fullmatch(r"(\d+) message\(s\) cancelled, (\d+) already on their way "
                        r"\(they end as the provider answers\)\n", stop_output)
    assert said and int(said[1]) == len(cancelled), stop_output

    # One activity per outcome, of the outcome's kind.
    with db.engine.connect() as conn:
        logged = Counter(conn.execute(select(Activity.message_id, Activity.kind).where(
            Activity.kind.in_(("message_sent", "message_failed", "message_cancelled")))).all())
    kind = {"sent": "message_sent", "failed": "message_failed",
            "cancelled": "message_cancelled"}
    assert logged == Counter({(m.id, kind[m.status]): 1 for m in after.values()})


def test_a_request_longer_than_the_lease_is_not_sent_twice(db: Db, tmp_path: Path,
                                                          cli_env: dict[str, str]) -> None:
    """No crash at all: every request takes longer than the lease. The heartbeat keeps the
    batches, so the other dispatcher never takes them over, and nothing goes twice."""
    _world(db, tmp_path, people=12)
    with accepting_provider(Faults(refuse=0, slow=1.0, slow_seconds=LEASE * 1.5)) as fake:
        env = _env(cli_env, fake.url, DISPATCH_IN_FLIGHT="4")
        log = tmp_path / "dispatchers.log"
        dispatchers = [_start(env, log, batch_size=4), _start(env, log, batch_size=4)]
        try:
            _settle(db, time.monotonic() + 180)
        finally:
            for d in dispatchers:
                d.kill()
                d.wait()
        accepted = fake.times()
    after = _messages(db)
    # (customer 3 has 0 points: the points template cannot be rendered for them)
    assert Counter(m.status for m in after.values()) == {"sent": 47, "failed": 1}
    assert accepted and max(accepted.values()) == 1
    assert sum(accepted.values()) == 47
    assert {m.attempts for m in after.values()} == {1}
