"""Points booked by hand or by another system: a positive amount adds an `adjustment` credit;
a negative amount books a `redemption` that takes the points from the customer's available
credits that expire first (those without an expiry last), never more than are available.

Each movement writes its activity (`bonus_adjusted`, `bonus_redeemed`) in the same transaction,
and may carry a reference (an idempotency key): the same reference again books nothing and
returns the first movement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import Connection, case, insert, select

from engine.errors import IdempotencyConflict, InsufficientPoints, Problem
from engine.errors import ValidationError as Invalid
from engine.limits import INT32_MAX, fits
from engine.models import Activity, BonusAllocation, BonusLedger, Customer
from engine.models.base import utcnow
from engine.points.credits import available_on, pending_on, taken

MAX_LIFETIME_DAYS = 36600


def _not_zero(value: int) -> None:
    if value == 0:
        raise ValidationError("must not be 0: a positive amount adds points, a negative one "
                              "redeems them")


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be blank")


class PointsSchema(Schema):
    """A manual movement: what the API takes and the CLI checks its arguments against."""

    amount = fields.Integer(required=True, strict=True, validate=[
        validate.Range(-INT32_MAX, INT32_MAX), _not_zero], metadata={
        "description": "points to add (> 0) or to redeem (< 0)"})
    reason = fields.String(required=True, validate=[fits(BonusLedger.description, 1),
                                                    _not_blank], metadata={
        "description": "kept as the movement's description and in the activity log"})
    expires_at = fields.Date(load_default=None, metadata={
        "description": "added points expire on this date (after today); default: never"})
    lifetime_days = fields.Integer(strict=True, load_default=None, validate=validate.Range(
        1, MAX_LIFETIME_DAYS), metadata={"description": "or: added points expire N days "
                                                        "from today"})
    legal_entity = fields.String(load_default=None, validate=fits(BonusLedger.legal_entity))
    reference = fields.String(load_default=None, validate=fits(BonusLedger.reference, 1),
                              metadata={"description": "idempotency key, once per customer "
                                                       "(also the Idempotency-Key header)"})

    @validates_schema
    def _expiry(self, data: dict[str, Any], **_kw: Any) -> None:
        if data.get("expires_at") and data.get("lifetime_days"):
            raise ValidationError("give expires_at or lifetime_days, not both", "lifetime_days")
        amount = data.get("amount")
        if isinstance(amount, int) and amount < 0:
            for name in ("expires_at", "lifetime_days"):
                if data.get(name) is not None:
                    raise ValidationError("only points added expire; a redemption takes from "
                                          "the credits that expire first", name)


@dataclass(frozen=True)
class Booked:
    """A movement as booked (or as found again by its reference)."""

    movement: dict[str, Any]
    replayed: bool


def adjust(conn: Connection, customer_id: int, fields_: dict[str, Any], on: date,
           by: str | None) -> Booked:
    """Book `fields_` (loaded by PointsSchema) for a customer on date `on`, by a user.

    Run it in a write transaction (engine.db.write_transaction): on PostgreSQL it locks the
    customer's row, so two movements for one customer queue and never overdraw; SQLite has one
    writer at a time. Raises InsufficientPoints, with nothing written, when a redemption asks
    for more than is available on `on`; IdempotencyConflict when the reference was used for
    another movement."""
    conn.execute(select(Customer.id).where(Customer.id == customer_id)
                 .with_for_update(key_share=True))
    amount, reason = fields_["amount"], fields_["reason"]
    if (ref := fields_.get("reference")) is not None:
        found = conn.execute(select(BonusLedger).where(BonusLedger.customer_id == customer_id,
                                                       BonusLedger.reference == ref)).first()
        if found is not None:
            if (found.amount, found.description) != (amount, reason):
                raise IdempotencyConflict(
                    f"reference {ref!r} was used for another movement ({found.amount:+d} "
                    f"points: {found.description})",
                    [Problem("$.reference", "used for another movement")])
            return Booked(movement(conn, found), replayed=True)
    if amount > 0:
        row = _add(conn, customer_id, fields_, on, by)
    else:
        row = _redeem(conn, customer_id, fields_, on, by)
    return Booked(movement(conn, row), replayed=False)


def _add(conn: Connection, customer_id: int, f: dict[str, Any], on: date,
         by: str | None) -> Any:
    expires = f.get("expires_at")
    if f.get("lifetime_days"):
        expires = on + timedelta(days=f["lifetime_days"])
    if expires is not None and expires <= on:
        raise Invalid([Problem("$.expires_at", f"must be after {on.isoformat()}, the day the "
                                               f"points are booked")])
    row = _book(conn, customer_id, "adjustment", f, on, by, expires)
    until = f", valid until {expires.isoformat()}" if expires else ""
    _activity(conn, row, "bonus_adjusted",
              f"Added {row.amount} points: {row.description}{until}{_by(by)}",
              {"amount": row.amount, "reason": row.description, "by": by,
               "reference": row.reference, "legal_entity": row.legal_entity,
               "expires_at": expires.isoformat() if expires else None})
    return row


def _redeem(conn: Connection, customer_id: int, f: dict[str, Any], on: date,
            by: str | None) -> Any:
    wanted = -f["amount"]
    left = BonusLedger.amount - taken(BonusLedger)
    credits = conn.execute(
        select(BonusLedger.id, BonusLedger.expires_at, BonusLedger.description,
               left.label("left"))
        .where(BonusLedger.customer_id == customer_id, available_on(BonusLedger, on), left > 0)
        .order_by(case((BonusLedger.expires_at.is_(None), 1), else_=0),
                  BonusLedger.expires_at, BonusLedger.booked_on, BonusLedger.id)).all()
    available = sum(c.left for c in credits)
    if available < wanted:
        pending = conn.execute(select(BonusLedger.amount).where(
            BonusLedger.customer_id == customer_id, pending_on(BonusLedger, on))).scalars()
        waiting = sum(pending)
        more = f" ({waiting} more pending)" if waiting else ""
        text = (f"cannot redeem {wanted} points: {available} available on {on.isoformat()}"
                f"{more}")
        raise InsufficientPoints(text, [Problem("$.amount", text)])
    takes: list[dict[str, Any]] = []
    for c in credits:
        if wanted == 0:
            break
        n = min(c.left, wanted)
        wanted -= n
        takes.append({"credit": c.id, "amount": n, "description": c.description,
                      "expires_at": c.expires_at.isoformat() if c.expires_at else None})
    row = _book(conn, customer_id, "redemption", f, on, by, None)
    conn.execute(insert(BonusAllocation), [
        {"customer_id": customer_id, "redemption_id": row.id, "credit_id": t["credit"],
         "amount": t["amount"]} for t in takes])
    _activity(conn, row, "bonus_redeemed",
              f"Redeemed {-row.amount} points: {row.description}{_by(by)}",
              {"amount": row.amount, "reason": row.description, "by": by,
               "reference": row.reference, "legal_entity": row.legal_entity, "took": takes})
    return row


def _by(by: str | None) -> str:
    return f" (by {by})" if by else ""


def _book(conn: Connection, customer_id: int, kind: str, f: dict[str, Any], on: date,
          by: str | None, expires: date | None) -> Any:
    new_id = conn.execute(insert(BonusLedger).values(
        customer_id=customer_id, kind=kind, amount=f["amount"], booked_on=on,
        expires_at=expires, legal_entity=f.get("legal_entity"), description=f["reason"],
        reference=f.get("reference"), created_by=by, created_at=utcnow(),
    ).returning(BonusLedger.id)).scalar_one()
    return conn.execute(select(BonusLedger).where(BonusLedger.id == new_id)).one()


def _activity(conn: Connection, row: Any, kind: str, summary: str,
              details: dict[str, Any]) -> None:
    conn.execute(insert(Activity).values(
        customer_id=row.customer_id, at=utcnow(), kind=kind, ledger_id=row.id,
        summary=summary, details={k: v for k, v in details.items() if v is not None}))


def movement(conn: Connection, row: Any) -> dict[str, Any]:
    """A movement as the API and the CLI show it; a redemption lists what it took."""
    took = [{"credit": t.credit_id, "amount": t.amount,
             "expires_at": t.expires_at.isoformat() if t.expires_at else None,
             "description": t.description}
            for t in conn.execute(
                select(BonusAllocation.credit_id, BonusAllocation.amount,
                       BonusLedger.expires_at, BonusLedger.description)
                .join(BonusLedger, BonusLedger.id == BonusAllocation.credit_id)
                .where(BonusAllocation.redemption_id == row.id)
                .order_by(BonusAllocation.id))] if row.kind == "redemption" else []
    return {"id": row.id, "kind": row.kind, "amount": row.amount,
            "booked_on": row.booked_on.isoformat(),
            "expires_at": row.expires_at.isoformat() if row.expires_at else None,
            "legal_entity": row.legal_entity, "description": row.description,
            "reference": row.reference, "created_by": row.created_by, "took": took}
