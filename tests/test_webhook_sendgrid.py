"""SendGrid's signed Event Webhook: real ECDSA signatures, each event's effect on the message,
the customer and the timeline, once however often it is posted; unsigned, wrongly signed,
stale and replayed calls change nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from engine.db import write_transaction
from engine.models import Activity, Customer, Message, MessageEvent
from engine.outbox import dispatch
from tests.conftest import Db
from tests.fakes import RecordingChannel
from tests.feedback_helpers import SendGridSigner, body_of, snapshot, webhook_app
from tests.test_messaging import DOC, NOW, PEOPLE, SETTINGS, run_on
from tests.world import seed

SIGNER = SendGridSigner()
T0 = 1_750_000_000  # 2025-06-15 15:06:40 UTC


@pytest.fixture
def sent(db: Db, tmp_path: Path) -> dict[str, int]:
    """The past-due emails to Ona and Jonas, sent; their message ids by customer."""
    seed(db.engine, PEOPLE, DOC, tmp_path)
    run_on(db, "past-due")
    dispatch(db.engine, SETTINGS, {"email": RecordingChannel(), "sms": RecordingChannel()},
             now=NOW)
    with db.engine.connect() as conn:
        return {r.external_id: r.id for r in conn.execute(
            select(Customer.external_id, Message.id).join(Customer, Customer.id == Message.customer_id)
            .where(Message.status == "sent"))}


@pytest.fixture
def app(db: Db) -> Iterator[Flask]:
    with webhook_app(db, sendgrid_webhook_key=SIGNER.public) as app:
        yield app


def event(kind: str, message: int | None, n: int, email: str, **extra: Any) -> dict[str, Any]:
    out = {"email": email, "timestamp": T0 + n, "event": kind, "sg_event_id": f"ev-{kind}-{n}",
           "sg_message_id": "sg-abc.filter0001", **extra}
    if message is not None:
        out["nudgeflow_message_id"] = str(message)
    return out


def post(app: Flask, events: list[dict[str, Any]], at: float | None = None) -> Any:
    body = body_of(events)
    return app.test_client().post("/webhooks/sendgrid", data=body,
                                  headers=SIGNER.headers(body, at))


def message(db: Db, mid: int) -> Any:
    with db.engine.connect() as conn:
        return conn.execute(select(Message).where(Message.id == mid)).one()


def timeline(db: Db, ext: str) -> list[tuple[str, str]]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(Activity.kind, Activity.summary).join(Customer, Customer.id == Activity.customer_id)
            .where(Customer.external_id == ext,
                   Activity.kind.not_in(("message_queued", "message_sent")))
            .order_by(Activity.at, Activity.id))]


def customer(db: Db, ext: str) -> Any:
    with db.engine.connect() as conn:
        return conn.execute(select(Customer).where(Customer.external_id == ext)).one()


def test_each_event_changes_message_customer_and_timeline_once(
        app: Flask, db: Db, sent: dict[str, int]) -> None:
    ona, jonas = sent["ona"], sent["jonas"]
    events = [
        event("processed", ona, 0, "ona@example.com"),
        event("deferred", ona, 1, "ona@example.com", response="421 try later", attempt="1"),
        event("delivered", ona, 2, "ona@example.com", response="250 OK"),
        event("open", ona, 3, "ona@example.com", useragent="Mozilla"),
        event("open", ona, 4, "ona@example.com", useragent="Mozilla"),
        event("click", ona, 5, "ona@example.com", url="https://shop.example/pay"),
        event("bounce", jonas, 6, "Jonas@Example.com", type="bounce",
              reason="550 5.1.1 The email account that you tried to reach does not exist"),
        event("delivered", 999_999, 7, "stranger@example.com"),
    ]
    answer = post(app, events)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.json == {"received": 8, "new": 8, "duplicates": 0, "unknown_message": 1}
    o = message(db, ona)
    assert (o.delivery_status, o.delivered_at, o.opened_at, o.clicked_at) == (
        "delivered", datetime(2025, 6, 15, 15, 6, 42), datetime(2025, 6, 15, 15, 6, 43),
        datetime(2025, 6, 15, 15, 6, 45))
    assert message(db, jonas).delivery_status == "bounced"
    assert timeline(db, "ona") == [
        ("message_delivered", "Email delivered to ona@example.com"),
        ("message_opened", "Email to ona@example.com opened"),
        ("message_clicked", "Link clicked in email to ona@example.com: https://shop.example/pay"),
    ]
    why = "550 5.1.1 The email account that you tried to reach does not exist"
    assert timeline(db, "jonas") == [
        ("message_bounced", f"Email to jonas@example.com bounced: {why}"),
        ("profile_changed", f"Email address jonas@example.com marked not valid: bounced ({why})"),
    ]
    assert customer(db, "jonas").email_valid is False
    assert customer(db, "ona").email_valid is True
    with db.engine.connect() as conn:
        stored = conn.execute(select(MessageEvent.event_id, MessageEvent.message_id)
                              .where(MessageEvent.provider == "sendgrid")
                              .order_by(MessageEvent.event_id)).all()
    assert dict(stored)["ev-delivered-7"] is None  # an unknown message: kept, not an error
    assert dict(stored)["ev-open-3"] == ona
    before = snapshot(db)
    again = post(app, events)  # SendGrid posting the batch again, signed anew
    assert again.status_code == 200
    assert again.json == {"received": 8, "new": 0, "duplicates": 8, "unknown_message": 1}
    assert snapshot(db) == before


def test_order_of_arrival_does_not_matter(app: Flask, db: Db, sent: dict[str, int]) -> None:
    ona = sent["ona"]
    assert post(app, [event("delivered", ona, 5, "ona@example.com")]).status_code == 200
    assert post(app, [event("deferred", ona, 1, "ona@example.com"),
                      event("open", ona, 9, "ona@example.com"),
                      event("open", ona, 7, "ona@example.com")]).status_code == 200
    o = message(db, ona)
    assert (o.delivery_status, o.delivered_at, o.opened_at) == (
        "delivered", datetime(2025, 6, 15, 15, 6, 45), datetime(2025, 6, 15, 15, 6, 47))
    assert [k for k, _ in timeline(db, "ona")] == ["message_delivered", "message_opened"]


def test_spam_report_and_unsubscribe_opt_out(app: Flask, db: Db, sent: dict[str, int]) -> None:
    answer = post(app, [event("spamreport", sent["ona"], 1, "ona@example.com"),
                        event("group_unsubscribe", sent["jonas"], 2, "jonas@example.com",
                              asm_group_id=7)])
    assert answer.status_code == 200
    assert message(db, sent["ona"]).delivery_status == "complained"
    assert customer(db, "ona").email_opt_out and customer(db, "jonas").email_opt_out
    assert timeline(db, "ona") == [
        ("message_complained", "Email to ona@example.com marked as spam"),
        ("opted_out", "Opted out of email: marked a message as spam")]
    assert timeline(db, "jonas") == [
        ("opted_out", "Opted out of email: unsubscribed through Sendgrid")]
    assert customer(db, "ona").email_valid  # a complaint is no bad address


@pytest.mark.parametrize(("kind", "extra", "status", "invalid"), [
    ("bounce", {"type": "blocked", "reason": "550 blocked by policy"}, "bounced", False),
    ("dropped", {"reason": "Invalid"}, "dropped", True),
    ("dropped", {"reason": "Bounced Address"}, "dropped", True),
    ("dropped", {"reason": "Invalid SMTPAPI header"}, "dropped", False),
])
def test_only_an_address_gone_for_good_is_marked_not_valid(
        app: Flask, db: Db, sent: dict[str, int], kind: str, extra: dict[str, str],
        status: str, invalid: bool) -> None:
    assert post(app, [event(kind, sent["ona"], 1, "ona@example.com", **extra)]).status_code == 200
    assert message(db, sent["ona"]).delivery_status == status
    assert customer(db, "ona").email_valid is not invalid
    assert ("profile_changed" in [k for k, _ in timeline(db, "ona")]) is invalid


def test_an_event_for_another_address_is_not_applied(app: Flask, db: Db,
                                                     sent: dict[str, int]) -> None:
    """Our id with someone else's address: another system sharing the SendGrid account."""
    answer = post(app, [event("bounce", sent["ona"], 1, "other@example.com", type="bounce")])
    assert answer.json["unknown_message"] == 1
    assert message(db, sent["ona"]).delivery_status is None
    assert customer(db, "ona").email_valid


def refusals(app: Flask) -> list[tuple[str, Any, int, str]]:
    events = [event("delivered", 1, 1, "ona@example.com")]
    body = body_of(events)
    good = SIGNER.headers(body)
    other = SendGridSigner().headers(body)
    now = time.time()
    return [
        ("unsigned", {"Content-Type": "application/json"}, 401, "unsigned"),
        ("no timestamp", {"X-Twilio-Email-Event-Webhook-Signature":
                          good["X-Twilio-Email-Event-Webhook-Signature"]}, 401, "unsigned"),
        ("another key", other, 403, "the signature does not match"),
        ("not base64", {**good, "X-Twilio-Email-Event-Webhook-Signature": "%%%"}, 403,
         "the signature does not match"),
        ("timestamp changed", {**good, "X-Twilio-Email-Event-Webhook-Timestamp":
                               str(int(now) - 1)}, 403, "the signature does not match"),
        ("stale", SIGNER.headers(body, now - 11 * 60), 403, "stale: signed at"),
        ("future", SIGNER.headers(body, now + 5 * 60), 403, "in the future"),
        ("bad timestamp", {**good, "X-Twilio-Email-Event-Webhook-Timestamp": "soon"}, 403,
         "expected Unix seconds"),
    ]


def test_unsigned_wrongly_signed_and_stale_calls_change_nothing(
        app: Flask, db: Db, sent: dict[str, int]) -> None:
    body = body_of([event("delivered", sent["ona"], 1, "ona@example.com")])
    before = snapshot(db)
    client = app.test_client()
    for name, headers, status, text in refusals(app):
        answer = client.post("/webhooks/sendgrid", data=body, headers=headers)
        assert answer.status_code == status, name
        assert text in answer.json["error"]["message"], (name, answer.json)
    tampered = body.replace(b"delivered", b"bounce")
    answer = client.post("/webhooks/sendgrid", data=tampered, headers=SIGNER.headers(body))
    assert answer.status_code == 403
    assert snapshot(db) == before


def test_a_replayed_call_is_refused(app: Flask, db: Db, sent: dict[str, int]) -> None:
    body = body_of([event("delivered", sent["ona"], 1, "ona@example.com")])
    headers = SIGNER.headers(body)
    client = app.test_client()
    assert client.post("/webhooks/sendgrid", data=body, headers=headers).status_code == 200
    before = snapshot(db)
    replay = client.post("/webhooks/sendgrid", data=body, headers=headers)
    assert replay.status_code == 409
    assert replay.json["error"]["code"] == "replayed"
    assert snapshot(db) == before


def test_without_a_key_the_webhook_accepts_nothing(db: Db, sent: dict[str, int]) -> None:
    body = body_of([event("delivered", sent["ona"], 1, "ona@example.com")])
    before = snapshot(db)
    with webhook_app(db) as app:
        for headers in ({}, SIGNER.headers(body)):
            answer = app.test_client().post("/webhooks/sendgrid", data=body, headers=headers)
            assert answer.status_code == 503
            assert "NUDGEFLOW_SENDGRID_WEBHOOK_KEY" in answer.json["error"]["message"]
    assert snapshot(db) == before


def test_a_signed_body_that_is_not_events_is_refused(app: Flask, db: Db) -> None:
    for body, text in ((b"{}", "expected a JSON array of SendGrid events"),
                       (b"[1]", 'event 0: expected an object with an "event" name'),
                       (b"[", "the request is not valid"),
                       (b'[{"event": "open", "email": "a\\u0000b"}]', "the request is not valid")):
        answer = app.test_client().post("/webhooks/sendgrid", data=body,
                                        headers=SIGNER.headers(body))
        assert answer.status_code == 400
        assert answer.json["error"]["message"] == text


def test_delivery_shows_on_pages_and_in_the_api(app: Flask, db: Db, sent: dict[str, int]) -> None:
    from engine.users import create_user
    from tests.webapp import PASSWORD, session_client, token_for

    ona, jonas = sent["ona"], sent["jonas"]
    assert post(app, [event("delivered", ona, 1, "ona@example.com"),
                      event("open", ona, 2, "ona@example.com"),
                      event("click", ona, 3, "ona@example.com", url="https://x.example"),
                      event("bounce", jonas, 4, "jonas@example.com", type="blocked")]
                ).status_code == 200
    with write_transaction(db.engine) as conn:
        create_user(conn, "viewer", "viewer", PASSWORD)
    auth = token_for(db, "viewer")
    client = app.test_client()
    counts = {"sent": 2, "delivered": 1, "bounced": 1, "opened": 1, "clicked": 1}
    runs = client.get("/api/v1/runs?campaign=past-due", headers=auth).json
    assert [r["delivery"] for r in runs] == [counts]
    assert client.get(f"/api/v1/runs/{runs[0]['id']}", headers=auth).json["delivery"] == counts
    campaigns = {c["key"]: c["delivery"]
                 for c in client.get("/api/v1/campaigns", headers=auth).json}
    assert campaigns["past-due"] == counts
    assert campaigns["offer"] == {"sent": 0, "delivered": 0, "bounced": 0, "opened": 0,
                                  "clicked": 0}
    listed = {m["id"]: m for m in client.get("/api/v1/messages", headers=auth).json}
    assert (listed[ona]["delivery_status"], listed[jonas]["delivery_status"]) == (
        "delivered", "bounced")
    assert listed[ona]["opened_at"] == "2025-06-15T15:06:42+00:00"
    mine = client.get("/api/v1/customers/ona/messages", headers=auth).json
    assert [m["delivery_status"] for m in mine] == ["delivered"]
    pages, _ = session_client(app, "viewer")
    runs_page = pages.get("/runs").get_data(as_text=True)
    assert "2 sent, 1 delivered, 1 bounced, 1 opened, 1 clicked" in runs_page
    assert "2 sent, 1 delivered, 1 bounced, 1 opened, 1 clicked" in \
        pages.get("/campaigns").get_data(as_text=True)
    customer_page = pages.get("/customers/ona").get_data(as_text=True)
    assert '<div class="delivery">delivered, opened, clicked</div>' in customer_page
    assert '<div class="delivery">bounced</div>' in pages.get("/messages").get_data(as_text=True)


def test_concurrent_calls_about_one_message_keep_every_event(db: Db,
                                                             sent: dict[str, int]) -> None:
    """Call A stores `delivered` and has not committed when call B stores `open`: B waits for
    A, then sees its event, so neither state overwrites the other."""
    import threading

    from engine.feedback.events import Event
    from engine.feedback.record import record

    ona = sent["ona"]
    now = datetime(2025, 6, 15, 16)
    inside, done = threading.Event(), threading.Event()

    def first() -> None:
        with write_transaction(db.engine) as conn:
            record(conn, "email", [Event("sendgrid", "a", "delivered", datetime(2025, 6, 15, 15),
                                         message_id=ona)], now)
            inside.set()
            done.wait(0.5)  # B is waiting meanwhile

    a = threading.Thread(target=first)
    a.start()
    assert inside.wait(10)
    with write_transaction(db.engine) as conn:
        record(conn, "email", [Event("sendgrid", "b", "opened", datetime(2025, 6, 15, 15, 1),
                                     message_id=ona)], now)
    a.join()
    o = message(db, ona)
    assert (o.delivery_status, o.delivered_at, o.opened_at) == (
        "delivered", datetime(2025, 6, 15, 15), datetime(2025, 6, 15, 15, 1))


def test_a_bounce_of_an_old_address_leaves_the_new_one_valid(app: Flask, db: Db,
                                                             sent: dict[str, int]) -> None:
    from sqlalchemy import update

    with write_transaction(db.engine) as conn:
        conn.execute(update(Customer).where(Customer.external_id == "ona")
                     .values(email="ona@new.example"))
    assert post(app, [event("bounce", sent["ona"], 1, "ona@example.com", type="bounce")]
                ).status_code == 200
    assert message(db, sent["ona"]).delivery_status == "bounced"
    assert customer(db, "ona").email_valid
