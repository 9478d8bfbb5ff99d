"""Blasts: a one-off send to a data set's rows, all or those chosen, through the campaigns'
machinery (skip reasons, the outbox, credits, STOP), once per blast and customer."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from engine import blasts, credits
from engine.cancel import cancel_messages
from engine.config import Settings
from engine.db import write_transaction
from engine.errors import NotFound, ValidationError
from engine.executor import active_campaigns, run
from engine.lookup import campaigns_overview, list_runs
from engine.models import Activity, Campaign, Customer, Message
from engine.outbox import dispatch
from tests.conftest import Db
from tests.fakes import RecordingChannel
from tests.world import customer, seed

DAY = date(2025, 6, 2)
NOW = datetime(2025, 6, 2, 10, 0)
SETTINGS = Settings(public_url="https://nf.example", secret_key="test-secret", max_attempts=3)
DOC = {
    "version": 1,
    "segments": [{"key": "past-due", "rules": {"all": [
        {"field": "days_past_due", "op": ">=", "value": 30}]}}],
    "templates": [{"key": "overdue", "channel": "email",
                   "subject": "{{ customer.first_name }}, {{ customer.overdue_amount }} is overdue",
                   "body": "Dear {{ customer.first_name }}, please pay."}],
    "campaigns": [],
}
OK = {"email_valid": True, "marketing_consent": True}


def _late(days: int) -> list[dict[str, Any]]:
    return [{"due_date": DAY - timedelta(days=days), "amount": Decimal("50"), "paid_at": None}]


PEOPLE = [
    customer("A1", first_name="Ana", email="ana@example.com", **OK, invoices=_late(40)),
    customer("A2", first_name="Ben", email="ben@example.com", **OK, invoices=_late(35)),
    customer("A3", first_name="Cat", email="cat@example.com", **OK, invoices=_late(90)),
    customer("A4", first_name="Dan", email="dan@example.com", email_opt_out=True, **OK,
             invoices=_late(50)),
    customer("A5", first_name="Eve", email="eve@example.com", email_valid=True,
             invoices=_late(31)),
    customer("B1", first_name="Fay", email="fay@example.com", **OK, invoices=_late(3)),
]


@pytest.fixture
def ws(db: Db, tmp_path: Path) -> Db:
    seed(db.engine, PEOPLE, DOC, tmp_path)
    return db


def ask(**kw: Any) -> blasts.BlastRequest:
    body = {"segment": "past-due", "date": DAY.isoformat(), "template": "overdue", **kw}
    token = body.pop("token", None)
    return blasts.load_request(body, DAY, token)


def blast(db: Db, **kw: Any) -> tuple[dict[str, Any], bool]:
    return blasts.create(db.engine, ask(**kw), "UTC", created_by="ana", now=NOW)


def sent_to(db: Db, now: datetime = NOW) -> RecordingChannel:
    """What the provider accepted in a dispatch at `now`."""
    email = RecordingChannel()
    dispatch(db.engine, SETTINGS, {"email": email, "sms": RecordingChannel()}, now=now)
    return email


def messages(db: Db) -> list[tuple[str, str, str | None]]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            select(Customer.external_id, Message.status, Message.skip_reason)
            .join(Customer, Customer.id == Message.customer_id).order_by(Customer.external_id))]


def test_selected_rows_reach_exactly_those_once(ws: Db) -> None:
    made, new = blast(ws, customers=["A2", "A1", "A2"], token="click-1")
    assert new and made["key"] == f"blast-{made['id']}"
    assert (made["selection"], made["requested"], made["not_members"]) == ("list", 2, [])
    assert made["counts"] == {"recipients": 2, "queued": 2, "skipped": {}}
    assert made["messages"] == {"queued": 2} and made["channel"] == "email"
    again, new_again = blast(ws, customers=["A2", "A1", "A2"], token="click-1")
    assert not new_again and again["id"] == made["id"]
    email = sent_to(ws)
    assert sorted((m.to, m.subject) for m in email.sent) == [
        ("ana@example.com", "Ana, 50.00 is overdue"), ("ben@example.com", "Ben, 50.00 is overdue")]
    assert len(sent_to(ws).sent) == 0  # nothing left to send
    assert messages(ws) == [("A1", "sent", None), ("A2", "sent", None)]
    with ws.engine.connect() as conn:
        shown = blasts.describe(conn, made["id"])
    assert shown["messages"] == {"sent": 2} and shown["run"]["status"] == "completed"


def test_a_key_reused_for_another_blast_is_refused(ws: Db) -> None:
    blast(ws, customers=["A1"], token="k")
    with pytest.raises(blasts.IdempotencyConflict, match="'k' was used for another blast"):
        blast(ws, customers=["A2"], token="k")
    assert messages(ws) == [("A1", "queued", None)]


def test_without_a_key_each_submission_is_a_blast_of_its_own(ws: Db) -> None:
    first, _ = blast(ws, customers=["A1"])
    second, _ = blast(ws, customers=["A1"])
    assert first["id"] != second["id"]
    assert [m.to for m in sent_to(ws).sent] == ["ana@example.com", "ana@example.com"]


def test_skips_are_logged_with_reasons(ws: Db) -> None:
    made, _ = blast(ws, customers=["A1", "A4", "A5"])
    assert made["counts"] == {"recipients": 3, "queued": 1,
                              "skipped": {"no_marketing_consent": 1, "opted_out": 1}}
    with ws.engine.connect() as conn:
        logged = conn.execute(
            select(Customer.external_id, Activity.kind, Activity.summary, Activity.details)
            .join(Customer, Customer.id == Activity.customer_id)
            .order_by(Customer.external_id)).all()
    assert [(r.external_id, r.kind, r.details["reason"]) for r in logged] == [
        ("A1", "message_queued", None), ("A4", "message_skipped", "opted_out"),
        ("A5", "message_skipped", "no_marketing_consent")]
    assert logged[1].summary == "Email not sent (overdue): opted out of this channel"
    assert [m.to for m in sent_to(ws).sent] == ["ana@example.com"]
    service, _ = blast(ws, customers=["A5"], purpose="service")
    assert service["counts"]["queued"] == 1  # a service message needs no consent


def test_every_row_and_the_non_members(ws: Db) -> None:
    made, _ = blast(ws, all=True)
    assert (made["selection"], made["requested"]) == ("all", 5)
    assert made["counts"]["queued"] == 3
    listed, _ = blast(ws, customers=["A1", "B1"])
    assert listed["not_members"] == ["B1"] and listed["counts"]["recipients"] == 1
    with pytest.raises(ValidationError) as unknown:
        blast(ws, customers=["A1", "nobody"])
    assert [str(p) for p in unknown.value.problems] == ["$.customers[1]: unknown customer 'nobody'"]
    with pytest.raises(ValidationError) as outside:
        blast(ws, customers=["B1"])
    assert str(outside.value.problems[0]).startswith("$.customers: empty selection: none of")
    with pytest.raises(ValidationError) as nobody:
        blast(ws, all=True, date="1990-01-01")
    assert str(nobody.value.problems[0]) == \
        "$.segment: empty selection: the data set has no rows as of 1990-01-01"
    with ws.engine.connect() as conn:  # what failed wrote nothing
        assert conn.execute(select(func.count()).select_from(Campaign)).scalar_one() == 2


@pytest.mark.parametrize(("body", "path", "text"), [
    ({"template": "nope"}, "$.template", "unknown template 'nope'"),
    ({"segment": "nope"}, "$.segment", "unknown segment"),
    ({"date": "3000-01-01"}, "$.date", "expected a date from 1900-01-01 to 2999-12-31"),
    ({"customers": []}, "$.customers", "empty selection"),
    ({"all": True, "customers": ["A1"]}, "$.customers", "not both"),
    ({"send_at": {"mode": "datetime", "value": "2099-01-01T00:00:00Z"}}, "$.send_at.value",
     "at most 14 days ahead"),
    ({"send_at": {"mode": "at", "time": "09:00"}}, "$.send_at", "mode now, delay or datetime"),
    ({"purpose": "spam"}, "$.purpose", "Must be one of"),
    ({"rules": {"all": [{"field": "nope", "op": "=", "value": 1}]}, "segment": None},
     "$.rules", "unknown field"),
])
def test_bad_requests_name_the_field(ws: Db, body: dict[str, Any], path: str, text: str) -> None:
    raw = {"segment": "past-due", "template": "overdue", "customers": ["A1"], **body}
    raw = {k: v for k, v in raw.items() if v is not None}
    with pytest.raises(ValidationError) as err:
        blasts.create(ws.engine, blasts.load_request(raw, DAY), "UTC", now=NOW)
    assert any(p.where.startswith(path) and text in p.message for p in err.value.problems), \
        err.value.problems
    assert messages(ws) == []


def test_held_without_credit_then_stop(ws: Db) -> None:
    with write_transaction(ws.engine) as conn:
        credits.add(conn, "email", 1)
    made, _ = blast(ws, all=True, send_at={"mode": "delay", "hours": 2})
    assert sent_to(ws).sent == []  # not due yet
    email = RecordingChannel()
    dispatch(ws.engine, SETTINGS, {"email": email, "sms": RecordingChannel()},
             now=NOW + timedelta(hours=3))
    assert len(email.sent) == 1
    statuses = sorted(s for _, s, _ in messages(ws) if s != "skipped")
    assert statuses == ["held", "held", "sent"]
    done = cancel_messages(ws.engine, made["key"])
    assert (done.cancelled, done.on_their_way) == (2, 0)
    with ws.engine.connect() as conn:
        assert blasts.describe(conn, made["id"])["messages"] == {
            "cancelled": 2, "sent": 1, "skipped": 2}
        cancelled = conn.execute(select(Activity.summary).where(
            Activity.kind == "message_cancelled")).scalars().all()
    assert cancelled == [f"Message cancelled (campaign {made['key']} stopped)"] * 2


def test_the_runs_log_shows_the_blast_and_the_campaign_lists_do_not(ws: Db) -> None:
    made, _ = blast(ws, customers=["A1", "A4"])
    with ws.engine.connect() as conn:
        runs = list_runs(conn, None, 10)
        assert [(r["campaign"], r["run_date"], r["status"]) for r in runs] == [
            (made["key"], DAY, "completed")]
        assert runs[0]["counts"]["send"] == {"passed": 2, "queued": 1, "created": 2,
                                             "skipped": {"opted_out": 1}}
        assert campaigns_overview(conn) == []
    assert active_campaigns(ws.engine) == []
    with pytest.raises(NotFound, match="it is a blast"):
        run(ws.engine, made["key"], DAY + timedelta(days=1), manual=True)


def test_a_dry_run_writes_nothing(ws: Db) -> None:
    preview, new = blasts.create(ws.engine, ask(customers=["A1", "A4", "B1"]), "UTC",
                                 now=NOW, dry_run=True)
    assert not new and preview["dry_run"]
    assert preview["counts"] == {"recipients": 2, "queued": 1, "skipped": {"opted_out": 1}}
    assert preview["not_members"] == ["B1"]
    with ws.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Campaign)).scalar_one() == 0
    assert messages(ws) == []


def test_an_inline_sms_waits_out_the_workspace_quiet_hours_and_caps(ws: Db) -> None:
    from engine.workspace import set_setting

    with write_transaction(ws.engine) as conn:
        set_setting(conn, "quiet_hours", {"sms": {"start": "21:00", "end": "08:00"},
                                          "email": None})
        set_setting(conn, "frequency_caps", [{"channel": "email", "max": 1, "days": 7}])
        conn.execute(Customer.__table__.update().where(Customer.external_id == "A1")
                     .values(phone="+27821234567", phone_valid=True))
    late = datetime(2025, 6, 2, 22, 0)
    made, _ = blasts.create(ws.engine, blasts.load_request(
        {"segment": "past-due", "customers": ["A1", "A2"], "channel": "sms",
         "body": "Hi {{ customer.first_name }}"}, DAY), "UTC", now=late)
    assert made["counts"] == {"recipients": 2, "queued": 1, "skipped": {"no_address": 1}}
    with ws.engine.connect() as conn:
        row = conn.execute(select(Message.send_after, Message.status)
                           .where(Message.status == "queued")).one()
        summary = conn.execute(select(Activity.summary).where(
            Activity.kind == "message_queued")).scalar_one()
    assert row.send_after == datetime(2025, 6, 3, 8, 0)
    assert summary == "SMS queued (inline message) for 2025-06-03 08:00 UTC (quiet hours)"
    # Caps count across campaigns and blasts alike: a second email to A2 this week is skipped.
    blast(ws, customers=["A2"])
    blast(ws, customers=["A2"])
    email = sent_to(ws)
    assert [m.to for m in email.sent] == ["ben@example.com"]
    with ws.engine.connect() as conn:
        assert conn.execute(select(Message.skip_reason).where(
            Message.channel == "email", Message.status == "skipped")).scalars().all() == [
            "frequency_cap"]


def test_two_submissions_at_once_under_one_key_make_one_blast(ws: Db) -> None:
    """A double click whose two requests race: one blast, the other answer names it."""
    import threading

    gate = threading.Barrier(4)
    answers: list[tuple[int, bool]] = []

    def submit() -> None:
        gate.wait()
        made, new = blast(ws, all=True, token="double-click")
        answers.append((made["id"], new))

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({i for i, _ in answers}) == 1 and sorted(n for _, n in answers) == [
        False, False, False, True]
    assert sorted(s for _, s, _ in messages(ws)) == ["queued"] * 3 + ["skipped"] * 2
    with ws.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Campaign)).scalar_one() == 1


def test_a_campaign_may_not_use_the_blasts_recipients_node(ws: Db) -> None:
    from engine.campaigns import save_document

    doc = {"key": "c", "name": "c", "graph": {"nodes": [
        {"id": "t", "type": "trigger", "config": {"kind": "manual"}},
        {"id": "r", "type": "recipients", "config": {}}], "edges": [["t", "r"]]}}
    with pytest.raises(ValidationError) as err, write_transaction(ws.engine) as conn:
        save_document(conn, doc)
    assert [str(p) for p in err.value.problems] == [
        "$.graph.nodes[1].type: recipients (chosen data set rows) is for blasts, not campaigns"]
    with pytest.raises(ValidationError) as taken, write_transaction(ws.engine) as conn:
        save_document(conn, {**doc, "key": "blast-12", "graph": {"nodes": doc["graph"]["nodes"][:1]}})
    assert str(taken.value.problems[0]).startswith("$.key: blast-N and blast-new-... name blasts")
