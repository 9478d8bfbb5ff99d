"""The daily executor with exact expected outcomes: a hand-made customer set run day by day."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.campaigns import import_file
from engine.db import write_transaction
from engine.executor import run
from engine.ledger import expire
from engine.models import BonusLedger, Customer, Message, Run
from engine.workspace import set_setting
from tests.campaign_docs import BIRTHDAY, MONTHLY, REMINDER, document
from tests.conftest import Db
from tests.world import customer, day, effects, insert_world

PHONE = {"phone": "+27821234567", "phone_valid": True}
MAIL = {"email": "x@example.com", "email_valid": True}
REG = day("2020-01-01")
PEOPLE = [
    customer("ana", birth_date=day("1990-03-10"), registered_at=REG, marketing_consent=True,
             **PHONE),
    customer("leap", birth_date=day("2000-02-29"), registered_at=REG, marketing_consent=True,
             **PHONE),
    customer("exactly365", birth_date=day("1985-06-15"), registered_at=day("2024-06-15"),
             marketing_consent=True, **PHONE),
    customer("only364", birth_date=day("1985-06-15"), registered_at=day("2024-06-16"),
             marketing_consent=True, **PHONE),
    customer("optout", birth_date=day("1970-07-01"), registered_at=REG, marketing_consent=True,
             sms_opt_out=True, **PHONE),
    customer("noconsent", birth_date=day("1970-07-02"), registered_at=REG, **PHONE),
    customer("badphone", birth_date=day("1970-07-03"), registered_at=REG,
             marketing_consent=True, phone="12345", phone_valid=False),
    customer("nophone", birth_date=day("1970-07-04"), registered_at=REG, marketing_consent=True),
    customer("debtor", registered_at=REG, **MAIL, invoices=[
        {"due_date": day("2025-05-10"), "amount": Decimal(100), "paid_at": None},
        {"due_date": day("2025-05-10"), "amount": Decimal(40), "paid_at": None},
        {"due_date": day("2025-08-01"), "amount": Decimal(70), "paid_at": day("2025-07-20")},
        {"due_date": day("2025-09-01"), "amount": Decimal(90), "paid_at": day("2025-08-30")},
    ]),
]
START, DAYS = day("2025-01-01"), 400


@pytest.fixture
def workspace(db: Db, tmp_path: Path) -> Db:
    with write_transaction(db.engine) as conn:
        insert_world(conn, PEOPLE)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(document(BIRTHDAY, REMINDER, MONTHLY)))
    import_file(db.engine, path)
    return db


def run_day(db: Db, d: date, keys: tuple[str, ...] = ("birthday-bonus", "due-reminder",
                                                      "month-end")) -> None:
    for key in keys:
        result = run(db.engine, key, d, now=datetime.combine(d, datetime.min.time()) +
                     timedelta(hours=6))
        assert result.status == "completed", result.error
    with write_transaction(db.engine) as conn:
        expire(conn, d, now=datetime.combine(d, datetime.min.time()))


@pytest.mark.slow
def test_four_hundred_days(workspace: Db) -> None:
    for i in range(DAYS):
        run_day(workspace, START + timedelta(days=i))
    got = effects(workspace.engine)

    def award(who: str, on: str) -> tuple:  # type: ignore[type-arg]
        expiry = (day(on) + timedelta(days=30)).isoformat()
        return (who, "accrual", 100, on, expiry)

    accruals = {
        award("leap", "2025-02-28"), award("ana", "2025-03-10"),
        award("exactly365", "2025-06-15"),  # registered exactly 365 days before
        award("optout", "2025-07-01"), award("noconsent", "2025-07-02"),
        award("badphone", "2025-07-03"), award("nophone", "2025-07-04"),
        award("leap", "2026-02-28") if START + timedelta(days=DAYS - 1) >= day("2026-02-28")
        else None,
    } - {None}
    assert {e for e in got["ledger"] if e[1] == "accrual"} == accruals
    # only364 was 364 days registered on 15 June 2025 and got nothing that year.
    assert not any(e[0] == "only364" for e in got["ledger"])
    # Every accrual expired exactly once, 30 days later, for the same amount.
    expiries = {(e[0], "expiry", -100, e[4], None) for e in accruals}
    assert {e for e in got["ledger"] if e[1] == "expiry"} == expiries
    # Birthday messages (this graph's node ids coincide with month-end's, filter by channel).
    with workspace.engine.connect() as conn:
        sms = conn.execute(select(Customer.external_id, Message.occurrence, Message.status,
                                  Message.skip_reason, Message.send_after)
                           .join(Customer, Customer.id == Message.customer_id).where(Message.channel == "sms")
                           .order_by(Message.occurrence, Customer.external_id)).all()
    assert [tuple(r)[:4] for r in sms] == [
        ("leap", "2025-02-28", "queued", None),
        ("ana", "2025-03-10", "queued", None),
        ("exactly365", "2025-06-15", "queued", None),
        ("optout", "2025-07-01", "skipped", "opted_out"),
        ("noconsent", "2025-07-02", "skipped", "no_marketing_consent"),
        ("badphone", "2025-07-03", "skipped", "invalid_address"),
        ("nophone", "2025-07-04", "skipped", "no_address"),
    ]
    assert sms[0].send_after == datetime(2025, 2, 28, 9, 0)  # "at 09:00" in the campaign's zone
    # Installment reminders: one per unpaid invoice, 3 days before due; paid ones never.
    with workspace.engine.connect() as conn:
        reminders = conn.execute(select(Message.occurrence, Message.status, Message.send_after)
                                 .where(Message.node_id == "m", Message.channel == "email",
                                        Message.occurrence.like("invoice:%"))).all()
    # Two invoices due the same day are two reminders; the one paid on 20 July (due 1 August)
    # gets none; the one paid on 30 August was still unpaid on 29 August, when its went out.
    assert sorted((r.occurrence.split(":")[2], r.send_after) for r in reminders) == [
        ("2025-05-10", datetime(2025, 5, 7, 6, 0)), ("2025-05-10", datetime(2025, 5, 7, 6, 0)),
        ("2025-09-01", datetime(2025, 8, 29, 6, 0))]
    assert len({r.occurrence for r in reminders}) == 3
    # Month-end statement: the last day of each month, 31 meaning 30 April and 28 February.
    with workspace.engine.connect() as conn:
        month_end = conn.execute(
            select(Message.occurrence).join(Customer, Customer.id == Message.customer_id)
            .where(Customer.external_id == "debtor", Message.channel == "email",
                   Message.occurrence.not_like("invoice:%"))
            .order_by(Message.occurrence)).scalars().all()
    assert month_end == ["2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30", "2025-05-31",
                         "2025-06-30", "2025-07-31", "2025-08-31", "2025-09-30", "2025-10-31",
                         "2025-11-30", "2025-12-31", "2026-01-31"]
    # Activities match effects one to one.
    awarded = [a for a in got["activities"] if a[1] == "bonus_awarded"]
    assert len(awarded) == len(accruals)
    assert len([a for a in got["activities"] if a[1] == "bonus_expired"]) == len(expiries)
    message_kinds = {"message_queued", "message_skipped"}
    assert len([a for a in got["activities"] if a[1] in message_kinds]) == len(got["messages"])
    assert got["rows"] == (len(got["ledger"]), len(got["messages"]), len(got["activities"]))


def test_running_a_date_twice_adds_nothing_and_keeps_what_the_first_run_did(
        workspace: Db, nf) -> None:  # type: ignore[no-untyped-def]
    first_run = run(workspace.engine, "birthday-bonus", day("2025-03-10"))
    assert (first_run.status, first_run.attempt) == ("completed", 1)
    first = effects(workspace.engine)
    again = run(workspace.engine, "birthday-bonus", day("2025-03-10"))
    assert (again.status, again.attempt) == ("completed", 2)
    assert again.counts["a"] == {"awarded": 0, "passed": 1}  # this attempt awarded nothing new
    assert effects(workspace.engine) == first
    assert ("ana", "accrual", 100, "2025-03-10", "2025-04-09") in first["ledger"]
    with workspace.engine.connect() as conn:
        runs = conn.execute(select(Run.status, Run.counts, Run.attempts)).all()
    assert len(runs) == 1  # one row per (campaign, date), however often it ran
    (row,) = runs
    # The run still says what it did: the first attempt's award and message, added up.
    assert row.counts["a"] == {"awarded": 1, "passed": 1}
    assert row.counts["m"]["created"] == 1
    assert [(a["attempt"], a["status"], a["counts"]["a"]["awarded"], a["counts"]["m"]["created"])
            for a in row.attempts] == [(1, "completed", 1, 1), (2, "completed", 0, 0)]
    # The runs log says so too.
    listed = json.loads(nf("runs", "--json").out)
    assert listed[0]["counts"]["a"] == {"awarded": 1, "passed": 1}
    assert [a["counts"]["a"]["awarded"] for a in listed[0]["attempts"]] == [1, 0]
    text = nf("runs").out.splitlines()
    assert text[0].startswith(f"#{listed[0]['id']} 2025-03-10 birthday-bonus v1 completed")
    assert "  a: passed 1, awarded 1" in text
    assert [line.split(" ")[5:7] for line in text if line.startswith("  attempt ")] == [
        ["v1", "completed"], ["v1", "completed"]]
    assert "a: passed 1, awarded 0" in text[-1]


def test_dry_run_counts_and_writes_nothing(workspace: Db) -> None:
    result = run(workspace.engine, "birthday-bonus", day("2025-07-01"), dry_run=True)
    assert result.counts == {
        "t": {"passed": 1}, "s": {"passed": 1}, "a": {"passed": 1},
        "m": {"queued": 0, "skipped": {"opted_out": 1}, "passed": 1},
    }
    assert [s["external_id"] for s in result.sample] == ["optout"]
    assert effects(workspace.engine)["rows"] == (0, 0, 0)
    with workspace.engine.connect() as conn:
        assert conn.execute(select(Run.id)).all() == []


def test_consent_can_be_ignored_by_the_workspace(workspace: Db) -> None:
    with write_transaction(workspace.engine) as conn:
        set_setting(conn, "consent_mode", "ignore")
    run_day(workspace, day("2025-07-02"), ("birthday-bonus",))
    assert ("noconsent", "m", "2025-07-02", "queued", None) in effects(workspace.engine)["messages"]


def test_activity_and_balance_cli(nf, workspace: Db) -> None:  # type: ignore[no-untyped-def]
    run_day(workspace, day("2025-03-10"))
    out = json.loads(nf("activity", "ana", "--json").out)
    # Newest first, as on the customer's page (same moment: the later row first).
    assert [(a["kind"], a["campaign"], a["summary"]) for a in out] == [
        ("message_queued", "birthday-bonus", "SMS queued (bday-sms) for 2025-03-10 09:00 UTC"),
        ("bonus_awarded", "birthday-bonus",
         "Awarded 100 points: Birthday bonus, valid until 2025-04-09"),
    ]
    assert out == json.loads(nf("activity", "ana", "--json", "--oldest-first").out)[::-1]
    assert out[1]["details"] == {"amount": 100, "expires_at": "2025-04-09",
                                 "legal_entity": "Main", "campaign": "birthday-bonus"}
    bal = json.loads(nf("balance", "ana", "--date", "2025-03-20", "--json").out)
    assert (bal["available"], bal["expired"]) == (100, 0)
    assert bal["entries"][0]["expires_at"] == "2025-04-09"
    later = json.loads(nf("balance", "ana", "--date", "2025-04-09", "--json").out)
    assert (later["available"], later["expired"]) == (0, 100)
    assert nf("activity", "nobody-here").err == \
        "error: no customer with external_id 'nobody-here'\n"


def test_run_cli_json(nf, workspace: Db) -> None:  # type: ignore[no-untyped-def]
    result = nf("run", "--date", "2025-07-03", "--json")
    assert result.code == 0, result.err
    by_key = {r["campaign"]: r for r in json.loads(result.out)}
    assert by_key["birthday-bonus"]["counts"] == {
        "t": {"passed": 1}, "s": {"passed": 1}, "a": {"awarded": 1, "passed": 1},
        "m": {"queued": 0, "skipped": {"invalid_address": 1}, "created": 1, "passed": 1},
    }
    assert by_key["due-reminder"]["counts"]["t"] == {"passed": 0}
    runs = json.loads(nf("runs", "--json").out)
    assert {(r["campaign"], r["status"]) for r in runs} == {
        ("birthday-bonus", "completed"), ("due-reminder", "completed"),
        ("month-end", "completed")}
    birthday = next(r for r in runs if r["campaign"] == "birthday-bonus")
    text = nf("runs", "--campaign", "birthday-bonus")
    assert text.code == 0, text.err
    assert text.out == (
        f"#{birthday['id']} 2025-07-03 birthday-bonus v1 completed\n"
        "  t: passed 1\n  s: passed 1\n  a: passed 1, awarded 1\n"
        "  m: passed 1, queued 0, created 1, skipped: address is not valid 1\n")


def test_a_date_trigger_on_an_imported_date_column(db: Db, tmp_path: Path) -> None:
    """`attributes.contract_start` (text, YYYY-MM-DD, as CSV import leaves it) fires on its
    anniversary; a value that is not a date, or a date less than a year back, never does."""
    with write_transaction(db.engine) as conn:
        insert_world(conn, [
            customer("c2020", attributes={"contract_start": "2020-06-15"}),
            customer("leap", attributes={"contract_start": "2020-02-29"}),
            customer("new", attributes={"contract_start": "2025-06-15"}),
            customer("junk", attributes={"contract_start": "15/06/2020"}),
            customer("number", attributes={"contract_start": 20200615}),
            customer("none"),
        ])
    doc = {"key": "contract-anniversary", "name": "Contract anniversary", "status": "active",
           "purpose": "service", "graph": {"nodes": [
               {"id": "t", "type": "trigger", "config": {
                   "kind": "date", "field": "attributes.contract_start", "offset_days": 0}},
               {"id": "a", "type": "award-bonus", "config": {"amount": 50}}],
               "edges": [["t", "a"]]}}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(document(doc)))
    import_file(db.engine, path)
    awarded = {}
    for d in (day("2025-06-15"), day("2025-02-28"), day("2025-03-01"), day("2026-06-15")):
        result = run(db.engine, "contract-anniversary", d)
        assert result.status == "completed", result.error
        awarded[d.isoformat()] = result.counts["a"]["awarded"]
    assert awarded == {"2025-06-15": 1, "2025-02-28": 1, "2025-03-01": 0, "2026-06-15": 2}
    with db.engine.connect() as conn:
        got = conn.execute(select(Customer.external_id).join(
            BonusLedger, BonusLedger.customer_id == Customer.id).order_by(BonusLedger.id)).scalars()
        assert list(got) == ["c2020", "leap", "c2020", "new"]
