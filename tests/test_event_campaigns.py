"""Event-triggered campaigns and once-only date triggers, run day by day on both databases."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from engine.executor import run
from tests.conftest import Db
from tests.event_docs import activity, load, occurrence, people, post, sent, welcome
from tests.world import customer, insert_world

MARCH = [date(2026, 3, d) for d in range(1, 8)]


def run_days(db: Db, key: str, days: list[date]) -> None:
    for day in days:
        assert run(db.engine, key, day).status == "completed"


def test_welcome_fires_once_per_event_on_its_day(db: Db, tmp_path: Path) -> None:
    people(db, "ana", "ben", "cid")
    load(db, tmp_path, welcome())
    assert post(db,
                {"id": "e1", "customer": "ana", "name": "registered",
                 "at": "2026-03-02T10:00:00Z", "properties": {"plan": "gold"}},
                {"id": "e2", "customer": "ben", "name": "registered",
                 "at": "2026-03-04T08:00:00+00:00"},
                {"id": "e3", "customer": "cid", "name": "logged_in",
                 "at": "2026-03-02T10:00:00Z"},
                # The same id again (a retry): stored once, fires once.
                {"id": "e1", "customer": "ana", "name": "registered",
                 "at": "2026-03-02T10:00:00Z"},
                ) == {"received": 4, "created": 3, "duplicates": 1}
    assert post(db, {"id": "e2", "customer": "ben", "name": "registered",
                     "at": "2026-03-04T08:00:00Z"}) == {"received": 1, "created": 0,
                                                         "duplicates": 1}
    run_days(db, "welcome", MARCH)
    run_days(db, "welcome", MARCH)  # again: nothing twice
    assert sent(db) == [("ana", "Welcome", occurrence(db, "e1")),
                        ("ben", "Welcome", occurrence(db, "e2"))]
    (received,) = activity(db, "ana", "event_received")
    assert received["summary"] == "Event registered received"
    assert received["occurrence"] == occurrence(db, "e1")
    assert received["details"] == {"event_id": "e1", "name": "registered",
                                   "properties": {"plan": "gold"}}
    assert [a["summary"] for a in activity(db, "cid", "event_received")] == [
        "Event logged_in received"]
    assert [a["occurrence"] for a in activity(db, "ana", "message_queued")] == [
        occurrence(db, "e1")]


def test_two_events_of_one_customer_are_two_occurrences(db: Db, tmp_path: Path) -> None:
    people(db, "ana")
    load(db, tmp_path, welcome())
    post(db, {"id": "a", "customer": "ana", "name": "registered", "at": "2026-03-02T08:00:00Z"},
         {"id": "b", "customer": "ana", "name": "registered", "at": "2026-03-02T09:00:00Z"})
    run_days(db, "welcome", MARCH[:3])
    assert sent(db) == sorted([("ana", "Welcome", occurrence(db, "a")),
                               ("ana", "Welcome", occurrence(db, "b"))])


def test_an_event_counts_for_its_day_in_the_campaigns_time_zone(db: Db, tmp_path: Path) -> None:
    people(db, "ana")
    load(db, tmp_path, welcome(timezone="Africa/Johannesburg"))  # UTC+2
    post(db, {"id": "late", "customer": "ana", "name": "registered",
              "at": "2026-03-02T23:30:00Z"})  # 01:30 on 3 March in Johannesburg
    run_days(db, "welcome", [MARCH[1]])
    assert sent(db) == []
    run_days(db, "welcome", [MARCH[2]])
    assert sent(db) == [("ana", "Welcome", occurrence(db, "late"))]


def test_where_reads_customer_fields(db: Db, tmp_path: Path) -> None:
    people(db, "ana", "ben")
    load(db, tmp_path, welcome(where={"field": "first_name", "op": "=", "value": "Ben"}))
    post(db, *({"id": n, "customer": n, "name": "registered", "at": "2026-03-02T10:00:00Z"}
               for n in ("ana", "ben")))
    run_days(db, "welcome", MARCH[:3])
    assert sent(db) == [("ben", "Welcome", occurrence(db, "ben"))]


def once(field: str, offset: int) -> dict[str, object]:
    return {
        "key": "renewal", "name": "Renewal", "status": "active", "purpose": "service",
        "graph": {"nodes": [
            {"id": "t", "type": "trigger", "config": {
                "kind": "date", "field": field, "offset_days": offset, "repeat": "once"}},
            {"id": "m", "type": "send-message", "config": {
                "channel": "email", "subject": "Renew", "body": "Your policy ends soon"}},
        ], "edges": [["t", "m"]]},
    }


def test_a_once_date_fires_on_its_date_and_never_a_second_year(db: Db, tmp_path: Path) -> None:
    with db.engine.begin() as conn:
        insert_world(conn, [
            customer("pol", email="pol@example.com", email_valid=True,
                     attributes={"policy_end": "2027-05-10"}),
            customer("other", email="o@example.com", email_valid=True,
                     attributes={"policy_end": "2028-01-01"}),
            customer("junk", email="j@example.com", email_valid=True,
                     attributes={"policy_end": "soon"}),
        ])
    load(db, tmp_path, once("attributes.policy_end", -7))
    # Each year's 2 to 4 May (the anniversary of the day it fired) and the weeks around the
    # policy's end, 2026 to 2030.
    days = [date(y, 5, d) for y in range(2026, 2031) for d in (2, 3, 4)]
    days += [date(2027, 5, 3) + timedelta(days=i) for i in range(-10, 11)]
    run_days(db, "renewal", sorted(set(days)))
    assert sent(db) == [("pol", "Renew", "2027-05-03")]


def test_a_once_date_on_a_customer_column(db: Db, tmp_path: Path) -> None:
    with db.engine.begin() as conn:
        insert_world(conn, [customer("new", email="n@example.com", email_valid=True,
                                     registered_at=date(2026, 3, 3))])
    load(db, tmp_path, once("registered_at", 2))
    run_days(db, "renewal", [date(y, 3, d) for y in (2026, 2027, 2028) for d in range(4, 7)])
    assert sent(db) == [("new", "Renew", "2026-03-05")]


def test_the_trigger_config_contract(db: Db, tmp_path: Path, nf) -> None:  # type: ignore[no-untyped-def]
    bad = welcome()
    bad["graph"]["nodes"][0]["config"] = {"kind": "event", "repeat": "once"}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"version": 1, "campaigns": [bad]}))
    result = nf("import", "campaigns", str(path))
    assert result.code == 2
    assert "repeat: only for a date trigger" in result.err
    assert "name: required for an event trigger" in result.err


def test_where_reads_the_events_properties(db: Db, tmp_path: Path) -> None:
    people(db, "ana", "ben", "cid")
    load(db, tmp_path, welcome(where={"all": [
        {"field": "event.properties.plan", "op": "in", "value": ["gold", "platinum"]},
        {"field": "event.properties.seats", "op": ">=", "value": 2},
        {"field": "first_name", "op": "!=", "value": "Cid"}]}))
    post(db,
         {"id": "a1", "customer": "ana", "name": "registered", "at": "2026-03-02T10:00:00Z",
          "properties": {"plan": "gold", "seats": 3}},
         {"id": "a2", "customer": "ana", "name": "registered", "at": "2026-03-02T11:00:00Z",
          "properties": {"plan": "gold", "seats": 1}},
         {"id": "b1", "customer": "ben", "name": "registered", "at": "2026-03-02T10:00:00Z",
          "properties": {"plan": "basic", "seats": 5}},
         {"id": "c1", "customer": "cid", "name": "registered", "at": "2026-03-02T10:00:00Z",
          "properties": {"plan": "platinum", "seats": 9}})
    run_days(db, "welcome", MARCH[:3])
    # Per event, not per customer: ana's second event (1 seat) does not fire.
    assert sent(db) == [("ana", "Welcome", occurrence(db, "a1"))]


def test_event_properties_are_read_only_in_an_event_trigger(db: Db, tmp_path: Path,
                                                            nf) -> None:  # type: ignore[no-untyped-def]
    doc = welcome()
    doc["graph"]["nodes"].insert(1, {"id": "s", "type": "segment-select", "config": {
        "rules": {"field": "event.properties.plan", "op": "=", "value": "gold"}}})
    doc["graph"]["edges"] = [["t", "s"], ["s", "m"]]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"version": 1, "campaigns": [doc]}))
    result = nf("import", "campaigns", str(path))
    assert result.code == 2
    assert "event properties can be read only in an event trigger's where" in result.err


def test_explain_says_which_event_fired(db: Db, tmp_path: Path, nf) -> None:  # type: ignore[no-untyped-def]
    people(db, "ana")
    load(db, tmp_path, welcome())
    post(db, {"id": "e1", "customer": "ana", "name": "registered",
              "at": "2026-03-02T10:00:00Z"})
    fired = json.loads(nf("explain", "ana", "welcome", "--date", "2026-03-02", "--json").out)
    assert fired["nodes"][0]["reason"] == f"fired (event): {occurrence(db, 'e1')}"
    result = nf("explain", "ana", "welcome", "--date", "2026-03-03", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["nodes"][0]["reason"] == (
        "did not fire: no 'registered' event of the customer on 2026-03-03")
