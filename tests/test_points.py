"""Points beyond accruals: redemptions FIFO by expiry, partial redemption then expiry, pending
credits, manual adjustments, idempotency, concurrency, the CLI."""

from __future__ import annotations

import json
import threading
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from engine import segments
from engine.activity import customer_id, timeline
from engine.campaigns import campaign_today, import_file
from engine.db import write_transaction
from engine.errors import IdempotencyConflict, InsufficientPoints
from engine.executor import run
from engine.ledger import balance, expire
from engine.models import Activity, BonusAllocation, BonusLedger
from engine.points import PointsSchema, adjust
from tests.campaign_docs import BIRTHDAY, document
from tests.conftest import Db
from tests.world import customer, day, insert_world

D = day("2025-03-15")


def credit(amount: int, booked: str, expires: str | None, what: str,
           activates: str | None = None) -> dict[str, Any]:
    return {"kind": "accrual", "amount": amount, "booked_on": day(booked),
            "activates_on": day(activates) if activates else None,
            "expires_at": day(expires) if expires else None, "description": what,
            "legal_entity": "Main"}


def book(db: Db, ext: str, amount: int, on: date = D, **more: Any) -> Any:
    fields = PointsSchema().load({"amount": amount, "reason": more.pop("reason", "by hand"),
                                  **more})
    with write_transaction(db.engine) as conn:
        return adjust(conn, customer_id(conn, ext), fields, on, "ana")


def bal(db: Db, ext: str, on: date = D) -> dict[str, Any]:
    with db.engine.connect() as conn:
        return balance(conn, customer_id(conn, ext), on)


def rows(db: Db) -> tuple[int, int, int]:
    with db.engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(m)).scalar_one()
                     for m in (BonusLedger, BonusAllocation, Activity))  # type: ignore[return-value]


def world(db: Db, *people: dict[str, Any]) -> None:
    with write_transaction(db.engine) as conn:
        insert_world(conn, list(people))


def test_redemption_takes_from_the_credits_that_expire_first(db: Db) -> None:
    world(db, customer("C1", ledger=[
        credit(100, "2025-01-10", "2025-05-01", "January"),
        credit(70, "2025-01-01", None, "Forever"),
        credit(50, "2025-02-01", "2025-04-01", "February"),
        credit(30, "2025-03-01", "2025-06-01", "March"),
        credit(40, "2025-01-01", "2025-03-15", "Expired today"),
    ]))
    assert bal(db, "C1")["available"] == 250
    booked = book(db, "C1", -170, reason="Flight voucher")
    took = [(t["description"], t["amount"], t["expires_at"]) for t in booked.movement["took"]]
    assert took == [("February", 50, "2025-04-01"), ("January", 100, "2025-05-01"),
                    ("March", 20, "2025-06-01")]
    assert (booked.movement["kind"], booked.movement["amount"]) == ("redemption", -170)
    after = bal(db, "C1")
    assert (after["available"], after["redeemed"], after["expired"]) == (80, 170, 40)
    status = {e["description"]: (e["status"], e["remaining"]) for e in after["entries"]
              if e["kind"] == "accrual"}
    assert status == {"January": ("redeemed", 0), "Forever": ("available", 70),
                      "February": ("redeemed", 0), "March": ("partly redeemed", 10),
                      "Expired today": ("expired", 0)}
    # The next redemption goes on where this one stopped: March's 10, then the one that never
    # expires.
    again = book(db, "C1", -15, reason="Coffee")
    assert [(t["description"], t["amount"]) for t in again.movement["took"]] == [
        ("March", 10), ("Forever", 5)]
    assert bal(db, "C1")["available"] == 65
    # As of the day before the redemptions, the balance shows them not yet made.
    assert bal(db, "C1", D - timedelta(days=1))["available"] == 290


def test_partial_redemption_then_expiry_expires_only_the_remainder(db: Db) -> None:
    world(db, customer("C1", ledger=[credit(100, "2025-03-10", "2025-04-09", "Birthday"),
                                     credit(25, "2025-03-10", "2025-04-05", "Spent")]),
          customer("C2", ledger=[credit(100, "2025-03-10", "2025-04-09", "Birthday")]))
    book(db, "C1", -85, on=day("2025-03-20"), reason="Cinema")  # 25 of Spent, 60 of Birthday
    book(db, "C1", 10, on=day("2025-03-20"), reason="Goodwill")  # no expiry
    with write_transaction(db.engine) as conn:
        assert expire(conn, day("2025-04-08")) == 0
        assert expire(conn, day("2025-04-09"), now=datetime(2025, 4, 9, 1)) == 2
        assert expire(conn, day("2025-04-09")) == 0  # idempotent
        assert expire(conn, day("2025-04-30")) == 0
    with db.engine.connect() as conn:
        expiries = conn.execute(select(BonusLedger.customer_id, BonusLedger.amount,
                                       BonusLedger.description, BonusLedger.legal_entity)
                                .where(BonusLedger.kind == "expiry")
                                .order_by(BonusLedger.customer_id)).all()
        c1 = customer_id(conn, "C1")
        log = timeline(conn, c1, ["bonus_expired"])
    # Spent (redeemed in full) gets no expiry row; C1 loses the 40 left of 100, C2 all 100.
    assert [tuple(e)[1:] for e in expiries] == [(-40, "Birthday", "Main"),
                                               (-100, "Birthday", "Main")]
    assert [a["summary"] for a in log] == ["Expired 40 points"]
    assert log[0]["details"]["amount"] == -40 and log[0]["details"]["description"] == "Birthday"
    after = bal(db, "C1", day("2025-04-09"))
    assert {k: after[k] for k in ("available", "pending", "expired", "redeemed")} == {
        "available": 10, "pending": 0, "expired": 40, "redeemed": 85}
    birthday = next(e for e in after["entries"] if e["description"] == "Birthday"
                    and e["kind"] == "accrual")
    assert (birthday["status"], birthday["redeemed"], birthday["remaining"]) == ("expired", 60, 0)
    # The segment field agrees: 10 points left for C1, none for C2.
    with db.engine.connect() as conn:
        assert segments.count(conn, {"field": "bonus_balance", "op": "=", "value": 10},
                              day("2025-04-09")) == 1
        assert segments.count(conn, {"field": "bonus_balance", "op": "=", "value": 50},
                              day("2025-04-08")) == 1  # C1 before the expiry: 40 + 10


def test_too_few_points_is_refused_and_writes_nothing(db: Db) -> None:
    world(db, customer("C1", ledger=[
        credit(100, "2025-03-01", "2025-04-01", "March"),
        credit(50, "2025-03-01", "2025-06-01", "Pending", activates="2025-03-20")]))
    before = rows(db)
    with pytest.raises(InsufficientPoints) as caught:
        book(db, "C1", -101)
    assert str(caught.value) == ("cannot redeem 101 points: 100 available on 2025-03-15 "
                                 "(50 more pending)")
    assert [(p.where, p.message) for p in caught.value.problems] == [
        ("$.amount", str(caught.value))]
    assert rows(db) == before
    book(db, "C1", -100)  # all of it is fine
    assert bal(db, "C1")["available"] == 0


def test_pending_points_are_not_redeemable_until_their_day(db: Db, tmp_path: Path) -> None:
    world(db, customer("ana", birth_date=day("1990-03-10"), registered_at=day("2020-01-01"),
                       marketing_consent=True, phone="+27821234567", phone_valid=True))
    doc = document(BIRTHDAY)
    doc["campaigns"][0]["graph"]["nodes"][2]["config"]["activates_after_days"] = 7
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    import_file(db.engine, path)
    assert run(db.engine, "birthday-bonus", day("2025-03-10")).status == "completed"
    with db.engine.connect() as conn:
        award = conn.execute(select(BonusLedger.booked_on, BonusLedger.activates_on,
                                    BonusLedger.expires_at)).one()
        log = timeline(conn, customer_id(conn, "ana"), ["bonus_awarded"])
    # Lifetime counts from activation: 30 days from 17 March.
    assert tuple(award) == (day("2025-03-10"), day("2025-03-17"), day("2025-04-16"))
    assert log[0]["summary"] == ("Awarded 100 points: Birthday bonus, available from "
                                 "2025-03-17, valid until 2025-04-16")
    assert log[0]["details"]["activates_on"] == "2025-03-17"
    waiting = bal(db, "ana", day("2025-03-16"))
    assert (waiting["pending"], waiting["available"], waiting["expiring_30"]) == (100, 0, 0)
    assert waiting["entries"][0]["status"] == "pending"
    with pytest.raises(InsufficientPoints, match=r"0 available on 2025-03-16 \(100 more "
                                                 r"pending\)"):
        book(db, "ana", -1, on=day("2025-03-16"))
    with db.engine.connect() as conn:
        rule = {"field": "bonus_balance", "op": "=", "value": 100}
        assert segments.count(conn, rule, day("2025-03-16")) == 0
        assert segments.count(conn, rule, day("2025-03-17")) == 1
    ready = bal(db, "ana", day("2025-03-17"))
    assert (ready["pending"], ready["available"], ready["expiring_30"]) == (0, 100, 100)
    assert ready["entries"][0]["status"] == "available"
    book(db, "ana", -30, on=day("2025-03-17"))
    assert bal(db, "ana", day("2025-03-17"))["available"] == 70
    with write_transaction(db.engine) as conn:
        assert expire(conn, day("2025-04-15")) == 0
        assert expire(conn, day("2025-04-16")) == 1
    assert bal(db, "ana", day("2025-04-16"))["expired"] == 70


def test_adjustments_expire_and_write_their_activities(db: Db) -> None:
    world(db, customer("C1"))
    added = book(db, "C1", 200, reason="Complaint #12", lifetime_days=10,
                 legal_entity="Shop")
    assert {k: added.movement[k] for k in ("kind", "amount", "expires_at", "legal_entity",
                                            "description", "created_by")} == {
        "kind": "adjustment", "amount": 200, "expires_at": "2025-03-25",
        "legal_entity": "Shop", "description": "Complaint #12", "created_by": "ana"}
    book(db, "C1", 50, reason="Never expires")
    book(db, "C1", -120, reason="Voucher")
    with db.engine.connect() as conn:
        log = timeline(conn, customer_id(conn, "C1"))
    assert [(a["kind"], a["summary"]) for a in log] == [
        ("bonus_adjusted", "Added 200 points: Complaint #12, valid until 2025-03-25 (by ana)"),
        ("bonus_adjusted", "Added 50 points: Never expires (by ana)"),
        ("bonus_redeemed", "Redeemed 120 points: Voucher (by ana)"),
    ]
    assert log[2]["details"] == {
        "amount": -120, "reason": "Voucher", "by": "ana",
        "took": [{"credit": added.movement["id"], "amount": 120, "expires_at": "2025-03-25",
                  "description": "Complaint #12"}]}
    with write_transaction(db.engine) as conn:
        assert expire(conn, day("2025-03-25")) == 1
    after = bal(db, "C1", day("2025-03-25"))
    assert (after["available"], after["expired"], after["redeemed"]) == (50, 80, 120)


def test_a_reference_books_once(db: Db) -> None:
    world(db, customer("C1", ledger=[credit(100, "2025-03-01", None, "Welcome")]))
    first = book(db, "C1", -40, reference="order-7")
    before = rows(db)
    again = book(db, "C1", -40, reference="order-7")
    assert (again.replayed, again.movement) == (True, first.movement)
    assert rows(db) == before
    with pytest.raises(IdempotencyConflict, match="reference 'order-7' was used for another "
                                                  "movement"):
        book(db, "C1", -41, reference="order-7")
    assert bal(db, "C1")["available"] == 60


def test_concurrent_redemptions_never_overdraw(db: Db) -> None:
    """Eight threads redeem 30 of 100 points at once: three succeed, five are refused."""
    world(db, customer("C1", ledger=[credit(60, "2025-03-01", "2025-04-01", "A"),
                                     credit(40, "2025-03-01", None, "B")]))
    start = threading.Barrier(8)
    results: list[str] = []

    def redeem() -> None:
        start.wait()
        try:
            book(db, "C1", -30)
            results.append("ok")
        except InsufficientPoints:
            results.append("refused")

    threads = [threading.Thread(target=redeem) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok"] * 3 + ["refused"] * 5
    after = bal(db, "C1")
    assert (after["available"], after["redeemed"]) == (10, 90)
    with db.engine.connect() as conn:
        taken = dict(conn.execute(select(BonusLedger.description, func.sum(BonusAllocation.amount))
                                  .join(BonusAllocation,
                                        BonusAllocation.credit_id == BonusLedger.id)
                                  .group_by(BonusLedger.description)).all())
    assert taken == {"A": 60, "B": 30}


# ---- the command line -----------------------------------------------------------------------

def test_points_adjust_cli(nf, db: Db) -> None:  # type: ignore[no-untyped-def]
    world(db, customer("C1"))
    today = campaign_today("UTC")
    soon = (today + timedelta(days=20)).isoformat()
    added = nf("points", "adjust", "C1", "100", "--reason", "Welcome", "--expires", soon,
               "--legal-entity", "Shop", "--by", "ops")
    assert added.code == 0, added.err
    assert added.out.splitlines() == [
        f"added 100 points for C1, expires {soon}",
        f"available 100, pending 0, expiring within 30 days 100, expired 0, redeemed 0 "
        f"(as of {today})"]
    assert nf("points", "adjust", "C1", "+20", "--reason", "Forever").code == 0
    spent = nf("points", "adjust", "C1", "-110", "--reason", "Voucher", "--reference", "v1")
    assert spent.code == 0, spent.err
    first_id = json.loads(nf("balance", "C1", "--json").out)["entries"][0]["id"]
    second_id = first_id + 1
    assert spent.out.splitlines()[0] == (
        f"redeemed 110 points for C1: 100 from #{first_id} (expires {soon}), 10 from "
        f"#{second_id} (expires never)")
    replay = nf("points", "adjust", "C1", "-110", "--reason", "Voucher", "--reference", "v1",
                "--json")
    assert replay.code == 0 and json.loads(replay.out)["replayed"] is True
    refused = nf("points", "adjust", "C1", "-11", "--reason", "Too much")
    assert (refused.code, refused.out) == (1, "")
    assert refused.err == f"error: cannot redeem 11 points: 10 available on {today}\n"
    shown = nf("balance", "C1")
    assert shown.out.splitlines()[0] == (
        f"available 10, pending 0, expiring within 30 days 0, expired 0, redeemed 110 "
        f"(as of {today})")
    assert "partly redeemed (10 left)" in shown.out.splitlines()[2]
    log = json.loads(nf("activity", "C1", "--json", "--oldest-first").out)
    assert [(a["kind"], a["details"]["by"]) for a in log] == [
        ("bonus_adjusted", "ops"), ("bonus_adjusted", log[1]["details"]["by"]),
        ("bonus_redeemed", log[2]["details"]["by"])]
    assert log[1]["details"]["by"].startswith("cli")


@pytest.mark.parametrize(("args", "error"), [
    (["C1", "0", "--reason", "x"], "AMOUNT: must not be 0"),
    (["C1", "1.5", "--reason", "x"], "AMOUNT: Not a valid integer."),
    (["C1", "2147483648", "--reason", "x"], "AMOUNT: Must be greater than or equal to "
                                            "-2147483647 and less than or equal to 2147483647."),
    (["C1", "5", "--reason", " "], "--reason: must not be blank"),
    (["C1", "-5", "--reason", "x", "--lifetime-days", "3"],
     "--lifetime-days: only points added expire"),
    (["C1", "5", "--reason", "x", "--expires", "2000-01-01"], "--expires: must be after"),
    (["nobody", "5", "--reason", "x"], "error: no customer with external_id 'nobody'"),
])
def test_points_adjust_cli_refuses_bad_input(nf, db: Db, args: list[str],  # type: ignore[no-untyped-def]
                                             error: str) -> None:
    world(db, customer("C1"))
    before = rows(db)
    result = nf("points", "adjust", *args)
    assert result.code == 2 and error in result.err, result
    assert rows(db) == before


def test_points_adjust_cli_needs_a_reason(nf, db: Db) -> None:  # type: ignore[no-untyped-def]
    result = nf("points", "adjust", "C1", "5")
    assert result.code == 2 and "Missing option '--reason'" in result.err
