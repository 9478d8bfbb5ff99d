"""Hostile values over HTTP, on SQLite and PostgreSQL: each is a 400 (or 404) naming the path,
never a 500, and nothing is stored."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from engine.models import ChannelCredit, Customer, Segment
from tests.campaign_docs import BIRTHDAY, SEGMENTS, TEMPLATES
from tests.conftest import Db
from tests.webapp import token_for


@pytest.fixture
def api(app: Flask, db: Db) -> tuple[FlaskClient, dict[str, str]]:
    return app.test_client(), token_for(db, "admin")


def details(answer: Any) -> list[tuple[str, str]]:
    return [(d["path"], d["message"]) for d in answer.json["error"]["details"]]


def raw_json(client: FlaskClient, method: str, path: str, text: str,
             auth: dict[str, str]) -> Any:
    """Send JSON text as it is (lone surrogates and NaN cannot go through json=...)."""
    return client.open(path, method=method, data=text.encode(),
                       headers={**auth, "Content-Type": "application/json"})


def nested(depth: int) -> dict[str, Any]:
    rules: dict[str, Any] = {"field": "age", "op": ">=", "value": 18}
    for _ in range(depth):
        rules = {"not": rules}
    return rules


def count(db: Db, model: Any) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


RULE = {"field": "first_name", "op": "=", "value": "Ana"}


@pytest.mark.parametrize(("value", "path", "message"), [
    (2**70, "$.rules.value", "whole number out of range"),
    (-(2**63) - 1, "$.rules.value", "whole number out of range"),
    ("A\x00na", "$.rules.value", "text may not contain a NUL character"),
])
def test_segment_rule_values_the_database_cannot_take(api: Any, db: Db, value: Any, path: str,
                                                      message: str) -> None:
    client, auth = api
    for url, body in (("/api/v1/segments/preview", {"rules": {**RULE, "value": value}}),
                      ("/api/v1/segments", {"key": "s", "rules": {**RULE, "value": value}})):
        answer = client.post(url, json=body, headers=auth)
        assert answer.status_code == 400, answer.json
        assert [p for p, _ in details(answer)] == [path]
        assert message in details(answer)[0][1]
    assert count(db, Segment) == 0


def test_lone_surrogate_and_nan_in_a_body(api: Any, db: Db) -> None:
    client, auth = api
    answer = raw_json(client, "POST", "/api/v1/segments/preview",
                      '{"rules": {"field": "first_name", "op": "=", "value": "\\ud800"}}', auth)
    assert answer.status_code == 400
    assert details(answer) == [("$.rules.value", 'text may not contain a lone surrogate '
                                                 '("\\ud800"): it is not a character')]
    answer = raw_json(client, "PUT", "/api/v1/customers/N1", '{"score": NaN}', auth)
    assert answer.status_code == 400
    assert details(answer) == [("$", "the body is not valid JSON: NaN is not a number JSON "
                                     "allows")]
    answer = raw_json(client, "PUT", "/api/v1/customers/N1", '{"score": 1e999}', auth)
    assert answer.status_code == 400
    assert details(answer) == [("$.score", "expected a finite number, got inf")]
    assert count(db, Customer) == 1  # C1 of the fixture, nobody else


def test_in_lists_up_to_1000_work_and_longer_ones_are_refused(api: Any) -> None:
    client, auth = api
    for rule in ({"field": "age", "op": "in", "value": list(range(0, 4000, 4))},
                 {"field": "external_id", "op": "not_in", "value": [f"X{i}" for i in range(1000)]},
                 {"field": "days_past_due", "op": "not_in", "value": list(range(1, 2001, 2))}):
        answer = client.post("/api/v1/segments/preview", json={"rules": rule}, headers=auth)
        assert answer.status_code == 200, answer.json
    answer = client.post("/api/v1/segments/preview", headers=auth, json={"rules": {
        "field": "external_id", "op": "in", "value": [str(i) for i in range(70_000)]}})
    assert answer.status_code == 400
    assert details(answer) == [("$.rules.value", "in takes at most 1000 values, got 70000 (for "
                                                 "more, import them as an attribute and test "
                                                 "that)")]


def test_nesting_deeper_than_32_levels(api: Any) -> None:
    client, auth = api
    ok = client.post("/api/v1/segments/preview", json={"rules": nested(32)}, headers=auth)
    assert ok.status_code == 200, ok.json
    answer = client.post("/api/v1/segments/preview", json={"rules": nested(50)}, headers=auth)
    assert answer.status_code == 400
    assert details(answer) == [("$.rules" + ".not" * 33, "rules nest at most 32 levels deep")]
    # Deeper than any body may nest: refused before any rule is read, at the same kind of path.
    for depth in (100, 500):
        answer = client.post("/api/v1/segments", json={"key": "deep", "rules": nested(depth)},
                             headers=auth)
        assert answer.status_code == 400
        assert details(answer) == [("$.rules" + ".not" * 63, "nested deeper than 64 levels")]
    answer = raw_json(client, "POST", "/api/v1/segments/preview",
                      '{"rules": ' + "[" * 100_000 + "]" * 100_000 + "}", auth)
    assert answer.status_code == 400
    assert details(answer) == [("$", "the body is not valid JSON: nested too deeply (at most "
                                     "64 levels)")]


def test_inline_rules_in_a_campaign(api: Any) -> None:
    client, auth = api
    for template in TEMPLATES:
        client.post("/api/v1/templates", json=template, headers=auth)
    doc = copy.deepcopy(BIRTHDAY)
    doc["graph"]["nodes"][1]["config"] = {"rules": {"field": "age", "op": ">", "value": 2**64}}
    answer = client.post("/api/v1/campaigns", json=doc, headers=auth)
    assert answer.status_code == 400
    assert [p for p, _ in details(answer)] == ["$.graph.nodes[1].config.rules.value"]
    doc["graph"]["nodes"][1]["config"] = {"rules": nested(40)}
    answer = client.post("/api/v1/campaigns", json=doc, headers=auth)
    assert answer.status_code == 400
    deep = "rules" + ".not" * 33
    assert details(answer) == [(f"$.graph.nodes[1].config.{deep}",
                                f"node 's' (Segment select): {deep}: rules nest at most 32 "
                                "levels deep")]


def test_run_and_preview_dates_beyond_what_a_run_can_compute(api: Any) -> None:
    client, auth = api
    client.post("/api/v1/segments", json=SEGMENTS[0], headers=auth)
    for template in TEMPLATES:
        client.post("/api/v1/templates", json=template, headers=auth)
    assert client.post("/api/v1/campaigns", json=BIRTHDAY, headers=auth).status_code == 201
    for action in ("preview", "run"):
        answer = client.post(f"/api/v1/campaigns/birthday-bonus/{action}",
                             json={"date": "9999-12-31"}, headers=auth)
        assert answer.status_code == 400
        assert details(answer) == [("$.date", "expected a date from 1900-01-01 to 2999-12-31, "
                                              "got 9999-12-31")]
    # The edges of the range run, with their offsets and lifetimes.
    for day in ("2999-12-31", "1900-01-01"):
        answer = client.post("/api/v1/campaigns/birthday-bonus/run", json={"date": day},
                             headers=auth)
        assert answer.status_code == 200
        assert answer.json["status"] == "completed"
    answer = client.post("/api/v1/segments/preview", headers=auth, json={
        "rules": {"field": "days_since_last_message", "op": "<", "value": 3},
        "date": "0001-01-01"})
    assert answer.status_code == 400
    assert [p for p, _ in details(answer)] == ["$.date"]
    # C1's birthday: two activities, found up to the calendar's last day.
    answer = client.post("/api/v1/campaigns/birthday-bonus/run", json={"date": "2025-03-10"},
                         headers=auth)
    assert answer.json["status"] == "completed"
    answer = client.get("/api/v1/customers/C1/activity?until=9999-12-31&since=0001-01-01",
                        headers=auth)
    assert answer.status_code == 200
    assert [a["kind"] for a in answer.json] == ["bonus_awarded", "message_queued"]
    answer = client.get("/api/v1/customers/C1/activity?until=2025-03-09", headers=auth)
    assert answer.status_code == 200
    assert answer.json == []


def test_credits_beyond_the_balance_column(api: Any, db: Db) -> None:
    client, auth = api
    for _ in range(2):
        answer = client.post("/api/v1/settings/credits", json={"channel": "sms",
                                                               "units": 10**9}, headers=auth)
        assert answer.status_code == 200
    answer = client.post("/api/v1/settings/credits", json={"channel": "sms", "units": 10**9},
                         headers=auth)
    assert answer.status_code == 400
    assert details(answer) == [("units", "expected 1 to 147483647: the sms balance is "
                                         "2000000000 and holds at most 2147483647; got "
                                         "1000000000")]
    with db.engine.connect() as conn:
        assert conn.execute(select(ChannelCredit.balance)).scalar_one() == 2 * 10**9


def test_path_integers_beyond_their_column_are_not_found(api: Any) -> None:
    client, auth = api
    for path in ("/api/v1/runs/99999999999", "/api/v1/runs/99999999999/export.csv",
                 "/api/v1/campaigns/x/versions/99999999999"):
        answer = client.get(path, headers=auth)
        assert answer.status_code == 404, path
    answer = client.post("/api/v1/messages/cancel", json={"campaign": "x", "run_id": 2**40},
                         headers=auth)
    assert answer.status_code == 400
    assert [p for p, _ in details(answer)] == ["$.run_id"]


@pytest.mark.parametrize(("url", "path"), [
    ("/api/v1/customers/C%001", "path"),
    ("/api/v1/customers/C1/activity?campaign=a%00b", "query.campaign"),
    ("/api/v1/customers?q=%00", "query.q"),
    ("/api/v1/segments/a%00b", "path"),
    ("/api/v1/customers?q%00=1", 'query["q\\u0000"]'),
])
def test_nul_in_a_path_or_query(api: Any, url: str, path: str) -> None:
    client, auth = api
    answer = client.get(url, headers=auth)
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert [p for p, _ in details(answer)] == [path]


def test_values_longer_than_their_column(api: Any, db: Db) -> None:
    client, auth = api
    answer = client.put("/api/v1/customers/L1", json={"first_name": "x" * 101}, headers=auth)
    assert answer.status_code == 400
    assert details(answer) == [("$[0]", "first_name: at most 100 characters, got 101")]
    answer = client.post("/api/v1/customers/bulk", headers=auth, json={"records": [
        {"external_id": "L1"}, {"external_id": "L2", "phone": "1" * 60}]})
    assert answer.status_code == 400
    assert details(answer) == [("$[1]", "phone: at most 40 characters, got 60")]
    answer = client.put("/api/v1/customers/" + "x" * 101, json={}, headers=auth)
    assert answer.status_code == 400
    assert details(answer) == [("$[0]", "external_id: at most 100 characters, got 101")]
    assert count(db, Customer) == 1
    answer = client.put("/api/v1/invoices/I1", headers=auth, json={
        "customer_external_id": "C1", "amount": "1e20", "due_date": "2026-01-01"})
    assert answer.status_code == 400
    assert details(answer) == [("$[0]", "amount: at most 12 digits before the decimal point, "
                                        "got 100000000000000000000.00")]
    client.post("/api/v1/segments", json=SEGMENTS[0], headers=auth)
    for template in TEMPLATES:
        client.post("/api/v1/templates", json=template, headers=auth)
    doc = copy.deepcopy(BIRTHDAY)
    doc["timezone"] = "Z" * 300
    answer = client.post("/api/v1/campaigns", json=doc, headers=auth)
    assert answer.status_code == 400
    assert details(answer) == [("$.timezone", "Longer than maximum length 64.")]
    doc = copy.deepcopy(BIRTHDAY)
    doc["graph"]["nodes"][3]["config"]["sender"] = "s" * 321
    answer = client.post("/api/v1/campaigns", json=doc, headers=auth)
    assert answer.status_code == 400
    assert details(answer) == [("$.graph.nodes[3].config.sender",
                                "node 'm' (Send message): sender: Longer than maximum length "
                                "320.")]
    answer = client.post("/api/v1/tokens", json={"user": "admin", "name": "t" * 101},
                         headers=auth)
    assert answer.status_code == 400
    assert [p for p, _ in details(answer)] == ["$.name"]


def test_a_json_body_that_is_not_json(api: Any) -> None:
    client, auth = api
    answer = raw_json(client, "POST", "/api/v1/segments", '{"key": "a", "rules": {', auth)
    assert answer.status_code == 400
    assert [p for p, _ in details(answer)] == ["$"]
    answer = client.post("/api/v1/segments", data=b'{"key": "\xff"}', headers={
        **auth, "Content-Type": "application/json"})
    assert answer.status_code == 400
    assert details(answer) == [("$", "the body is not valid JSON: not UTF-8 (byte 9)")]


def test_numbers_beyond_32_bits_compare_on_both_databases(api: Any) -> None:
    """Found by the fuzz test: PostgreSQL cast them to the INTEGER of a count and refused."""
    client, auth = api
    client.put("/api/v1/customers/C1", json={"score": 2**40}, headers=auth)
    for rule, expected in (({"field": "bonus_balance", "op": "<", "value": 2**40}, 1),
                           ({"field": "unpaid_invoices", "op": "in", "value": [2**62, 0]}, 1),
                           ({"field": "attributes.score", "op": "in", "value": [1, 2**40]}, 1),
                           ({"field": "attributes.score", "op": ">", "value": 2**63 - 1}, 0)):
        answer = client.post("/api/v1/segments/preview", json={"rules": rule}, headers=auth)
        assert answer.status_code == 200, answer.json
        assert answer.json["count"] == expected, rule


def test_an_upsert_body_that_is_not_an_object(api: Any, db: Db) -> None:
    """Found by the fuzz test (and fixed on main with RecordIn): a JSON number as the body
    of PUT /customers/ID was a 500."""
    client, auth = api
    for url in ("/api/v1/customers/N1", "/api/v1/invoices/I1"):
        answer = client.put(url, json=1, headers=auth)
        assert answer.status_code == 400
        assert details(answer) == [("$", "Invalid input type.")]
    assert count(db, Customer) == 1
