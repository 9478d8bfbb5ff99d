"""The daily expiry job: what remains of each credit whose expiry date has come."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Connection, Date, DateTime, String, and_, cast, literal, select
from sqlalchemy.orm import aliased

from engine.models import Activity, BonusLedger
from engine.models.base import utcnow
from engine.points.credits import is_credit, taken
from engine.sql import insert_new, json_object


def expire(conn: Connection, as_of: date, now: datetime | None = None) -> int:
    """Write one `expiry` row and one `bonus_expired` activity for every credit whose
    expires_at has come (expires_at <= as_of), for what remains of it after redemptions: a
    customer who redeemed 60 of 100 points loses 40. A credit redeemed in full gets no expiry
    row. Two INSERT ... SELECTs, whatever the number of customers; idempotent: each credit
    expires once (the unique reverses_id), and a re-run adds nothing.

    Redemptions take only from credits live after their booking date (today), so they never
    race this job for the same credit while it runs for today."""
    now = now or utcnow()
    credit = aliased(BonusLedger)
    done = aliased(BonusLedger)
    remaining = credit.amount - taken(credit)
    due = and_(is_credit(credit), credit.expires_at.is_not(None), credit.expires_at <= as_of,
               ~select(done.id).where(done.reverses_id == credit.id).exists(),
               remaining > 0)
    added = insert_new(conn, BonusLedger.__table__, select(  # type: ignore[arg-type]
        credit.customer_id, literal("expiry").label("kind"), (-remaining).label("amount"),
        credit.expires_at.label("booked_on"), credit.legal_entity, credit.description,
        credit.campaign_id, credit.node_id, credit.occurrence,
        credit.id.label("reverses_id"), literal(now, DateTime).label("created_at"),
    ).where(due))
    expired = aliased(BonusLedger)
    insert_new(conn, Activity.__table__, select(  # type: ignore[arg-type]
        expired.customer_id, literal(now, DateTime).label("at"),
        literal("bonus_expired").label("kind"), expired.campaign_id, expired.node_id,
        expired.occurrence, expired.id.label("ledger_id"),
        (literal("Expired ") + cast(-expired.amount, String) + literal(" points")
         ).label("summary"),
        json_object(conn, amount=expired.amount, booked_on=cast(expired.booked_on, String),
                    reverses=expired.reverses_id,
                    description=expired.description).label("details"),
    ).where(expired.kind == "expiry", expired.booked_on <= literal(as_of, Date),
            ~select(Activity.id).where(Activity.ledger_id == expired.id).exists()))
    return added
