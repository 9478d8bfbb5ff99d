"""A customer's invoices as of a date D, as SQL value expressions over `customers`: what is
due next, when they last paid, what they owe by how far ahead it is due, how much they paid.

Unpaid as of D: `paid_at` null or after D; paid by D: `paid_at` on or before D. Each value is
one correlated scalar subquery driven by the (customer_id, due_date) index, so a rule, a
template and a data set read the same SQL. Date bounds are computed here in Python; the one
subtraction in SQL (days_since_last_payment's value) is sqlfuncs.days_from, one per dialect.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import Date, Float, and_, case, cast, func, literal, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.expression import ColumnElement

from engine.models import Customer, Invoice
from engine.segments.sqlfuncs import days_from

C = Customer.__table__.c
# Days ahead of D for each owed_* bucket: (first, last); None: no end.
BUCKETS = {
    "owed_next_30": (0, 30), "owed_31_60": (31, 60), "owed_61_90": (61, 90),
    "owed_91_120": (91, 120), "owed_over_120": (121, None),
}


def unpaid(d: date, inv: Any = Invoice) -> ColumnElement[bool]:
    return or_(inv.paid_at.is_(None), inv.paid_at > d)


def paid(d: date, inv: Any = Invoice) -> ColumnElement[bool]:
    return and_(inv.paid_at.is_not(None), inv.paid_at <= d)


def _of_customer(value: Any, *where: Any) -> ColumnElement[Any]:
    """`value` aggregated over the customer's invoices that satisfy `where`."""
    return select(value).where(Invoice.customer_id == C.id, *where).scalar_subquery()


def next_due_date(d: date, inv: Any = Invoice) -> ColumnElement[Any]:
    """The earliest due date on or after D among the invoices unpaid as of D."""
    return (select(func.min(inv.due_date))
            .where(inv.customer_id == C.id, unpaid(d, inv), inv.due_date >= d)
            .correlate(Customer).scalar_subquery())


def next_amount_due(d: date) -> ColumnElement[Any]:
    """The unpaid amount due on next_due_date (null when nothing is due)."""
    # The inner query reads an alias: the same table would correlate to the outer invoices.
    return _of_customer(func.sum(Invoice.amount), unpaid(d),
                        Invoice.due_date == next_due_date(d, aliased(Invoice)))


def last_payment_date(d: date) -> ColumnElement[Any]:
    return _of_customer(func.max(Invoice.paid_at), paid(d))


def days_since_last_payment(d: date) -> ColumnElement[Any]:
    return days_from(last_payment_date(d), literal(d, Date))


def owed(d: date, bucket: str) -> ColumnElement[Any]:
    """The unpaid amount due in the bucket's days ahead of D (0 when none)."""
    first, last = BUCKETS[bucket]
    # As-of dates end in 2999 (engine/segments/dates.py): D + 121 days is a date.
    window = [Invoice.due_date >= d + timedelta(days=first)]
    if last is not None:
        window.append(Invoice.due_date <= d + timedelta(days=last))
    return func.coalesce(_of_customer(func.sum(Invoice.amount), unpaid(d), *window), 0)


def overdue_invoices(d: date) -> ColumnElement[Any]:
    return _of_customer(func.count(), unpaid(d), Invoice.due_date < d)


def paid_ratio(d: date) -> ColumnElement[Any]:
    """Paid-by-D amount over the invoiced amount, 0 to 1; null without invoices (or when they
    add up to 0). As floating point: SQLite divides whole amounts as integers."""
    paid_amount = func.sum(case((paid(d), Invoice.amount), else_=0))
    total = cast(func.nullif(func.sum(Invoice.amount), 0), Float)
    return _of_customer(cast(paid_amount, Float) / total)


def paid_up_on(d: date) -> ColumnElement[Any]:
    """last_payment_date when the customer has invoices and none is unpaid as of D."""
    settled = and_(func.count() > 0, func.sum(case((unpaid(d), 1), else_=0)) == 0)
    return _of_customer(case((settled, func.max(case((paid(d), Invoice.paid_at)))),
                             else_=None))
