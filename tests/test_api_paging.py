"""Paging on every list of the API: which rows come back on which page, and a 400 naming the
parameter for a value out of its range. Query strings are text: "2" must mean 2."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from flask import Flask
from sqlalchemy import insert, select

from engine.db import write_transaction
from engine.models import Activity, Campaign, Customer, Message, Run
from tests.conftest import Db
from tests.webapp import ok, token_for
from tests.world import customer, insert_world


@pytest.fixture
def world(app: Flask, db: Db) -> dict[str, str]:
    """C1..C5; five runs (2025-01-01..05); messages C1 x3, C2, C3; five activities of C1."""
    with write_transaction(db.engine) as conn:
        ids = insert_world(conn, [customer(f"C{n}", first_name=f"Nils{n}") for n in range(2, 6)])
        ids["C1"] = conn.execute(select(Customer.id).where(Customer.external_id == "C1")
                                 ).scalar_one()
        campaign = conn.execute(insert(Campaign).values(key="world", name="World", graph={})
                                ).inserted_primary_key[0]
        for n in range(1, 6):
            conn.execute(insert(Run).values(campaign_id=campaign, run_date=date(2025, 1, n),
                                            version=1, status="completed", counts={}))
        for ext, occurrence in (("C1", "1"), ("C1", "2"), ("C2", "1"), ("C3", "1"),
                                ("C1", "3")):
            conn.execute(insert(Message).values(
                campaign_id=campaign, node_id="m", customer_id=ids[ext], occurrence=occurrence,
                channel="sms", status="sent" if ext == "C1" else "queued",
                send_after=datetime(2025, 1, 1)))
        for n in range(1, 6):
            conn.execute(insert(Activity).values(
                customer_id=ids["C1"], at=datetime(2025, 1, n, 12), kind="message_sent",
                campaign_id=campaign, summary=f"A{n}", details={}))
    return token_for(db, "viewer")


def pages(app: Flask, auth: dict[str, str], url: str, key: str, **params: int | str
          ) -> list[str]:
    answer = ok(app.test_client().get(url, query_string=params, headers=auth))
    rows = answer["items"] if isinstance(answer, dict) else answer
    return [row[key] for row in rows]


def test_customers_page_by_page(app: Flask, world: dict[str, str]) -> None:
    url = "/api/v1/customers"
    first = ok(app.test_client().get(f"{url}?page=1&per_page=2", headers=world))
    assert (first["page"], first["per_page"], first["total"]) == (1, 2, 5)
    assert [c["external_id"] for c in first["items"]] == ["C1", "C2"]
    assert pages(app, world, url, "external_id", page=2, per_page=2) == ["C3", "C4"]
    assert pages(app, world, url, "external_id", page=3, per_page=2) == ["C5"]
    assert pages(app, world, url, "external_id", page=4, per_page=2) == []
    assert pages(app, world, url, "external_id", per_page=500) == ["C1", "C2", "C3", "C4", "C5"]
    assert pages(app, world, url, "external_id", q="nils", page=2, per_page=3) == ["C5"]


@pytest.mark.parametrize(("url", "key", "expected"), [
    ("/api/v1/runs", "run_date",  # latest run date first
     ["2025-01-05", "2025-01-04", "2025-01-03", "2025-01-02", "2025-01-01"]),
    ("/api/v1/messages", "customer", ["C1", "C3", "C2", "C1", "C1"]),  # newest first
    ("/api/v1/customers/C1/activity", "summary", ["A1", "A2", "A3", "A4", "A5"]),
])
def test_limit_offset_lists_page_by_page(app: Flask, world: dict[str, str], url: str, key: str,
                                         expected: list[str]) -> None:
    assert pages(app, world, url, key, limit=2) == expected[:2]
    assert pages(app, world, url, key, limit=2, offset=2) == expected[2:4]
    assert pages(app, world, url, key, limit=2, offset=4) == expected[4:]
    assert pages(app, world, url, key, limit=2, offset=6) == []
    assert pages(app, world, url, key, limit=1000, offset=0) == expected
    assert pages(app, world, url, key) == expected  # defaults: 100 from 0


def test_filters_and_paging_together(app: Flask, world: dict[str, str]) -> None:
    messages = "/api/v1/messages"
    assert pages(app, world, messages, "occurrence", status="sent", limit=2) == ["3", "2"]
    assert pages(app, world, messages, "occurrence", status="sent", limit=2, offset=2) == ["1"]
    assert pages(app, world, messages, "customer", status="queued", offset=1) == ["C2"]
    assert pages(app, world, "/api/v1/runs", "run_date", campaign="world", limit=1,
                 offset=3) == ["2025-01-02"]
    assert pages(app, world, "/api/v1/runs", "run_date", campaign="none") == []
    mine = "/api/v1/customers/C1/messages"  # oldest first
    assert pages(app, world, mine, "occurrence", limit=2) == ["1", "2"]
    assert pages(app, world, mine, "occurrence", limit=2, offset=2) == ["3"]
    assert pages(app, world, mine, "occurrence", offset=3) == []
    assert pages(app, world, "/api/v1/customers/C2/messages", "occurrence") == ["1"]


LIST_PARAMETERS = [
    ("/api/v1/customers", "page", 1, 10**6), ("/api/v1/customers", "per_page", 1, 500),
    ("/api/v1/runs", "limit", 1, 1000), ("/api/v1/runs", "offset", 0, 10**7),
    ("/api/v1/messages", "limit", 1, 1000), ("/api/v1/messages", "offset", 0, 10**7),
    ("/api/v1/customers/C1/activity", "limit", 1, 1000),
    ("/api/v1/customers/C1/activity", "offset", 0, 10**7),
    ("/api/v1/customers/C1/messages", "limit", 1, 1000),
    ("/api/v1/customers/C1/messages", "offset", 0, 10**7),
]


def test_integer_parameters_in_and_out_of_range(app: Flask, world: dict[str, str]) -> None:
    client = app.test_client()
    for url, name, low, high in LIST_PARAMETERS:
        for value in (low, high, f"+{low}"):
            ok(client.get(url, query_string={name: value}, headers=world))
        for value, says in ((low - 1, f"greater than or equal to {low}"),
                            (high + 1, f"less than or equal to {high}"),
                            ("9" * 40, "less than or equal to"), ("2.5", "Not a valid integer"),
                            ("two", "Not a valid integer"), ("", "Not a valid integer"),
                            (" 1", "Not a valid integer"), ("\u0661", "Not a valid integer")):
            answer = ok(client.get(url, query_string={name: value}, headers=world), 400)
            assert answer["error"]["code"] == "invalid_input", (url, value)
            [detail] = answer["error"]["details"]
            assert detail["path"] == f"query.{name}", (url, value)
            assert says in detail["message"], (url, value, detail)
