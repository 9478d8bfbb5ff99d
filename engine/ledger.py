"""The bonus ledger: the daily expiry job and a customer's detailed balance."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Date, DateTime, String, and_, cast, literal, select
from sqlalchemy.orm import aliased

from engine.models import Activity, BonusLedger
from engine.models.base import utcnow
from engine.sql import insert_new, json_object


def expire(conn: Connection, as_of: date, now: datetime | None = None) -> int:
    """Write one `expiry` row and one `bonus_expired` activity for every accrual whose
    expires_at has come (expires_at <= as_of). Idempotent: each accrual expires once."""
    now = now or utcnow()
    accrual = aliased(BonusLedger)
    done = aliased(BonusLedger)
    due = and_(accrual.kind == "accrual", accrual.expires_at.is_not(None),
               accrual.expires_at <= as_of,
               ~select(done.id).where(done.reverses_id == accrual.id).exists())
    added = insert_new(conn, BonusLedger.__table__, select(  # type: ignore[arg-type]
        accrual.customer_id, literal("expiry").label("kind"), (-accrual.amount).label("amount"),
        accrual.expires_at.label("booked_on"), accrual.legal_entity, accrual.description,
        accrual.campaign_id, accrual.node_id, accrual.occurrence,
        accrual.id.label("reverses_id"), literal(now, DateTime).label("created_at"),
    ).where(due))
    expired = aliased(BonusLedger)
    insert_new(conn, Activity.__table__, select(  # type: ignore[arg-type]
        expired.customer_id, literal(now, DateTime).label("at"),
        literal("bonus_expired").label("kind"), expired.campaign_id, expired.node_id,
        expired.occurrence, expired.id.label("ledger_id"),
        (literal("Expired ") + cast(-expired.amount, String) + literal(" points")
         ).label("summary"),
        json_object(conn, amount=expired.amount, booked_on=cast(expired.booked_on, String),
                    reverses=expired.reverses_id).label("details"),
    ).where(expired.kind == "expiry", expired.booked_on <= literal(as_of, Date),
            ~select(Activity.id).where(Activity.ledger_id == expired.id).exists()))
    return added


def balance(conn: Connection, customer_id: int, as_of: date) -> dict[str, Any]:
    """Accruals with their expiry, what has expired, and what is available on `as_of`."""
    rows = conn.execute(select(BonusLedger).where(
        BonusLedger.customer_id == customer_id, BonusLedger.booked_on <= as_of,
    ).order_by(BonusLedger.booked_on, BonusLedger.id)).all()
    entries = []
    available = expired = 0
    for r in rows:
        live = r.kind != "expiry" and (r.expires_at is None or r.expires_at > as_of)
        if r.kind == "accrual" and not live:
            expired += r.amount
        if live:
            available += r.amount
        entries.append({"kind": r.kind, "amount": r.amount, "booked_on": r.booked_on.isoformat(),
                        "expires_at": r.expires_at.isoformat() if r.expires_at else None,
                        "legal_entity": r.legal_entity, "description": r.description,
                        "status": "expired" if r.kind == "accrual" and not live else
                        ("available" if live else "expiry")})
    return {"as_of": as_of.isoformat(), "available": available, "expired": expired,
            "entries": entries}


__all__ = ["balance", "expire"]
