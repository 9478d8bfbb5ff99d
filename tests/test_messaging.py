"""The outbox end to end: runs enqueue, the dispatcher renders and sends through the real
sendgrid and twilio clients against local fake servers, and records what happened."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine import credits
from engine.campaigns import import_file
from engine.channels.sendgrid import SendGridChannel
from engine.channels.twilio import TwilioChannel
from engine.config import Settings
from engine.db import write_transaction
from engine.executor import run
from engine.models import Activity, Customer, Message
from engine.outbox import dispatch
from tests.conftest import Db
from tests.fakes import RecordingChannel, Reply, fake_server, twilio_created
from tests.world import customer, insert_world, seed

MONDAY = date(2025, 6, 2)
SETTINGS = Settings(public_url="https://nf.example", secret_key="test-secret", max_attempts=3)
DOC = {
    "version": 1,
    "segments": [{"key": "past-due-30", "rules": {"all": [
        {"field": "days_past_due", "op": ">=", "value": 30},
        {"field": "has_valid_email", "op": "=", "value": True}]}}],
    "templates": [
        {"key": "past-due-email", "channel": "email",
         "subject": "{{ customer.first_name }}, {{ customer.overdue_amount }} is overdue",
         "body": "Dear {{ customer.full_name }}, {{ customer.days_past_due }} days overdue."},
        {"key": "installment-sms", "channel": "sms", "transliterate": True,
         "body": "Sveiki {{ customer.first_name }}! Saskaita {{ invoice.external_id }}: "
                 "{{ invoice.amount }} {{ invoice.currency }} iki {{ invoice.due_date }}."},
        {"key": "offer", "channel": "email", "subject": "Offer",
         "body": "Hi {{ customer.first_name }}. Leave: {{ unsubscribe_url }}"},
    ],
    "campaigns": [
        {"key": "past-due", "name": "Past due", "status": "active", "purpose": "service",
         "graph": {"nodes": [
             {"id": "t", "type": "trigger",
              "config": {"kind": "schedule", "every": "week", "weekdays": ["mon"]}},
             {"id": "s", "type": "segment-select", "config": {"segment": "past-due-30"}},
             {"id": "m", "type": "send-message",
              "config": {"template": "past-due-email", "reply_to": "collect@example.com",
                         "sender": "billing@example.com"}}],
             "edges": [["t", "s"], ["s", "m"]]}},
        {"key": "installment", "name": "Installment", "status": "active", "purpose": "service",
         "graph": {"nodes": [
             {"id": "t", "type": "trigger", "config": {"kind": "invoice_due", "offset_days": -3}},
             {"id": "m", "type": "send-message", "config": {"template": "installment-sms"}}],
             "edges": [["t", "m"]]}},
        {"key": "offer", "name": "Offer", "status": "active", "purpose": "marketing",
         "graph": {"nodes": [
             {"id": "t", "type": "trigger", "config": {"kind": "manual"}},
             {"id": "m", "type": "send-message",
              "config": {"template": "offer", "sender": "news@example.com"}}],
             "edges": [["t", "m"]]}},
    ],
}
EMAIL = {"email_valid": True, "marketing_consent": True}
PEOPLE = [
    customer("ona", first_name="Ona", last_name="Žemaitė", email="ona@example.com", **EMAIL,
             phone="+37061234567", phone_valid=True, invoices=[
                 {"due_date": MONDAY - timedelta(days=40), "amount": Decimal("120.50"),
                  "paid_at": None},
                 {"due_date": MONDAY + timedelta(days=3), "amount": Decimal("99.90"),
                  "paid_at": None}]),
    customer("jonas", first_name="Jonas", last_name="Kazlauskas", email="jonas@example.com",
             **EMAIL, invoices=[{"due_date": MONDAY - timedelta(days=31),
                                 "amount": Decimal("10"), "paid_at": None}]),
    customer("late-but-optout", first_name="Eve", email="eve@example.com", email_opt_out=True,
             **EMAIL, invoices=[{"due_date": MONDAY - timedelta(days=60),
                                 "amount": Decimal("5"), "paid_at": None}]),
]


@pytest.fixture
def ws(db: Db, tmp_path: Path) -> Db:
    seed(db.engine, PEOPLE, DOC, tmp_path)
    return db


def run_on(db: Db, key: str, d: date = MONDAY, manual: bool = False) -> None:
    result = run(db.engine, key, d, now=datetime(d.year, d.month, d.day, 6), manual=manual)
    assert result.status == "completed", result.error


def messages(db: Db) -> list[Any]:
    with db.engine.connect() as conn:
        return conn.execute(select(Customer.external_id, Message.__table__)
                            .join(Customer, Customer.id == Message.customer_id)
                            .order_by(Message.id)).all()


def activities(db: Db, kind: str) -> list[Any]:
    with db.engine.connect() as conn:
        return conn.execute(select(Activity.summary, Activity.details, Activity.message_id)
                            .where(Activity.kind == kind).order_by(Activity.id)).all()


NOW = datetime(2025, 6, 2, 12, 0)


def test_past_due_blast_through_sendgrid(ws: Db) -> None:
    run_on(ws, "past-due")
    ok = Reply(202, "", {"X-Message-Id": "sg-abc"})
    with fake_server(ok) as fake:
        channel = SendGridChannel("SG.test-key", host=fake.url)
        stats = dispatch(ws.engine, SETTINGS, {"email": channel, "sms": RecordingChannel()},
                         now=NOW)
        again = dispatch(ws.engine, SETTINGS, {"email": channel, "sms": RecordingChannel()},
                         now=NOW + timedelta(hours=1))
    assert (stats.sent, stats.failed, again.claimed) == (2, 0, 0)
    assert len(fake.requests) == 2  # different bodies: one request each
    request = fake.requests[0]
    assert request["path"] == "/v3/mail/send"
    assert request["headers"]["Authorization"] == "Bearer SG.test-key"
    ids = {m.external_id: m.id for m in messages(ws)}
    assert request["body"] == {
        "personalizations": [{
            "to": [{"email": "ona@example.com"}],
            "subject": "Ona, 120.50 is overdue",
            "custom_args": {"nudgeflow_message_id": str(ids["ona"])}}],
        "from": {"email": "billing@example.com"},
        "reply_to": {"email": "collect@example.com"},
        "content": [{"type": "text/plain", "value": "Dear Ona Žemaitė, 40 days overdue."}],
        "tracking_settings": {"open_tracking": {"enable": False},
                              "click_tracking": {"enable": False, "enable_text": False}},
    }
    assert fake.requests[1]["body"]["personalizations"][0]["subject"] == \
        "Jonas, 10.00 is overdue"
    rows = {m.external_id: m for m in messages(ws)}
    assert rows["ona"].status == "sent" and rows["ona"].provider_id == "sg-abc"
    assert rows["ona"].subject == "Ona, 120.50 is overdue"
    assert rows["ona"].sent_at == NOW and rows["ona"].attempts == 1
    assert rows["late-but-optout"].status == "skipped"
    sent = activities(ws, "message_sent")
    assert [a.summary for a in sent] == ["Email sent to ona@example.com",
                                         "Email sent to jonas@example.com"]
    assert sent[0].details == {"provider_id": "sg-abc", "attempts": 1,
                               "subject": "Ona, 120.50 is overdue"}


@pytest.mark.parametrize(("script", "final", "attempts", "error"), [
    ([Reply(429, {"errors": [{"message": "too many"}]})], "sent", 2, None),
    ([Reply(500, "oops")] * 6, "failed", 3, "SendGrid 500: oops"),  # 3 each for 2 messages
    ([Reply(400, {"errors": [{"message": "The from address is not verified",
                              "field": "from"}]})],
     "failed", 1, "SendGrid 400: The from address is not verified"),
    ([Reply(202, "", hang=2.0)], "sent", 2, None),  # timed out once, then accepted
])
def test_sendgrid_faults(ws: Db, script: list[Reply], final: str, attempts: int,
                         error: str | None) -> None:
    run_on(ws, "past-due")
    with fake_server(Reply(202, "", {"X-Message-Id": "sg-1"})) as fake:
        fake.script = list(script)
        channel = SendGridChannel("SG.k", host=fake.url, timeout=0.5)
        now = NOW
        for _ in range(5):
            # One request at a time: the script's answers go to ona's, then jonas's, in order.
            dispatch(ws.engine, SETTINGS, {"email": channel, "sms": RecordingChannel()},
                     now=now, batch_size=1, in_flight=1)
            now += timedelta(hours=7)  # past any backoff
    ona = next(m for m in messages(ws) if m.external_id == "ona")
    assert (ona.status, ona.attempts, ona.last_error) == (final, attempts, error)
    failed = [a for a in activities(ws, "message_failed") if a.message_id == ona.id]
    if final == "failed":
        assert failed[0].summary == f"Message to ona@example.com failed: {error}"
        assert failed[0].details == {"error": error, "attempts": attempts}
    else:
        assert failed == []


def test_connection_refused_is_retried_with_backoff(ws: Db) -> None:
    run_on(ws, "past-due")
    channel = SendGridChannel("SG.k", host="http://127.0.0.1:9", timeout=0.5)
    stats = dispatch(ws.engine, SETTINGS, {"email": channel, "sms": RecordingChannel()}, now=NOW)
    assert (stats.claimed, stats.retried, stats.sent) == (2, 2, 0)
    ona = next(m for m in messages(ws) if m.external_id == "ona")
    assert ona.status == "queued" and ona.send_after == NOW + timedelta(minutes=1)
    assert ona.last_error.startswith("SendGrid unreachable")
    # Not due before its backoff has passed.
    assert dispatch(ws.engine, SETTINGS, {"email": channel, "sms": RecordingChannel()},
                    now=NOW + timedelta(seconds=30)).claimed == 0


def test_installment_sms_through_twilio(ws: Db) -> None:
    run_on(ws, "installment")
    with fake_server(twilio_created(1)) as fake:
        channel = TwilioChannel("AC123", "token", "+15550001111", base_url=fake.url)
        stats = dispatch(ws.engine, SETTINGS, {"email": RecordingChannel(), "sms": channel},
                         now=NOW)
    assert stats.sent == 1
    [request] = fake.requests
    assert request["path"] == "/2010-04-01/Accounts/AC123/Messages.json"
    ona_invoice = "ona-1"
    assert request["body"] == {
        "To": "+37061234567", "From": "+15550001111",
        "Body": f"Sveiki Ona! Saskaita {ona_invoice}: 99.90 ZAR iki 2025-06-05."}
    [row] = [m for m in messages(ws) if m.channel == "sms"]
    assert (row.status, row.sms_encoding, row.sms_parts) == ("sent", "gsm7", 1)
    assert row.provider_id == "SM" + "0" * 31 + "1"


@pytest.mark.parametrize(("code", "message", "status", "opted_out", "phone_valid", "logged"), [
    (21211, "Invalid 'To' Phone Number", "failed", False, False, "profile_changed"),
    (21614, "'To' number is not a valid mobile number", "failed", False, False,
     "profile_changed"),
    (21610, "Attempt to send to unsubscribed recipient", "failed", True, True, "opted_out"),
    (21408, "Permission to send an SMS has not been enabled", "failed", False, True, None),
    (20003, "Authenticate", "queued", False, True, None),  # our credentials: retried
    (21606, "The From phone number is not a valid, SMS-capable inbound phone number",
     "queued", False, True, None),
])
def test_what_a_twilio_refusal_says_about_the_recipient(
        ws: Db, code: int, message: str, status: str, opted_out: bool, phone_valid: bool,
        logged: str | None) -> None:
    run_on(ws, "installment")
    http = 401 if code == 20003 else 400
    bad = Reply(http, {"code": code, "message": message, "status": http})
    with fake_server(bad) as fake:
        channel = TwilioChannel("AC123", "token", "+15550001111", base_url=fake.url)
        dispatch(ws.engine, SETTINGS, {"email": RecordingChannel(), "sms": channel}, now=NOW)
    assert len(fake.requests) == 1
    [row] = [m for m in messages(ws) if m.channel == "sms"]
    assert (row.status, row.attempts) == (status, 1)
    assert row.last_error == f"Twilio {http} error {code}: {message}"
    with ws.engine.connect() as conn:
        ona = conn.execute(select(Customer).where(Customer.external_id == "ona")).one()
        kinds = {a.kind: a for a in conn.execute(
            select(Activity).where(Activity.customer_id == ona.id))}
    assert (ona.sms_opt_out, ona.phone_valid) == (opted_out, phone_valid)
    assert ("message_failed" in kinds) == (status == "failed")
    for kind in ("opted_out", "profile_changed"):
        assert (kind in kinds) == (kind == logged), kind
    if logged == "opted_out":
        assert kinds["opted_out"].details["message_id"] == row.id
        assert "asked the sender to stop" in kinds["opted_out"].summary
    if logged == "profile_changed":
        assert kinds["profile_changed"].details["fields"] == {
            "phone_valid": {"old": True, "new": False}}
        assert kinds["profile_changed"].summary == (
            "Profile changed (provider): phone +37061234567 marked invalid")
        # The next campaign skips the number with a reason instead of paying to fail again.
        with write_transaction(ws.engine) as conn:
            conn.execute(Message.__table__.delete().where(Message.id == row.id))
        run_on(ws, "installment")
        with ws.engine.connect() as conn:
            skipped = conn.execute(select(Activity.details).where(
                Activity.customer_id == ona.id, Activity.kind == "message_skipped")).scalars()
            assert [d["reason"] for d in skipped] == ["invalid_address"]


def test_no_credit_holds_until_credit_is_added(ws: Db) -> None:
    run_on(ws, "past-due")
    with write_transaction(ws.engine) as conn:
        credits.add(conn, "email", 1)
    rec = RecordingChannel()
    stats = dispatch(ws.engine, SETTINGS, {"email": rec, "sms": RecordingChannel()}, now=NOW)
    assert (stats.sent, stats.held) == (1, 1)
    held = [m for m in messages(ws) if m.status == "held"]
    assert len(held) == 1 and held[0].attempts == 0
    assert dispatch(ws.engine, SETTINGS, {"email": rec, "sms": RecordingChannel()},
                    now=NOW).claimed == 0
    with write_transaction(ws.engine) as conn:
        assert credits.add(conn, "email", 5) == 5
        assert credits.balances(conn) == {"email": 5, "sms": None}
    assert dispatch(ws.engine, SETTINGS, {"email": rec, "sms": RecordingChannel()},
                    now=NOW).sent == 1
    assert sorted(m.to for m in rec.sent) == ["jonas@example.com", "ona@example.com"]
    with ws.engine.connect() as conn:
        assert credits.balances(conn)["email"] == 4


def test_credit_goes_to_each_message_the_balance_still_covers(db: Db) -> None:
    with write_transaction(db.engine) as conn:
        assert credits.take(conn, "sms", [2, 1, 1]) == [True] * 3  # no meter: no limit
        credits.add(conn, "sms", 3)
        # A 2-part SMS that no longer fits waits; the 1-part one after it still goes.
        assert credits.take(conn, "sms", [2, 2, 1]) == [True, False, True]
        assert credits.take(conn, "sms", [1]) == [False]
        assert credits.balances(conn)["sms"] == 0


@pytest.mark.parametrize("consent_mode", ["require", "ignore"])
def test_choices_made_after_queueing_hold_at_dispatch(ws: Db, consent_mode: str) -> None:
    """A message waits (for its send time, for credit) after it is queued: an opt-out or a
    withdrawn consent in between cancels it, with the reason in the log, and takes no credit."""
    from sqlalchemy import update

    from engine.unsubscribe import opt_out
    from engine.workspace import set_setting

    run_on(ws, "offer", manual=True)
    run_on(ws, "installment")
    with write_transaction(ws.engine) as conn:
        ids = dict(conn.execute(select(Customer.external_id, Customer.id)).all())
        assert opt_out(conn, ids["ona"], "email", None)
        conn.execute(update(Customer).where(Customer.id == ids["jonas"])
                     .values(marketing_consent=False))
        set_setting(conn, "consent_mode", consent_mode)
        credits.add(conn, "email", 5)
    email, sms = RecordingChannel(), RecordingChannel()
    stats = dispatch(ws.engine, SETTINGS, {"email": email, "sms": sms}, now=NOW)
    # Ona opted out of email only: her SMS still goes.
    assert [m.to for m in sms.sent] == ["+37061234567"]
    ignored = consent_mode == "ignore"
    assert [m.to for m in email.sent] == (["jonas@example.com"] if ignored else [])
    assert (stats.sent, stats.cancelled) == ((2, 1) if ignored else (1, 2))
    rows = {m.external_id: m for m in messages(ws) if m.channel == "email"}
    assert (rows["ona"].status, rows["ona"].last_error, rows["ona"].sent_at) == (
        "cancelled", "not sent: the customer opted out of email after it was queued", None)
    assert rows["jonas"].status == ("sent" if ignored else "cancelled")
    expected = [("Message to ona@example.com cancelled: the customer opted out of email after "
                 "it was queued", {"reason": "opted_out"}, rows["ona"].id)]
    if not ignored:
        expected.append(("Message to jonas@example.com cancelled: the customer withdrew "
                         "marketing consent after it was queued",
                         {"reason": "no_marketing_consent"}, rows["jonas"].id))
    assert sorted(tuple(a) for a in activities(ws, "message_cancelled")) == sorted(expected)
    with ws.engine.connect() as conn:
        assert credits.balances(conn)["email"] == (4 if ignored else 5)
    assert dispatch(ws.engine, SETTINGS, {"email": email, "sms": sms}, now=NOW).claimed == 0


def test_marketing_email_unsubscribe(ws: Db) -> None:
    from web import create_app

    run_on(ws, "offer", manual=True)
    rec = RecordingChannel()
    dispatch(ws.engine, SETTINGS, {"email": rec, "sms": RecordingChannel()}, now=NOW)
    ona = next(m for m in rec.sent if m.to == "ona@example.com")
    url = ona.headers["List-Unsubscribe"].strip("<>")
    assert url.startswith("https://nf.example/u/")
    assert ona.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert ona.body == f"Hi Ona. Leave: {url}"
    app = create_app({"NUDGEFLOW_SETTINGS": Settings(database_url=ws.url,
                                                     secret_key="test-secret")})
    client = app.test_client()
    token = url.rsplit("/", 1)[1]
    assert client.post(f"/u/{token}").status_code == 200
    assert client.get(f"/u/{token}").status_code == 200  # again: still fine, logged once
    assert client.get(f"/u/{token[:-2]}xx").status_code == 400
    with ws.engine.connect() as conn:
        assert conn.execute(select(Customer.email_opt_out)
                            .where(Customer.external_id == "ona")).scalar_one() is True
    assert [a.summary for a in activities(ws, "unsubscribed")] == [
        "Unsubscribed from email by link"]
    app.extensions["nudgeflow_engine"].dispose()


def test_cancel_stops_queued_messages(nf, ws: Db) -> None:  # type: ignore[no-untyped-def]
    run_on(ws, "past-due")
    result = nf("messages", "cancel", "--campaign", "past-due")
    assert (result.code, result.out) == (
        0, "2 message(s) cancelled, 0 already on their way (they end as the provider answers)\n")
    assert sorted(m.status for m in messages(ws)) == ["cancelled", "cancelled", "skipped"]
    assert len(activities(ws, "message_cancelled")) == 2
    rec = RecordingChannel()
    assert dispatch(ws.engine, SETTINGS, {"email": rec, "sms": rec}, now=NOW).claimed == 0


def test_cancel_leaves_what_a_dispatcher_holds_to_the_provider(nf, ws: Db) -> None:  # type: ignore[no-untyped-def]
    import threading

    class Gate(RecordingChannel):
        """Holds the request open until the test lets it answer."""

        def __init__(self) -> None:
            super().__init__()
            self.entered, self.go = threading.Event(), threading.Event()

        def send(self, batch: Any) -> Any:
            self.entered.set()
            assert self.go.wait(30)
            yield from super().send(batch)

    run_on(ws, "past-due")
    gate = Gate()
    worker = threading.Thread(target=dispatch, args=(ws.engine, SETTINGS,
                                                     {"email": gate, "sms": gate}),
                              kwargs={"now": NOW, "batch_size": 1, "in_flight": 1})
    worker.start()
    assert gate.entered.wait(30)  # ona's email is with the provider; jonas's still queued
    result = nf("messages", "cancel", "--campaign", "past-due")
    gate.go.set()
    worker.join(30)
    assert (result.code, result.out) == (
        0, "1 message(s) cancelled, 1 already on their way (they end as the provider answers)\n")
    rows = {m.external_id: m for m in messages(ws)}
    assert (rows["ona"].status, rows["jonas"].status) == ("sent", "cancelled")
    assert [m.to for m in gate.sent] == ["ona@example.com"]
    assert [a.message_id for a in activities(ws, "message_sent")] == [rows["ona"].id]
    assert [a.message_id for a in activities(ws, "message_cancelled")] == [rows["jonas"].id]


def test_dispatch_and_credits_cli(nf, ws: Db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run_on(ws, "installment")
    assert nf("credits", "show").out == "email: unmetered\nsms: unmetered\n"
    assert nf("credits", "add", "sms", "10").out == "sms: 10 credits\n"
    out = nf("dispatch", "--once")
    assert out.code == 0, out.err
    assert out.out == "claimed 1, sent 1, retry later 0, failed 0, held for credit 0\n"
    [txt] = list((tmp_path / "outbox" / "sms").iterdir())
    assert txt.read_text().endswith("Sveiki Ona! Saskaita ona-1: 99.90 ZAR iki 2025-06-05.\n")
    assert nf("credits", "show", "--json").out.replace(" ", "").replace("\n", "") == \
        '{"email":null,"sms":9}'


def test_each_message_renders_its_own_customer_whatever_the_template_reads(ws: Db) -> None:
    """Contexts hold only what a template reads and equal inputs share one render: neither may
    leak one customer's text into another's message."""
    from sqlalchemy import update

    from engine.campaigns import save_document

    with write_transaction(ws.engine) as conn:
        for ext, tier in (("ona", "gold"), ("jonas", "gold"), ("late-but-optout", "silver")):
            conn.execute(update(Customer).where(Customer.external_id == ext)
                         .values(attributes={"tier": tier}, email_opt_out=False))
        save_document(conn, {"key": "tiers", "name": "Tiers", "status": "active",
                             "purpose": "service", "graph": {"nodes": [
                                 {"id": "t", "type": "trigger", "config": {"kind": "manual"}},
                                 {"id": "m", "type": "send-message", "config": {
                                     "channel": "email",
                                     "subject": "{{ customer.attributes.tier }} for "
                                                "{{ campaign.name }}",
                                     "body": "{% set c = customer %}{{ c.first_name }}, "
                                             "{{ customer.last_name or '-' }}"}}],
                                 "edges": [["t", "m"]]}})
    run_on(ws, "tiers", manual=True)
    channel = RecordingChannel()
    assert dispatch(ws.engine, SETTINGS, {"email": channel, "sms": channel}, now=NOW).sent == 3
    assert sorted((m.to, m.subject, m.body) for m in channel.sent) == [
        ("eve@example.com", "silver for Tiers", "Eve, -"),
        ("jonas@example.com", "gold for Tiers", "Jonas, Kazlauskas"),
        ("ona@example.com", "gold for Tiers", "Ona, Žemaitė")]


def test_a_birthday_sms_tells_the_points_awarded_upstream(db: Db, tmp_path: Path) -> None:
    from tests.campaign_docs import BIRTHDAY, document

    birthday = date(2025, 3, 10)
    with write_transaction(db.engine) as conn:
        insert_world(conn, [customer("ana", first_name="Ana", birth_date=date(1990, 3, 10),
                                     registered_at=date(2020, 1, 1), phone="+27821234567",
                                     phone_valid=True, marketing_consent=True)])
    path = tmp_path / "c.json"
    doc = document(BIRTHDAY)
    doc["templates"][0]["body"] = ("Happy birthday {{ customer.first_name }}! "
                                   "{{ bonus.amount }} points until {{ bonus.expires_at }}.")
    path.write_text(json.dumps(doc))
    import_file(db.engine, path)
    run_on(db, "birthday-bonus", birthday)
    channel = RecordingChannel()
    stats = dispatch(db.engine, SETTINGS, {"email": channel, "sms": channel},
                     now=datetime(2025, 3, 10, 9, 30))
    assert stats.sent == 1
    assert [(m.to, m.body) for m in channel.sent] == [
        ("+27821234567", "Happy birthday Ana! 100 points until 2025-04-09.")]
