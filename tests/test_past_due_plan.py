"""days_past_due >= n reads "unpaid as of D" as two partial-index ranges (never paid; paid
after D): the same members as the reference whatever the payments after D, and plans that use
those indexes rather than the invoice rows."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from engine import segments
from engine.db import write_transaction
from engine.models import Customer
from tests.conftest import Db
from tests.reference import matches
from tests.world import clear, customer, insert_world

AS_OF = date(2026, 11, 23)


def members(db: Db, rules: dict[str, Any], as_of: date) -> set[str]:
    with db.engine.connect() as conn:
        return set(conn.execute(select(Customer.external_id).where(
            Customer.id.in_(segments.member_ids(rules, as_of, {})))).scalars())


@st.composite
def ledgers(draw: Any) -> list[dict[str, Any]]:
    """Customers with invoices due around AS_OF, paid never, before it or after it (a run
    for a past date sees the payments made since)."""
    people = []
    for i in range(draw(st.integers(0, 10))):
        invoices = [{"due_date": AS_OF + timedelta(days=draw(st.integers(-80, 20))),
                     "amount": Decimal(100),
                     "paid_at": draw(st.one_of(st.none(), st.builds(
                         lambda n: AS_OF + timedelta(days=n), st.integers(-60, 60))))}
                    for _ in range(draw(st.integers(0, 3)))]
        people.append(customer(f"c{i}", invoices=invoices))
    return people


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(world=ledgers(), n=st.integers(0, 60), op=st.sampled_from([">=", ">", "<", "=", "!="]),
       shift=st.sampled_from([0, -15, -45]))
def test_past_due_members_match_the_reference(db: Db, world: list[dict[str, Any]], n: int,
                                              op: str, shift: int) -> None:
    as_of = AS_OF + timedelta(days=shift)  # before some payments: the general case
    with write_transaction(db.engine) as conn:
        clear(conn)
        insert_world(conn, world)
    rule = {"field": "days_past_due", "op": op, "value": n}
    expected = {c["external_id"] for c in world if matches(rule, c, as_of, {})}
    assert members(db, rule, as_of) == expected


def test_paid_after_the_date_is_unpaid_as_of_it(db: Db) -> None:
    world = [
        customer("never-paid", invoices=[
            {"due_date": date(2026, 10, 1), "amount": Decimal(10), "paid_at": None}]),
        customer("paid-later", invoices=[
            {"due_date": date(2026, 10, 1), "amount": Decimal(10),
             "paid_at": date(2026, 11, 20)}]),
        customer("paid-in-time", invoices=[
            {"due_date": date(2026, 10, 1), "amount": Decimal(10),
             "paid_at": date(2026, 9, 30)}]),
    ]
    with write_transaction(db.engine) as conn:
        insert_world(conn, world)
    rule = {"field": "days_past_due", "op": ">=", "value": 30}
    assert members(db, rule, date(2026, 11, 10)) == {"never-paid", "paid-later"}
    assert members(db, rule, date(2026, 11, 23)) == {"never-paid"}


def test_the_plan_reads_the_partial_indexes(db: Db) -> None:
    with write_transaction(db.engine) as conn:
        insert_world(conn, [customer(f"c{i}", invoices=[
            {"due_date": date(2026, 1, 1) + timedelta(days=i), "amount": Decimal(1),
             "paid_at": None if i % 3 else date(2026, 2, 1)}]) for i in range(300)])
    stmt = select(Customer.id).where(segments.compile_rules(
        {"field": "days_past_due", "op": ">=", "value": 30}, AS_OF, {}))
    with db.engine.connect() as conn:
        if db.dialect == "sqlite":
            sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
            plan = " ".join(r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
        else:
            conn.exec_driver_sql("ANALYZE invoices")
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
            plan = " ".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {sql}"))
    assert "ix_invoices_unpaid" in plan, plan
    assert "ix_invoices_paid_at" in plan, plan
