"""Finding a customer as people write them (full name, a local phone number) and what their
page shows: invoices with days past due, messages with their SMS parts and encoding."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from flask import Flask
from sqlalchemy import insert, select

from engine.db import write_transaction
from engine.models import Campaign, Customer, Message
from tests.conftest import Db
from tests.webapp import session_client, token_for
from tests.world import customer, insert_world

TODAY = date.today()


def people(db: Db) -> None:
    with write_transaction(db.engine) as conn:
        insert_world(conn, [
            customer("AJ", first_name="Aimee", last_name="Jones", phone="+27831112222",
                     phone_valid=True, invoices=[
                         {"due_date": TODAY - timedelta(days=40), "amount": Decimal("1250.50"),
                          "paid_at": None},
                         {"due_date": TODAY - timedelta(days=70), "amount": Decimal("99.00"),
                          "paid_at": TODAY - timedelta(days=72)},
                         {"due_date": TODAY + timedelta(days=5), "amount": Decimal("300.00"),
                          "paid_at": None}]),
            customer("AS", first_name="Aimee", last_name="Smith"),
            customer("BJ", first_name="Bob", last_name="Jones"),
            customer("a_b", first_name="Under"),
            customer("axb", first_name="Score"),
        ])


def found(client: object, headers: dict[str, str], q: str) -> list[str]:
    answer = client.get("/api/v1/customers", query_string={"q": q}, headers=headers)  # type: ignore[attr-defined]
    assert answer.status_code == 200, answer.json
    return [c["external_id"] for c in answer.json["items"]]


def test_search_by_full_name_in_either_order_and_by_a_local_phone(app: Flask, db: Db) -> None:
    people(db)
    client, viewer = app.test_client(), token_for(db, "viewer")
    assert found(client, viewer, "Aimee Jones") == ["AJ"]
    assert found(client, viewer, "  jones   AIMEE ") == ["AJ"]
    assert found(client, viewer, "aimee") == ["AJ", "AS"]
    # 083 111 2222 is +27831112222 in the default region (ZA); so is 0831112222.
    assert found(client, viewer, "083 111 2222") == ["AJ"]
    assert found(client, viewer, "0831112222") == ["AJ"]
    assert found(client, viewer, "082 123 4567") == ["C1"]
    # LIKE's wildcards are searched for as themselves.
    assert found(client, viewer, "a_b") == ["a_b"]
    assert found(client, viewer, "100%") == []
    page = client.get("/customers", query_string={"q": "Aimee Jones"}, headers=viewer)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "1 customer matching" in text and 'href="/customers/AJ"' in text
    assert 'href="/customers/AS"' not in text


def test_the_customer_page_lists_invoices_with_days_past_due(app: Flask, db: Db) -> None:
    people(db)
    client, _csrf = session_client(app, "viewer")
    page = client.get("/customers/AJ")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    section = text[text.index('id="invoices"'):text.index('id="messages"')]
    rows = section.split("<tr>")[2:]  # after the header row
    assert len(rows) == 3
    future, overdue, paid = rows  # latest due first
    assert "AJ-2" in future and "300.00" in future and "unpaid" in future
    assert "AJ-0" in overdue and "1250.50" in overdue and "ZAR" in overdue
    assert f"<td>{TODAY - timedelta(days=40)}</td><td>unpaid</td><td>40</td>" in overdue
    assert "AJ-1" in paid and (f"<td>{TODAY - timedelta(days=70)}</td>"
                               f"<td>{TODAY - timedelta(days=72)}</td><td></td></tr>") in paid
    assert "No invoices." in client.get("/customers/AS").get_data(as_text=True)


def test_messages_show_their_sms_parts_and_encoding(app: Flask, db: Db) -> None:
    people(db)
    with write_transaction(db.engine) as conn:
        campaign_id = conn.execute(insert(Campaign).values(key="sms", name="SMS", graph={})
                                   ).inserted_primary_key[0]
        aimee = conn.execute(select(Customer.id).where(Customer.external_id == "AJ")).scalar_one()
        conn.execute(insert(Message).values(
            campaign_id=campaign_id, node_id="m", customer_id=aimee, occurrence="2025-01-01",
            channel="sms", address="+27831112222", status="sent", body="Ačiū " * 20,
            sms_parts=2, sms_encoding="ucs2", send_after=datetime(2025, 1, 1),
            sent_at=datetime(2025, 1, 1, 0, 1)))
    client, _csrf = session_client(app, "viewer")
    for path in ("/messages", "/customers/AJ"):
        page = client.get(path)
        assert page.status_code == 200
        assert '<div class="sms-parts">2 parts, ucs2</div>' in page.get_data(as_text=True)
    answer = client.get("/api/v1/customers/AJ/messages")
    assert answer.status_code == 200
    assert [(m["sms_parts"], m["sms_encoding"]) for m in answer.json] == [(2, "ucs2")]
    listed = client.get("/api/v1/messages")
    assert listed.status_code == 200
    assert (listed.json[0]["sms_parts"], listed.json[0]["sms_encoding"]) == (2, "ucs2")


def test_the_template_preview_searches_every_customer(app: Flask, db: Db) -> None:
    with write_transaction(db.engine) as conn:
        insert_world(conn, [customer(f"N{i:03d}", first_name=f"Name{i}") for i in range(60)])
    client, _csrf = session_client(app, "marketer")
    page = client.get("/templates/new")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'list="tpl-customer-options"' in text
    # The 61st customer, never in the page's first options, is found by the search it calls.
    answer = client.get("/api/v1/customers?q=N059")
    assert answer.status_code == 200
    assert [c["external_id"] for c in answer.json["items"]] == ["N059"]
    preview = client.post("/api/v1/templates/preview", headers={"X-CSRFToken": _csrf}, json={
        "template": {"key": "draft", "channel": "sms", "body": "Hi {{ customer.first_name }}"},
        "customer": "N059"})
    assert preview.status_code == 200
    assert preview.json["body"] == "Hi Name59"
