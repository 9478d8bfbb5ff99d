"""A customer's detailed balance as of a date: pending, available, expiring soon, expired and
redeemed points, and every movement with what remains of it."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, select

from engine.models import BonusLedger
from engine.models.effects import CREDIT_KINDS
from engine.points.credits import taken

EXPIRING_DAYS = 30


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def credit_status(row: Any, used: int, as_of: date) -> str:
    """pending, available, partly redeemed, redeemed or expired, as of a date."""
    if used >= row.amount:
        return "redeemed"
    if row.expires_at is not None and row.expires_at <= as_of:
        return "expired"
    if (row.activates_on or row.booked_on) > as_of:
        return "pending"
    return "partly redeemed" if used else "available"


def balance(conn: Connection, customer_id: int, as_of: date) -> dict[str, Any]:
    """Totals and movements (oldest first) booked by `as_of`. Each credit shows what
    redemptions booked by then took from it, what remains, and its status; `expiring_30` is
    what remains of live credits (available or pending) that expire within 30 days."""
    rows = conn.execute(select(BonusLedger, taken(BonusLedger, as_of).label("used")).where(
        BonusLedger.customer_id == customer_id, BonusLedger.booked_on <= as_of,
    ).order_by(BonusLedger.booked_on, BonusLedger.id)).all()
    totals = dict.fromkeys(("available", "pending", "expiring_30", "expired", "redeemed"), 0)
    soon = as_of + timedelta(days=EXPIRING_DAYS)
    entries = []
    for r in rows:
        entry: dict[str, Any] = {
            "id": r.id, "kind": r.kind, "amount": r.amount, "booked_on": r.booked_on.isoformat(),
            "activates_on": _iso(r.activates_on), "expires_at": _iso(r.expires_at),
            "legal_entity": r.legal_entity, "description": r.description,
            "reference": r.reference, "created_by": r.created_by}
        if r.kind in CREDIT_KINDS:
            used = int(r.used)
            left = r.amount - used
            status = credit_status(r, used, as_of)
            if status == "expired":
                totals["expired"] += left
            elif status in ("available", "partly redeemed"):
                totals["available"] += left
            elif status == "pending":
                totals["pending"] += left
            if status != "expired" and left and r.expires_at is not None and r.expires_at <= soon:
                totals["expiring_30"] += left
            entry.update(redeemed=used, remaining=0 if status == "expired" else left,
                         status=status)
        else:
            if r.kind == "redemption":
                totals["redeemed"] -= r.amount
            entry.update(redeemed=None, remaining=None, status=r.kind)
        entries.append(entry)
    return {"as_of": as_of.isoformat(), **totals, "entries": entries}
