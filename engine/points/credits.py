"""What a credit (an accrual or a positive adjustment) still holds, in SQL: the one definition
of pending, available and expired points that the balance, the expiry job, the `bonus_balance`
segment field and templates share.

A credit is booked on `booked_on`, pending until `activates_on` (null: from booking), live
until `expires_at` (exclusive; null: forever). Redemptions take points from live credits and
record each take in bonus_allocations; what remains of a credit is its amount less those takes
(as of a date: less the takes of redemptions booked by then). The expiry job expires only the
remainder.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import aliased

from engine.models import BonusAllocation, BonusLedger
from engine.models.effects import CREDIT_KINDS

Bool = ColumnElement[bool]


def activation(credit: Any = BonusLedger) -> ColumnElement[Any]:
    """The date a credit's points become available."""
    return func.coalesce(credit.activates_on, credit.booked_on)


def is_credit(credit: Any = BonusLedger) -> Bool:
    return credit.kind.in_(CREDIT_KINDS)


def unexpired(credit: Any, day: date) -> Bool:
    return or_(credit.expires_at.is_(None), credit.expires_at > day)


def available_on(credit: Any, day: date) -> Bool:
    """Booked, active and not expired on `day`: its remainder may be redeemed."""
    return and_(is_credit(credit), credit.booked_on <= day, activation(credit) <= day,
                unexpired(credit, day))


def pending_on(credit: Any, day: date) -> Bool:
    return and_(is_credit(credit), credit.booked_on <= day, activation(credit) > day,
                unexpired(credit, day))


def taken(credit: Any, day: date | None = None) -> ColumnElement[int]:
    """Points redemptions took from `credit` (those booked by `day`, when given)."""
    alloc = aliased(BonusAllocation)
    # The customer too: allocations are distributed by customer (DESIGN.md, Scale-out).
    stmt = select(func.coalesce(func.sum(alloc.amount), 0)).where(
        alloc.customer_id == credit.customer_id, alloc.credit_id == credit.id)
    if day is not None:
        redemption = aliased(BonusLedger)
        stmt = stmt.join(redemption, redemption.id == alloc.redemption_id).where(
            redemption.booked_on <= day)
    return stmt.scalar_subquery()


def available_points(customer_id: Any, day: date) -> ColumnElement[int]:
    """A customer's available points on `day` (a correlated scalar subquery): the live,
    active credits' amounts less what redemptions booked by `day` took from them."""
    credit = aliased(BonusLedger)
    alloc = aliased(BonusAllocation)
    redemption = aliased(BonusLedger)
    credited = (select(func.coalesce(func.sum(credit.amount), 0))
                .where(credit.customer_id == customer_id, available_on(credit, day))
                .scalar_subquery())
    took = (select(func.coalesce(func.sum(alloc.amount), 0))
            .join(credit, credit.id == alloc.credit_id)
            .join(redemption, redemption.id == alloc.redemption_id)
            .where(alloc.customer_id == customer_id, credit.customer_id == customer_id,
                   available_on(credit, day),
                   redemption.booked_on <= day)
            .scalar_subquery())
    return credited - took
