"""Quiet hours: a message due inside the window (read in the customer's own time zone, else
the campaign's) is queued for when the window ends there, and the activity log says so."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from engine.campaigns import import_file
from engine.db import write_transaction
from engine.errors import ValidationError
from engine.executor import run
from engine.importing import import_customers
from engine.messaging.quiet_hours import quiet_until
from engine.models import Activity, Customer, Message
from engine.workspace import set_setting
from tests.conftest import Db
from tests.webapp import token_for
from tests.world import customer, insert_world

NIGHT = {"start": "21:00", "end": "08:00"}
SMS = {"key": "hi", "channel": "sms", "body": "Hi {{ customer.first_name }}"}


def campaign(message: dict[str, Any], key: str = "evening",
             tz: str = "Europe/Vilnius") -> dict[str, Any]:
    return {"key": key, "name": key, "status": "active", "purpose": "service", "timezone": tz,
            "graph": {"nodes": [{"id": "t", "type": "trigger", "config": {"kind": "manual"}},
                                {"id": "m", "type": "send-message", "config": message}],
                      "edges": [["t", "m"]]}}


def load(db: Db, tmp_path: Path, *campaigns: dict[str, Any]) -> None:
    path = tmp_path / "doc.json"
    path.write_text(json.dumps({"version": 1, "templates": [SMS], "campaigns": list(campaigns)}))
    import_file(db.engine, path)


@pytest.fixture
def people(db: Db) -> Db:
    with write_transaction(db.engine) as conn:
        insert_world(conn, [customer(ext, first_name=ext, phone=phone, phone_valid=True)
                            for ext, phone in (("ona", "+37061234567"), ("thabo", "+27821234567"),
                                               ("jan", "+12025550123"), ("nobody", "+37061234568"))])
        for ext, tz in (("ona", "Europe/Vilnius"), ("thabo", "Africa/Johannesburg"),
                        ("jan", "America/New_York")):
            conn.execute(Customer.__table__.update().where(Customer.external_id == ext)
                         .values(timezone=tz))
    return db


def queued(db: Db) -> dict[str, datetime]:
    with db.engine.connect() as conn:
        return dict(conn.execute(select(Customer.external_id, Message.send_after)
                                 .join(Customer, Customer.id == Message.customer_id)).all())


def summaries(db: Db) -> dict[str, str]:
    with db.engine.connect() as conn:
        return dict(conn.execute(select(Customer.external_id, Activity.summary)
                                 .join(Customer, Customer.id == Activity.customer_id)).all())


def test_a_message_due_at_22_waits_until_08_in_each_customers_zone(people: Db,
                                                                  tmp_path: Path) -> None:
    load(people, tmp_path, campaign({"template": "hi", "quiet_hours": NIGHT,
                                     "send_at": {"mode": "at", "time": "22:00"}}))
    result = run(people.engine, "evening", date(2025, 6, 2), manual=True,
                 now=datetime(2025, 6, 2, 12, 0))
    assert result.status == "completed", result.error
    # 22:00 in Vilnius (UTC+3) is 19:00 UTC: 22:00 for ona and nobody (the campaign's zone),
    # 21:00 for thabo in Johannesburg (UTC+2), 15:00 for jan in New York (outside the window).
    assert queued(people) == {
        "ona": datetime(2025, 6, 3, 5, 0),  # 08:00 in Vilnius
        "nobody": datetime(2025, 6, 3, 5, 0),
        "thabo": datetime(2025, 6, 3, 6, 0),  # 08:00 in Johannesburg
        "jan": datetime(2025, 6, 2, 19, 0),
    }
    log = summaries(people)
    assert log["ona"] == "SMS queued (hi) for 2025-06-03 08:00 Europe/Vilnius (quiet hours)"
    assert log["thabo"] == ("SMS queued (hi) for 2025-06-03 08:00 Africa/Johannesburg "
                            "(quiet hours)")
    assert log["jan"] == "SMS queued (hi) for 2025-06-02 19:00 UTC"


def test_the_workspace_default_applies_per_channel_and_a_node_can_turn_it_off(
        people: Db, tmp_path: Path) -> None:
    with write_transaction(people.engine) as conn:
        set_setting(conn, "quiet_hours", {"sms": NIGHT, "email": None})
    late = {"mode": "at", "time": "23:30"}
    load(people, tmp_path, campaign({"template": "hi", "send_at": late}, "default"),
         campaign({"template": "hi", "send_at": late, "quiet_hours": None}, "off"))
    run(people.engine, "default", date(2025, 6, 2), manual=True, now=datetime(2025, 6, 2, 12))
    assert queued(people)["ona"] == datetime(2025, 6, 3, 5, 0)
    with write_transaction(people.engine) as conn:
        conn.execute(Message.__table__.delete())
        conn.execute(Activity.__table__.delete())
    run(people.engine, "off", date(2025, 6, 2), manual=True, now=datetime(2025, 6, 2, 12))
    assert queued(people)["ona"] == datetime(2025, 6, 2, 20, 30)  # 23:30 in Vilnius


def test_quiet_hours_keep_their_local_hours_across_a_dst_change(people: Db,
                                                               tmp_path: Path) -> None:
    # Vilnius moves from UTC+2 to UTC+3 at 03:00 on 30 March 2025, inside the window.
    load(people, tmp_path, campaign({"template": "hi", "quiet_hours": NIGHT,
                                     "send_at": {"mode": "at", "time": "22:00"}}))
    run(people.engine, "evening", date(2025, 3, 29), manual=True, now=datetime(2025, 3, 29, 9))
    assert queued(people)["ona"] == datetime(2025, 3, 30, 5, 0)  # 08:00 EEST, not 09:00


@pytest.mark.parametrize(("due", "window", "until"), [
    (datetime(2025, 6, 2, 19, 0), NIGHT, datetime(2025, 6, 3, 5, 0)),  # 22:00 -> 08:00 tomorrow
    (datetime(2025, 6, 2, 22, 30), NIGHT, datetime(2025, 6, 3, 5, 0)),  # 01:30 -> 08:00 today
    (datetime(2025, 6, 2, 5, 0), NIGHT, None),  # 08:00 exactly: the window has ended
    (datetime(2025, 6, 2, 17, 59), NIGHT, None),  # 20:59
    (datetime(2025, 6, 2, 10, 0), {"start": "12:00", "end": "14:00"},
     datetime(2025, 6, 2, 11, 0)),  # 13:00 -> 14:00, same day
    (datetime(2025, 6, 2, 8, 0), {"start": "12:00", "end": "14:00"}, None),
])
def test_when_a_message_due_in_vilnius_may_go(due: datetime, window: dict[str, str],
                                              until: datetime | None) -> None:
    assert quiet_until(due, "Europe/Vilnius", window) == until


def test_a_node_with_bad_quiet_hours_is_refused(people: Db, tmp_path: Path) -> None:
    for bad, where in (({"start": "25:00", "end": "08:00"}, "start"),
                       ({"start": "08:00", "end": "08:00"}, "end")):
        with pytest.raises(ValidationError) as caught:
            load(people, tmp_path, campaign({"template": "hi", "quiet_hours": bad}))
        assert f"quiet_hours.{where}" in str(caught.value), str(caught.value)


def test_quiet_hours_settings_are_validated_and_shown(app: Flask, db: Db) -> None:
    client, admin = app.test_client(), token_for(db, "admin")
    bad = client.put("/api/v1/settings", json={"quiet_hours": {"sms": {"start": "9pm",
                                                                      "end": "08:00"}}},
                     headers=admin)
    assert bad.status_code == 400
    assert bad.json["error"]["details"][0]["path"] == "$.quiet_hours.sms.start"
    good = client.put("/api/v1/settings", json={"quiet_hours": {"sms": NIGHT}}, headers=admin)
    assert good.status_code == 200
    assert good.json["quiet_hours"] == {"sms": NIGHT, "email": None}
    page = client.get("/settings", headers=admin).get_data(as_text=True)
    assert 'id="quiet_hours"' in page and "21:00" in page


def test_customer_time_zones_are_imported_and_a_bad_one_is_a_row_error(db: Db,
                                                                       tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("external_id,timezone\nC1,Europe/Vilnius\nC2,\n")
    import_customers(db.engine, good, "ZA")
    with db.engine.connect() as conn:
        assert dict(conn.execute(select(Customer.external_id, Customer.timezone)).all()) == {
            "C1": "Europe/Vilnius", "C2": None}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"external_id": "C3", "timezone": "Europe/Atlantis"}\n')
    with pytest.raises(ValidationError) as caught:
        import_customers(db.engine, bad, "ZA")
    assert "timezone: unknown time zone 'Europe/Atlantis'" in str(caught.value)


def test_the_api_upsert_takes_a_time_zone(app: Flask, db: Db) -> None:
    client, admin = app.test_client(), token_for(db, "admin")
    bad = client.put("/api/v1/customers/Z1", json={"timezone": "Mars/Olympus"}, headers=admin)
    assert bad.status_code == 400
    assert "Mars/Olympus" in json.dumps(bad.json)
    good = client.put("/api/v1/customers/Z1", json={"timezone": "Africa/Johannesburg"},
                      headers=admin)
    assert good.status_code in (200, 201), good.json
    with db.engine.connect() as conn:
        assert conn.execute(select(Customer.timezone).where(Customer.external_id == "Z1")
                            ).scalar_one() == "Africa/Johannesburg"
    shown = client.get("/api/v1/customers/Z1", headers=admin)
    assert shown.status_code == 200 and shown.json["timezone"] == "Africa/Johannesburg"
    page = client.get("/customers/Z1", headers=admin).get_data(as_text=True)
    assert "Africa/Johannesburg" in page


def test_the_messages_page_shows_the_moved_time(app: Flask, people: Db, tmp_path: Path) -> None:
    load(people, tmp_path, campaign({"template": "hi", "quiet_hours": NIGHT,
                                     "send_at": {"mode": "at", "time": "22:00"}}))
    run(people.engine, "evening", date(2025, 6, 2), manual=True, now=datetime(2025, 6, 2, 12))
    client = app.test_client()
    page = client.get("/messages", headers=token_for(people, "viewer"))
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "2025-06-03 05:00" in text  # ona: 08:00 in Vilnius, shown in UTC
    assert "2025-06-03 06:00" in text  # thabo: 08:00 in Johannesburg
    activity = client.get("/api/v1/customers/ona/activity", headers=token_for(people, "viewer"))
    assert [a["summary"] for a in activity.json] == [
        "SMS queued (hi) for 2025-06-03 08:00 Europe/Vilnius (quiet hours)"]


def test_a_message_that_comes_due_inside_quiet_hours_at_dispatch_waits(people: Db,
                                                                       tmp_path: Path) -> None:
    """Queued at noon for 20:00, outside the window; the dispatcher was down until 23:30 UTC
    (02:30 in Vilnius, 01:30 in Johannesburg, 19:30 in New York): only jan's goes; the others
    go back to the queue until 08:00 where their customer is, and go then."""
    from engine.config import Settings
    from engine.outbox import dispatch
    from tests.fakes import RecordingChannel

    load(people, tmp_path, campaign({"template": "hi", "quiet_hours": NIGHT,
                                     "send_at": {"mode": "at", "time": "20:00"}}))
    run(people.engine, "evening", date(2025, 6, 2), manual=True, now=datetime(2025, 6, 2, 12))
    assert queued(people)["ona"] == datetime(2025, 6, 2, 17, 0)  # 20:00 in Vilnius
    sms = RecordingChannel()
    settings = Settings(database_url=people.url, secret_key="x")
    stats = dispatch(people.engine, settings, {"sms": sms, "email": RecordingChannel()},
                     now=datetime(2025, 6, 2, 23, 30))
    assert (stats.claimed, stats.sent, stats.deferred) == (4, 1, 3)
    assert [o.to for o in sms.sent] == ["+12025550123"]
    assert queued(people) | {"jan": None} == {
        "ona": datetime(2025, 6, 3, 5, 0), "nobody": datetime(2025, 6, 3, 5, 0),
        "thabo": datetime(2025, 6, 3, 6, 0), "jan": None}
    with people.engine.connect() as conn:
        statuses = dict(conn.execute(select(Customer.external_id, Message.status)
                                     .join(Customer, Customer.id == Message.customer_id)).all())
    assert statuses == {"ona": "queued", "nobody": "queued", "thabo": "queued", "jan": "sent"}
    # At 08:00 in Vilnius (05:00 UTC) ona's and nobody's go; thabo's waits another hour.
    stats = dispatch(people.engine, settings, {"sms": sms, "email": RecordingChannel()},
                     now=datetime(2025, 6, 3, 5, 0))
    assert (stats.sent, stats.deferred) == (2, 0)
    assert sorted(o.to for o in sms.sent[1:]) == ["+37061234567", "+37061234568"]
