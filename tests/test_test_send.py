"""Test sends: a template rendered for a customer goes at once to the address given, through the
configured channel, and is recorded as a test: no message, no credit, no timeline entry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from engine import credits
from engine.config import Settings
from engine.db import write_transaction
from engine.models import Activity, Customer, Message
from engine.models import TestSend as Sent
from engine.workspace import set_setting
from tests.conftest import Db
from tests.webapp import session_client, token_for

SMS = {"key": "hello-sms", "name": "Hello", "channel": "sms",
       "body": "Hello {{ customer.first_name | striptags }}"}
EMAIL = {"key": "hello-mail", "name": "Hello", "channel": "email",
         "subject": "For {{ customer.external_id }}", "body": "Dear {{ customer.external_id }}"}


@pytest.fixture
def outbox(app: Flask, db: Db, tmp_path: Path) -> Iterator[Path]:
    """The app's providers write to a directory of the test's own (the file provider)."""
    settings = app.config["NUDGEFLOW_SETTINGS"]
    app.config["NUDGEFLOW_SETTINGS"] = Settings(
        database_url=settings.database_url, secret_key="k", outbox_dir=tmp_path / "outbox")
    admin = token_for(db, "admin")
    client = app.test_client()
    for doc in (SMS, EMAIL):
        assert client.post("/api/v1/templates", json=doc, headers=admin).status_code == 201
    with write_transaction(db.engine) as conn:
        set_setting(conn, "sms_sender", "Nudgeflow")
        set_setting(conn, "sender", "news@example.com")
        credits.add(conn, "sms", 5)
    yield tmp_path / "outbox"


def counts(db: Db) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {name: conn.execute(select(func.count()).select_from(model)).scalar_one()
                for name, model in (("messages", Message), ("activities", Activity),
                                    ("tests", Sent))}


def test_a_test_sms_goes_to_that_number_with_the_text_rendered_for_the_customer(
        app: Flask, db: Db, outbox: Path) -> None:
    client = app.test_client()
    answer = client.post("/api/v1/templates/hello-sms/test-send",
                         json={"customer": "C1", "to": "+27 82 555 0101"},
                         headers=token_for(db, "marketer"))
    assert answer.status_code == 201, answer.json
    assert answer.json["status"] == "sent"
    assert answer.json["to"] == "+27825550101"
    [written] = (outbox / "sms").iterdir()
    assert written.read_text() == (f"To: +27825550101\nFrom: Nudgeflow\n"
                                   f"Message-Id: {-answer.json['id']}\n\nHello Ana\n")
    with db.engine.connect() as conn:
        row = conn.execute(select(Customer.external_id, Sent.user_name, Sent.template_key,
                                  Sent.address, Sent.body, Sent.status, Sent.provider_id)
                           .join(Customer, Customer.id == Sent.customer_id)).one()
        balance = credits.balances(conn)["sms"]
    assert tuple(row) == ("C1", "marketer", "hello-sms", "+27825550101", "Hello Ana", "sent",
                          f"file:{written.name}")
    assert counts(db) == {"messages": 0, "activities": 0, "tests": 1}
    assert balance == 5  # no credit taken
    timeline = client.get("/api/v1/customers/C1/activity", headers=token_for(db, "viewer"))
    assert timeline.status_code == 200 and timeline.json == []


def test_a_draft_email_is_test_sent_from_the_email_sender(app: Flask, db: Db,
                                                          outbox: Path) -> None:
    draft = {**EMAIL, "key": "draft", "subject": "Draft for {{ customer.external_id }}"}
    answer = app.test_client().post(
        "/api/v1/templates/test-send",
        json={"template": draft, "customer": "C1", "to": "Tester@Example.COM"},
        headers=token_for(db, "admin"))
    assert answer.status_code == 201, answer.json
    assert (answer.json["status"], answer.json["subject"], answer.json["body"]) == (
        "sent", "Draft for C1", "Dear C1")
    [written] = (outbox / "email").iterdir()
    text = written.read_text()
    assert "To: Tester@example.com" in text and "From: news@example.com" in text
    assert "Subject: Draft for C1" in text and "Dear C1" in text


def test_a_viewer_may_not_send_a_test(app: Flask, db: Db, outbox: Path) -> None:
    answer = app.test_client().post("/api/v1/templates/hello-sms/test-send",
                                    json={"customer": "C1", "to": "+27825550101"},
                                    headers=token_for(db, "viewer"))
    assert answer.status_code == 403
    assert not (outbox / "sms").exists()
    assert counts(db)["tests"] == 0


@pytest.mark.parametrize(("template", "to", "expected"), [
    ("hello-sms", "not a phone", "expected a phone number (+27821234567) for an SMS template, "
                                 "got 'not a phone'"),
    ("hello-mail", "+27825550101", "expected an email address for an email template, got "
                                   "'+27825550101'"),
])
def test_a_bad_address_is_refused_naming_the_field(app: Flask, db: Db, outbox: Path,
                                                   template: str, to: str, expected: str) -> None:
    answer = app.test_client().post(f"/api/v1/templates/{template}/test-send",
                                    json={"customer": "C1", "to": to},
                                    headers=token_for(db, "marketer"))
    assert answer.status_code == 400
    assert answer.json["error"]["details"] == [{"path": "$.to", "message": expected}]
    assert counts(db)["tests"] == 0


def test_the_template_page_has_a_test_send_form_posting_with_csrf(app: Flask, db: Db,
                                                                  outbox: Path) -> None:
    client, csrf = session_client(app, "marketer")
    page = client.get("/templates/hello-sms").get_data(as_text=True)
    assert 'id="test-send-form"' in page and 'name="to"' in page
    body = {"customer": "C1", "to": "+27825550101"}
    refused = client.post("/api/v1/templates/hello-sms/test-send", json=body)
    assert refused.status_code == 400  # no CSRF token: nothing sent
    assert counts(db)["tests"] == 0
    sent = client.post("/api/v1/templates/hello-sms/test-send", json=body,
                       headers={"X-CSRFToken": csrf})
    assert sent.status_code == 201 and sent.json["status"] == "sent"
    viewer, _ = session_client(app, "viewer")
    assert 'id="test-send-form"' not in viewer.get("/templates/hello-sms").get_data(as_text=True)
