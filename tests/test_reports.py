"""Reports over a seeded outbox and ledger with known figures: messages by day, campaign,
channel and status (SMS parts, credits used, local days across daylight saving), ledger
movements found by description and other filters with totals, a campaign's runs over time,
their CSV (equal to the JSON, cells neutralised), the CLI, and 400s naming the parameter."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import insert, select

from engine.db import write_transaction
from engine.models import Campaign, Customer, Message
from engine.reports import messages, points
from tests.conftest import Db
from tests.report_world import seed
from tests.webapp import ok, token_for

MESSAGES = "/api/v1/reports/messages"
POINTS = "/api/v1/reports/points"


@pytest.fixture
def seeded(app: Flask, db: Db) -> dict[str, Any]:
    with write_transaction(db.engine) as conn:
        ids = seed(conn)
    return {"auth": token_for(db, "viewer"), "ids": ids}


def get(app: Flask, seeded: dict[str, Any], url: str, code: int = 200, **query: Any) -> Any:
    """The answer of GET url?query, its status code asserted first."""
    return ok(app.test_client().get(url, query_string=query, headers=seeded["auth"]), code)


def test_messages_by_day_campaign_channel_and_status(app: Flask, seeded: dict[str, Any]) -> None:
    report = get(app, seeded, MESSAGES)
    rows = [(r["day"], r["campaign"], r["channel"], r["status"], r["messages"], r["sms_parts"],
             r["credits"]) for r in report["rows"]]
    assert rows == [
        ("2026-03-10", "bday", "sms", "sent", 2, 3, 3),
        ("2026-03-10", "bday", "sms", "skipped", 2, 0, 0),
        ("2026-03-11", "bday", "sms", "failed", 1, 0, 0),
        ("2026-03-11", "bday", "sms", "sent", 1, 3, 3),
        ("2026-03-11", "blast", "email", "sent", 1, 0, 1),
        ("2026-03-12", "blast", "email", "queued", 1, 0, 0),
        ("2026-03-12", "blast", "email", "sent", 1, 0, 1),  # created on the 9th, sent the 12th
    ]
    assert report["total_rows"] == 7 and report["timezone"] == "UTC"
    assert report["totals"] == {
        "messages": 9, "sms_parts": 6, "credits": 8,
        "by_status": {"failed": {"messages": 1, "sms_parts": 0, "credits": 0},
                      "queued": {"messages": 1, "sms_parts": 0, "credits": 0},
                      "sent": {"messages": 5, "sms_parts": 6, "credits": 8},
                      "skipped": {"messages": 2, "sms_parts": 0, "credits": 0}}}


def test_messages_filters_grouping_and_paging(app: Flask, seeded: dict[str, Any]) -> None:
    day = get(app, seeded, MESSAGES, **{"from": "2026-03-11", "to": "2026-03-11"})
    assert (day["from"], day["to"], day["total_rows"]) == ("2026-03-11", "2026-03-11", 3)
    assert (day["totals"]["messages"], day["totals"]["sms_parts"],
            day["totals"]["credits"]) == (3, 3, 4)
    email = get(app, seeded, MESSAGES, channel="email", by="status")
    assert email["by"] == ["status"]
    assert [(r["status"], r["messages"], r["credits"]) for r in email["rows"]] == [
        ("queued", 1, 0), ("sent", 2, 2)]
    assert "day" not in email["rows"][0]
    sent = get(app, seeded, MESSAGES, status="sent", campaign="bday", by="status,day")
    assert sent["by"] == ["day", "status"]  # always in the report's own order
    assert [(r["day"], r["messages"], r["sms_parts"]) for r in sent["rows"]] == [
        ("2026-03-10", 2, 3), ("2026-03-11", 1, 3)]
    page = get(app, seeded, MESSAGES, limit=2, offset=2)
    assert [(r["day"], r["status"]) for r in page["rows"]] == [
        ("2026-03-11", "failed"), ("2026-03-11", "sent")]
    assert page["total_rows"] == 7 and page["totals"]["messages"] == 9  # totals of the whole
    assert get(app, seeded, MESSAGES, campaign="nope")["rows"] == []


@pytest.mark.parametrize(("zone", "expected"), [
    ("Africa/Johannesburg", [("2026-03-10", 1, 2), ("2026-03-11", 2, 4)]),  # 23:30 UTC is the 11th
    ("UTC", [("2026-03-10", 2, 3), ("2026-03-11", 1, 3)]),
])
def test_days_are_the_workspace_time_zones(db: Db, seeded: dict[str, Any], zone: str,
                                          expected: list[tuple[str, int, int]]) -> None:
    f = messages.MessageFilter(timezone=zone, campaign="bday", status="sent")
    with db.engine.connect() as conn:
        rows = messages.report(conn, f, ("day",))["rows"]
    assert [(r["day"].isoformat(), r["messages"], r["sms_parts"]) for r in rows] == expected


def test_local_days_across_daylight_saving_changes(db: Db) -> None:
    """Vilnius: UTC+2, +3 from 2026-03-29 01:00 UTC, +2 again from 2026-10-25 01:00 UTC."""
    moments = [datetime(2026, 3, 28, 21, 30), datetime(2026, 3, 29, 0, 30),
               datetime(2026, 3, 29, 21, 30), datetime(2026, 10, 24, 21, 30),
               datetime(2026, 10, 25, 21, 30), datetime(2026, 10, 25, 22, 30)]
    with write_transaction(db.engine) as conn:
        cid = conn.execute(insert(Customer).values(external_id="V")).inserted_primary_key[0]
        camp = conn.execute(insert(Campaign).values(key="v", name="V", graph={})
                            ).inserted_primary_key[0]
        for n, at in enumerate(moments):
            conn.execute(insert(Message).values(
                campaign_id=camp, node_id="m", customer_id=cid, occurrence=str(n),
                channel="email", status="queued", created_at=at, send_after=at))
    expected = {"2026-03-28": 1, "2026-03-29": 1, "2026-03-30": 1, "2026-10-25": 2,
                "2026-10-26": 1}
    with db.engine.connect() as conn:
        for f in (messages.MessageFilter(timezone="Europe/Vilnius"),
                  messages.MessageFilter(timezone="Europe/Vilnius", since=date(2026, 3, 1),
                                         until=date(2026, 10, 31))):
            rows = messages.report(conn, f, ("day",))["rows"]
            assert {r["day"].isoformat(): r["messages"] for r in rows} == expected
        only = messages.report(conn, messages.MessageFilter(
            timezone="Europe/Vilnius", since=date(2026, 10, 25), until=date(2026, 10, 25)),
            ("day",))
        assert only["totals"]["messages"] == 2  # 21:30 and 22:30 UTC are 00:30 and 23:30 local


def names(answer: dict[str, Any], ids: dict[str, int]) -> list[str]:
    by_id = {v: k for k, v in ids.items()}
    return [by_id[r["id"]] for r in answer["items"]]


def test_accruals_are_found_by_description(app: Flask, seeded: dict[str, Any]) -> None:
    ids = seeded["ids"]
    found = get(app, seeded, POINTS, description="BIRTHDAY", kind="accrual")
    assert names(found, ids) == ["L2", "L1", "L3"]  # latest booking first, then newest id
    assert [(r["customer"], r["amount"], r["description"], r["legal_entity"], r["campaign"],
             r["booked_on"], r["expires_at"]) for r in found["items"]] == [
        ("P2", 100, "Birthday bonus", "Main", "bday", "2026-03-10", "2026-04-09"),
        ("P1", 100, "Birthday bonus", "Main", "bday", "2026-03-10", "2026-04-09"),
        ("P3", 40, "Birthday bonus 2025", "Shop Ltd", None, "2025-03-10", None)]
    assert found["totals"]["kinds"]["accrual"] == {"rows": 3, "points": 240}
    assert found["totals"]["net"] == 240 and found["next"] is None
    # Customers by external id only: no names, emails or phones.
    assert set(found["items"][0]) == set(points.COLUMNS)
    text = json.dumps(found)
    assert "Pat" not in text and "Secret" not in text and "example.com" not in text
    assert "+2782" not in text

    every = get(app, seeded, POINTS, description="birthday")
    assert names(every, ids) == ["L5", "L2", "L1", "L3"]  # the expiry too
    assert every["totals"]["kinds"] == {
        "accrual": {"rows": 3, "points": 240}, "expiry": {"rows": 1, "points": -100},
        "redemption": {"rows": 0, "points": 0}, "adjustment": {"rows": 0, "points": 0}}
    assert names(get(app, seeded, POINTS, description="50%"), ids) == ["L8"]  # % is literal
    assert names(get(app, seeded, POINTS, description="%"), ids) == ["L8"]
    assert names(get(app, seeded, POINTS, description="_"), ids) == []
    assert names(get(app, seeded, POINTS, description="welcome"), ids) == ["L4"]


def test_points_filters_and_totals(app: Flask, seeded: dict[str, Any]) -> None:
    ids = seeded["ids"]
    everything = get(app, seeded, POINTS)
    assert everything["totals"] == {
        "kinds": {"accrual": {"rows": 5, "points": 310}, "expiry": {"rows": 1, "points": -100},
                  "redemption": {"rows": 1, "points": -30},
                  "adjustment": {"rows": 1, "points": 5}},
        "rows": 8, "net": 185}
    assert names(get(app, seeded, POINTS, legal_entity="main", description="birthday"),
                 ids) == ["L5", "L2", "L1"]
    assert names(get(app, seeded, POINTS, legal_entity="Shop"), ids) == []  # the whole name
    assert names(get(app, seeded, POINTS, customer="P3"), ids) == ["L7", "L4", "L3"]
    assert names(get(app, seeded, POINTS, campaign="bday"), ids) == ["L5", "L2", "L1"]
    assert names(get(app, seeded, POINTS, kind="redemption"), ids) == ["L6"]
    dated = get(app, seeded, POINTS, **{"from": "2026-03-10", "to": "2026-03-20"})
    assert names(dated, ids) == ["L6", "L8", "L2", "L1"]
    assert dated["totals"]["net"] == -30 + 20 + 100 + 100
    assert get(app, seeded, POINTS, customer="nobody")["totals"]["rows"] == 0


def test_points_pages_by_keyset_with_totals_of_the_whole(app: Flask,
                                                       seeded: dict[str, Any]) -> None:
    ids, seen, after = seeded["ids"], [], None
    for _ in range(3):
        page = get(app, seeded, POINTS, limit=3, **({"after": after} if after else {}))
        assert page["totals"]["rows"] == 8 and page["totals"]["net"] == 185
        seen.append(names(page, ids))
        after = page["next"]
    assert seen == [["L5", "L7", "L6"], ["L8", "L2", "L1"], ["L4", "L3"]]
    assert after is None
    # Any two numbers are a cursor: before the first day there is nothing, after the last all.
    assert get(app, seeded, POINTS, after="0.0")["items"] == []
    assert names(get(app, seeded, POINTS, after="9" * 18 + ".1", limit=2), ids) == ["L5", "L7"]


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def cell(value: Any) -> str:
    return "" if value is None else str(value)


def test_csv_equals_json(app: Flask, seeded: dict[str, Any]) -> None:
    client, auth = app.test_client(), seeded["auth"]
    for query in ({}, {"from": "2026-03-11", "channel": "sms", "by": "day,status"}):
        answer = client.get(f"{MESSAGES}.csv", query_string=query, headers=auth)
        assert answer.status_code == 200 and answer.mimetype == "text/csv"
        table = get(app, seeded, MESSAGES, **query)
        assert csv_rows(answer.get_data(as_text=True)) == [
            {k: cell(r[k]) for k in (*table["by"], *messages.FIGURES)} for r in table["rows"]]
    answer = client.get(f"{POINTS}.csv", headers=auth)
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    assert text.splitlines()[0] == ",".join(points.COLUMNS)
    got = csv_rows(text)
    rows = get(app, seeded, POINTS, limit=1000)["items"]
    neutral = {"=SUM(1,1) goodwill": "'=SUM(1,1) goodwill"}
    assert got == [{k: neutral.get(cell(r[k]), cell(r[k])) for k in points.COLUMNS}
                   for r in rows]
    assert any(r["description"] == "'=SUM(1,1) goodwill" for r in got)
    found = csv_rows(client.get(f"{POINTS}.csv", query_string={"description": "birthday"},
                                headers=auth).get_data(as_text=True))
    assert [r["id"] for r in found] == [str(seeded["ids"][n]) for n in ("L5", "L2", "L1", "L3")]


def test_campaign_runs_over_time(app: Flask, seeded: dict[str, Any]) -> None:
    answer = get(app, seeded, "/api/v1/reports/campaigns/bday/runs")
    assert answer["campaign"] == "bday"
    assert [{k: r[k] for k in ("date", "reached", "messages", "sent", "failed", "skipped",
                               "skipped_by_reason", "points_awarded", "points_expired")}
            for r in answer["runs"]] == [
        {"date": "2026-03-10", "reached": 5, "messages": 4, "sent": 2, "failed": 0,
         "skipped": 2, "skipped_by_reason": {"invalid_address": 1, "opted_out": 1},
         "points_awarded": 200, "points_expired": 100},
        {"date": "2026-03-11", "reached": 2, "messages": 2, "sent": 1, "failed": 1,
         "skipped": 0, "skipped_by_reason": {}, "points_awarded": 0, "points_expired": 0}]
    later = get(app, seeded, "/api/v1/reports/campaigns/bday/runs", **{"from": "2026-03-11"})
    assert [r["date"] for r in later["runs"]] == ["2026-03-11"]
    assert get(app, seeded, "/api/v1/reports/campaigns/blast/runs")["runs"] == []
    missing = get(app, seeded, "/api/v1/reports/campaigns/nope/runs", 404)
    assert missing["error"]["code"] == "not_found"


@pytest.mark.parametrize(("url", "query", "path", "says"), [
    (MESSAGES, {"from": "2026-13-01"}, "query.from", "Not a valid date"),
    (MESSAGES, {"to": "yesterday"}, "query.to", "Not a valid date"),
    (MESSAGES, {"from": "1850-01-01"}, "query.from", "expected a date from"),
    (MESSAGES, {"from": "2026-03-12", "to": "2026-03-11"}, "query.to", "on or after"),
    (MESSAGES, {"limit": "0"}, "query.limit", "greater than or equal to 1"),
    (MESSAGES, {"limit": "ten"}, "query.limit", "Not a valid integer"),
    (MESSAGES, {"offset": "-1"}, "query.offset", "greater than or equal to 0"),
    (MESSAGES, {"by": "day,week"}, "query.by", "unknown: 'week'"),
    (MESSAGES, {"status": "lost"}, "query.status", "Must be one of"),
    (MESSAGES, {"channel": "fax"}, "query.channel", "Must be one of"),
    (f"{MESSAGES}.csv", {"from": "2026-02-30"}, "query.from", "Not a valid date"),
    (POINTS, {"limit": "1001"}, "query.limit", "less than or equal to 1000"),
    (POINTS, {"after": "page2"}, "query.after", "expected the `next`"),
    (POINTS, {"after": "2026-03-01.5"}, "query.after", "expected the `next`"),
    (POINTS, {"after": "5."}, "query.after", "expected the `next`"),
    (POINTS, {"kind": "gift"}, "query.kind", "Must be one of"),
    (POINTS, {"to": "2026-3-1"}, "query.to", "Not a valid date"),
    (POINTS, {"description": "x" * 201}, "query.description", "Length must be between"),
    (f"{POINTS}.csv", {"from": "nope"}, "query.from", "Not a valid date"),
    ("/api/v1/reports/campaigns/bday/runs", {"to": "2026-99-01"}, "query.to",
     "Not a valid date"),
])
def test_bad_parameters_are_400_naming_them(app: Flask, seeded: dict[str, Any], url: str,
                                            query: dict[str, str], path: str, says: str) -> None:
    answer = get(app, seeded, url, 400, **query)
    assert answer["error"]["code"] == "invalid_input"
    [detail] = answer["error"]["details"]
    assert detail["path"] == path
    assert says in detail["message"], detail


def test_reports_need_a_login(app: Flask, seeded: dict[str, Any]) -> None:
    client = app.test_client()
    for url in (MESSAGES, f"{MESSAGES}.csv", POINTS, f"{POINTS}.csv",
                "/api/v1/reports/campaigns/bday/runs"):
        assert client.get(url).status_code == 401, url
        answer = client.get(url, headers=seeded["auth"])
        answer.get_data()  # a CSV streams from an open cursor until read
        assert answer.status_code == 200, url
    page = client.get("/reports")
    assert page.status_code == 302 and "/login" in page.headers["Location"]


def test_openapi_describes_the_reports(app: Flask, seeded: dict[str, Any]) -> None:
    doc = get(app, seeded, "/api/v1/openapi.json")
    for path in ("/api/v1/reports/messages", "/api/v1/reports/messages.csv",
                 "/api/v1/reports/points", "/api/v1/reports/points.csv",
                 "/api/v1/reports/campaigns/{key}/runs"):
        assert "get" in doc["paths"][path], path
    params = {p["name"] for p in doc["paths"]["/api/v1/reports/points"]["get"]["parameters"]}
    assert {"description", "legal_entity", "campaign", "customer", "kind", "from", "to",
            "limit", "after"} <= params


def test_report_pages_show_tables_and_totals(app: Flask, seeded: dict[str, Any]) -> None:
    from tests.webapp import session_client

    client, _ = session_client(app, "viewer")
    page = client.get("/reports?from=2026-03-01&to=2026-03-31&utm_source=mail")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="messages-chart"' in html and 'data-total="credits">8<' in html
    assert "/api/v1/reports/messages.csv?" in html
    bad = client.get("/reports?from=2026-02-30")
    assert bad.status_code == 400 and "from: Not a valid date" in bad.get_data(as_text=True)
    found = client.get("/reports/points?description=birthday&kind=accrual")
    assert found.status_code == 200
    html = found.get_data(as_text=True)
    assert html.count("Birthday bonus") == 3 and 'data-total="net">240<' in html
    assert "pat1@example.com" not in html and "Pat1" not in html
    runs = client.get("/reports/campaigns/bday")
    assert runs.status_code == 200 and 'id="runs-chart"' in runs.get_data(as_text=True)
    assert client.get("/reports/campaigns/nope").status_code == 404


def test_cli_reports(nf: Any, db: Db) -> None:
    with write_transaction(db.engine) as conn:
        ids = seed(conn)
    done = nf("report", "messages", "--from", "2026-03-11", "--to", "2026-03-11", "--json")
    assert done.code == 0, done.err
    report = json.loads(done.out)
    assert (report["totals"]["messages"], report["totals"]["credits"]) == (3, 4)
    done = nf("report", "messages", "--by", "status")
    assert done.code == 0, done.err
    assert "total: 9 messages, 6 SMS parts, 8 credits (days in UTC)" in done.out
    assert done.out.splitlines()[0].split() == ["status", "messages", "sms_parts", "credits"]
    done = nf("report", "points", "--description", "birthday", "--kind", "accrual", "--csv")
    assert done.code == 0, done.err
    assert [r["id"] for r in csv_rows(done.out)] == [str(ids[n]) for n in ("L2", "L1", "L3")]
    done = nf("report", "points", "--customer", "P3")
    assert done.code == 0 and "total: 3 movements, net 95 points" in done.out
    assert "'=SUM(1,1) goodwill" not in done.out  # a table, not a CSV
    bad = nf("report", "points", "--from", "2026-04-01", "--to", "2026-03-01")
    assert bad.code == 2 and "--to" in bad.err and "on or after" in bad.err
    bad = nf("report", "messages", "--from", "2026-02-30")
    assert bad.code == 2 and "expected YYYY-MM-DD" in bad.err
    with db.engine.connect() as conn:
        assert conn.execute(select(Message.id)).first() is not None
