"""POST /api/v1/customers/{external_id}/points, the balance it returns, and the customer page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from engine.campaigns import campaign_today
from engine.models import Activity, BonusAllocation, BonusLedger
from tests.conftest import Db
from tests.webapp import ok, session_client, token_for

URL = "/api/v1/customers/C1/points"


def counts(db: Db) -> tuple[int, ...]:
    with db.engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(m)).scalar_one()
                     for m in (BonusLedger, BonusAllocation, Activity))


def test_add_and_redeem(app: Flask, db: Db) -> None:
    client, auth = app.test_client(), token_for(db, "marketer")
    today = campaign_today("UTC")
    soon = (today + timedelta(days=10)).isoformat()
    added = ok(client.post(URL, json={"amount": 80, "reason": "Welcome", "expires_at": soon,
                                      "legal_entity": "Shop"}, headers=auth), 201)
    assert {k: added["movement"][k] for k in ("kind", "amount", "booked_on", "expires_at",
                                               "legal_entity", "description", "created_by",
                                               "took")} == {
        "kind": "adjustment", "amount": 80, "booked_on": today.isoformat(), "expires_at": soon,
        "legal_entity": "Shop", "description": "Welcome", "created_by": "marketer", "took": []}
    assert added["replayed"] is False
    assert {k: added["balance"][k] for k in ("available", "pending", "expiring_30")} == {
        "available": 80, "pending": 0, "expiring_30": 80}
    ok(client.post(URL, json={"amount": 50, "reason": "Forever"}, headers=auth), 201)
    spent = ok(client.post(URL, json={"amount": -100, "reason": "Flight"}, headers=auth), 201)
    assert [(t["description"], t["amount"]) for t in spent["movement"]["took"]] == [
        ("Welcome", 80), ("Forever", 20)]
    assert (spent["balance"]["available"], spent["balance"]["redeemed"]) == (30, 100)
    assert [e["status"] for e in spent["balance"]["entries"]] == [
        "redeemed", "partly redeemed", "redemption"]
    # The same numbers on GET .../balance, and the log says who did what.
    shown = ok(client.get("/api/v1/customers/C1/balance", headers=auth))
    assert shown == spent["balance"]
    log = ok(client.get("/api/v1/customers/C1/activity?kind=bonus_redeemed"
                        "&kind=bonus_adjusted", headers=auth))
    assert [(a["kind"], a["summary"]) for a in log] == [
        ("bonus_adjusted", f"Added 80 points: Welcome, valid until {soon} (by marketer)"),
        ("bonus_adjusted", "Added 50 points: Forever (by marketer)"),
        ("bonus_redeemed", "Redeemed 100 points: Flight (by marketer)")]


def test_too_few_points_is_409_and_writes_nothing(app: Flask, db: Db) -> None:
    client, auth = app.test_client(), token_for(db, "marketer")
    ok(client.post(URL, json={"amount": 10, "reason": "Welcome"}, headers=auth), 201)
    before = counts(db)
    answer = ok(client.post(URL, json={"amount": -11, "reason": "Too much"}, headers=auth), 409)
    text = f"cannot redeem 11 points: 10 available on {campaign_today('UTC')}"
    assert answer == {"error": {"code": "insufficient_points", "message": text,
                                "details": [{"path": "$.amount", "message": text}]}}
    assert counts(db) == before


def test_idempotency_key(app: Flask, db: Db) -> None:
    client, auth = app.test_client(), token_for(db, "marketer")
    body = {"amount": 25, "reason": "Order 7"}
    first = ok(client.post(URL, json=body, headers={**auth, "Idempotency-Key": "k-7"}), 201)
    before = counts(db)
    again = ok(client.post(URL, json=body, headers={**auth, "Idempotency-Key": "k-7"}), 200)
    assert again["replayed"] is True and again["movement"] == first["movement"]
    assert first["movement"]["reference"] == "k-7"
    # The body's reference is the same key.
    ok(client.post(URL, json={**body, "reference": "k-7"}, headers=auth), 200)
    assert counts(db) == before
    other = ok(client.post(URL, json={**body, "amount": 26},
                           headers={**auth, "Idempotency-Key": "k-7"}), 409)
    assert other["error"]["code"] == "idempotency_conflict"
    assert other["error"]["details"] == [{"path": "$.reference",
                                          "message": "used for another movement"}]
    mixed = ok(client.post(URL, json={**body, "reference": "k-8"},
                           headers={**auth, "Idempotency-Key": "k-7"}), 400)
    assert mixed["error"]["details"][0]["path"] == "$.reference"
    assert counts(db) == before


@pytest.mark.parametrize(("body", "path", "message"), [
    ({"amount": "5", "reason": "x"}, "$.amount", "Not a valid integer."),
    ({"amount": 1.5, "reason": "x"}, "$.amount", "Not a valid integer."),
    ({"amount": 0, "reason": "x"}, "$.amount", "must not be 0"),
    ({"amount": 2**31, "reason": "x"}, "$.amount", "Must be greater than or equal to"),
    ({"reason": "x"}, "$.amount", "Missing data for required field."),
    ({"amount": 5}, "$.reason", "Missing data for required field."),
    ({"amount": 5, "reason": "  "}, "$.reason", "must not be blank"),
    ({"amount": 5, "reason": "x" * 201}, "$.reason", "Length must be between 1 and 200."),
    ({"amount": -5, "reason": "x", "expires_at": "2030-01-01"}, "$.expires_at",
     "only points added expire"),
    ({"amount": 5, "reason": "x", "expires_at": "2030-01-01", "lifetime_days": 3},
     "$.lifetime_days", "give expires_at or lifetime_days, not both"),
    ({"amount": 5, "reason": "x", "expires_at": "2000-01-01"}, "$.expires_at",
     "must be after"),
    ({"amount": 5, "reason": "x", "lifetime_days": 0}, "$.lifetime_days",
     "Must be greater than or equal to 1"),
])
def test_bad_input_is_400_naming_the_field(app: Flask, db: Db, body: dict[str, Any], path: str,
                                           message: str) -> None:
    client, auth = app.test_client(), token_for(db, "marketer")
    before = counts(db)
    answer = ok(client.post(URL, json=body, headers=auth), 400)
    assert answer["error"]["code"] == "invalid_input"
    assert any(d["path"] == path and message in d["message"] for d in answer["error"]["details"]), \
        answer
    assert counts(db) == before


def test_who_may_book(app: Flask, db: Db) -> None:
    client = app.test_client()
    body = {"amount": 5, "reason": "x"}
    assert ok(client.post(URL, json=body), 401)["error"]["code"] == "unauthorized"
    assert ok(client.post(URL, json=body, headers=token_for(db, "viewer")),
              403)["error"]["code"] == "forbidden"
    unknown = ok(client.post("/api/v1/customers/nobody/points", json=body,
                             headers=token_for(db, "marketer")), 404)
    assert unknown["error"]["message"] == "no customer with external_id 'nobody'"
    # A session needs its CSRF token.
    browser, csrf = session_client(app, "marketer")
    assert browser.post(URL, json=body).status_code == 400
    ok(browser.post(URL, json=body, headers={"X-CSRFToken": csrf}), 201)


def test_documented_in_openapi(app: Flask, db: Db) -> None:
    doc = ok(app.test_client().get("/api/v1/openapi.json", headers=token_for(db, "viewer")))
    post = doc["paths"]["/api/v1/customers/{external_id}/points"]["post"]
    assert {"201", "200", "409", "400"} <= set(post["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header"
               for p in post["parameters"])
    body = doc["components"]["schemas"]["Points"]
    assert body["required"] == ["amount", "reason"]


def test_customer_page_shows_the_totals(app: Flask, db: Db) -> None:
    auth = token_for(db, "marketer")
    client = app.test_client()
    ok(client.post(URL, json={"amount": 40, "reason": "Welcome", "lifetime_days": 5},
                   headers=auth), 201)
    ok(client.post(URL, json={"amount": -15, "reason": "Coffee"}, headers=auth), 201)
    browser, _ = session_client(app, "viewer")
    page = ok(browser.get("/customers/C1"))
    section = page[page.index('id="balance"'):page.index('id="invoices"')]
    assert "<strong>25</strong> points available" in section
    assert "Expiring within 30 days: <strong>25</strong>" in section
    assert "Redeemed: <strong>15</strong>" in section
    assert "partly redeemed (25 left)" in section
    assert '<span class="hint">by marketer</span>' in section
