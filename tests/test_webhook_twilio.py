"""Twilio's status callbacks and replies, signed as Twilio signs them (the twilio library's
RequestValidator): delivery state once per status, STOP opts out, START opts back in; the
StatusCallback our sends carry names the message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from engine.channels import channels_for
from engine.channels.twilio import TwilioChannel
from engine.config import Settings
from engine.models import Activity, Customer, Message
from engine.outbox import dispatch
from tests.conftest import Db
from tests.fakes import RecordingChannel, fake_server, twilio_created
from tests.feedback_helpers import (
    PUBLIC_URL,
    TWILIO_TOKEN,
    snapshot,
    twilio_headers,
    webhook_app,
)
from tests.test_messaging import DOC, NOW, PEOPLE, SETTINGS, run_on
from tests.world import seed

SID = "SM" + "0" * 31 + "1"
ONA = "+37061234567"


@pytest.fixture
def sms(db: Db, tmp_path: Path) -> int:
    """The installment SMS to Ona, sent through the real twilio client; its message id."""
    seed(db.engine, PEOPLE, DOC, tmp_path)
    run_on(db, "installment")
    with fake_server(twilio_created(1)) as fake:
        channel = TwilioChannel("AC123", TWILIO_TOKEN, "+15550001111", base_url=fake.url,
                                status_callback=f"{PUBLIC_URL}/webhooks/twilio/status")
        assert dispatch(db.engine, SETTINGS, {"email": RecordingChannel(), "sms": channel},
                        now=NOW).sent == 1
    with db.engine.connect() as conn:
        mid = conn.execute(select(Message.id).where(Message.channel == "sms")).scalar_one()
    [request] = fake.requests
    assert request["body"]["StatusCallback"] == \
        f"{PUBLIC_URL}/webhooks/twilio/status?message={mid}"
    return mid


@pytest.fixture
def app(db: Db) -> Iterator[Flask]:
    with webhook_app(db, twilio_auth_token=TWILIO_TOKEN) as app:
        yield app


def status(app: Flask, mid: int, state: str, **extra: str) -> Any:
    path = f"/webhooks/twilio/status?message={mid}"
    form = {"MessageSid": SID, "SmsSid": SID, "AccountSid": "AC123", "From": "+15550001111",
            "To": ONA, "MessageStatus": state, "SmsStatus": state, **extra}
    return app.test_client().post(path, data=form, headers=twilio_headers(path, form))


def reply(app: Flask, sid: str, body: str, sender: str = ONA) -> Any:
    path = "/webhooks/twilio/inbound"
    form = {"MessageSid": sid, "AccountSid": "AC123", "From": sender, "To": "+15550001111",
            "Body": body, "NumMedia": "0"}
    return app.test_client().post(path, data=form, headers=twilio_headers(path, form))


def row(db: Db, mid: int) -> Any:
    with db.engine.connect() as conn:
        return conn.execute(select(Message).where(Message.id == mid)).one()


def timeline(db: Db) -> list[tuple[str, str]]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(Activity.kind, Activity.summary).join(Customer, Customer.id == Activity.customer_id)
            .where(Customer.external_id == "ona",
                   Activity.kind.not_in(("message_queued", "message_sent", "message_skipped")))
            .order_by(Activity.id))]


def opted_out(db: Db) -> bool:
    with db.engine.connect() as conn:
        return bool(conn.execute(select(Customer.sms_opt_out)
                                 .where(Customer.external_id == "ona")).scalar_one())


def test_status_callbacks_set_the_delivery_state_once(app: Flask, db: Db, sms: int) -> None:
    assert status(app, sms, "sent").status_code == 200
    answer = status(app, sms, "delivered")
    assert answer.status_code == 200
    assert answer.json == {"received": 1, "new": 1, "duplicates": 0, "unknown_message": 0}
    m = row(db, sms)
    assert m.delivery_status == "delivered" and m.delivered_at is not None
    assert timeline(db) == [("message_delivered", f"SMS delivered to {ONA}")]
    before = snapshot(db)
    assert status(app, sms, "delivered").json["duplicates"] == 1
    assert snapshot(db) == before


def test_undelivered_with_its_error_code(app: Flask, db: Db, sms: int) -> None:
    assert status(app, sms, "undelivered", ErrorCode="30003").status_code == 200
    assert row(db, sms).delivery_status == "undelivered"
    assert timeline(db) == [("message_undelivered",
                             f"SMS to {ONA} not delivered (undelivered): Twilio error 30003")]


def test_a_callback_naming_another_message_is_refused(app: Flask, db: Db, sms: int) -> None:
    """The signature covers the query: the message id cannot be changed."""
    path = f"/webhooks/twilio/status?message={sms}"
    form = {"MessageSid": SID, "To": ONA, "MessageStatus": "failed"}
    headers = twilio_headers(path, form)
    before = snapshot(db)
    client = app.test_client()
    for url, data, sent_headers, code in (
            (f"/webhooks/twilio/status?message={sms + 1}", form, headers, 403),
            (path, {**form, "MessageStatus": "delivered"}, headers, 403),
            (path, form, twilio_headers(path, form, token="another token"), 403),
            (path, form, {}, 401)):
        answer = client.post(url, data=data, headers=sent_headers)
        assert answer.status_code == code
    assert snapshot(db) == before


def test_stop_opts_out_and_start_opts_back_in(app: Flask, db: Db, sms: int) -> None:
    answer = reply(app, "SMa1", "  Stop ")
    assert answer.status_code == 200
    assert answer.mimetype == "text/xml"
    assert answer.get_data(as_text=True) == \
        '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    assert opted_out(db)
    assert reply(app, "SMa1", "  Stop ").status_code == 200  # Twilio retrying: once
    assert reply(app, "SMa2", "thanks!").status_code == 200  # not a keyword
    assert opted_out(db)
    assert reply(app, "SMa3", "start").status_code == 200
    assert not opted_out(db)
    assert reply(app, "SMa1", "  Stop ").status_code == 200  # replayed: still nothing
    assert not opted_out(db)
    assert timeline(db) == [
        ("opted_out", "Opted out of text messages: replied STOP to a text message"),
        ("opted_in", "Opted back in to text messages: replied START to a text message")]


@pytest.mark.parametrize("word", ["STOPALL", "unsubscribe", "Cancel", "END", "quit."])
def test_every_stop_word(app: Flask, db: Db, sms: int, word: str) -> None:
    assert reply(app, "SMb1", word).status_code == 200
    assert opted_out(db)


def test_unsigned_replies_change_nothing(app: Flask, db: Db, sms: int) -> None:
    before = snapshot(db)
    form = {"MessageSid": "SMc1", "From": ONA, "Body": "STOP"}
    client = app.test_client()
    assert client.post("/webhooks/twilio/inbound", data=form).status_code == 401
    bad = twilio_headers("/webhooks/twilio/inbound", {**form, "Body": "hello"})
    assert client.post("/webhooks/twilio/inbound", data=form, headers=bad).status_code == 403
    assert snapshot(db) == before


def test_without_an_auth_token_the_twilio_webhooks_are_off(db: Db, sms: int) -> None:
    with webhook_app(db) as app:
        answer = reply(app, "SMd1", "STOP")
    assert answer.status_code == 503
    assert "NUDGEFLOW_TWILIO_AUTH_TOKEN" in answer.json["error"]["message"]
    assert not opted_out(db)


def test_status_callback_only_for_a_public_url() -> None:
    base = {"sms_provider": "twilio", "twilio_account_sid": "AC1", "twilio_auth_token": "t",
            "twilio_from": "+15550001111"}
    public = channels_for(Settings(public_url="https://nf.example/app", **base))["sms"]
    local = channels_for(Settings(**base))["sms"]
    assert isinstance(public, TwilioChannel) and isinstance(local, TwilioChannel)
    assert public.status_callback == "https://nf.example/app/webhooks/twilio/status"
    assert local.status_callback is None  # Twilio cannot call back 127.0.0.1
