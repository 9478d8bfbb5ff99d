"""The daily expiry job: what remains of each credit whose expiry date has come."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Connection, DateTime, String, and_, cast, insert, literal, select
from sqlalchemy.orm import aliased

from engine.models import Activity, BonusLedger
from engine.models.base import utcnow
from engine.points.credits import is_credit, taken
from engine.sql import among, json_object, skipping_duplicates


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
    added = conn.execute(skipping_duplicates(conn, BonusLedger.__table__).from_select(
        ["customer_id", "kind", "amount", "booked_on", "legal_entity", "description",
         "campaign_id", "node_id", "occurrence", "reverses_id", "created_at"],
        select(credit.customer_id, literal("expiry"), -remaining, credit.expires_at,
               credit.legal_entity, credit.description, credit.campaign_id, credit.node_id,
               credit.occurrence, credit.id, literal(now, DateTime)).where(due),
    ).returning(BonusLedger.id)).scalars().all()
    if not added:
        return 0
    # The activities of exactly the rows just written, in the same transaction. (An anti-join
    # on activities instead went quadratic on PostgreSQL: planned on statistics without these
    # rows, it scanned the activities being inserted once per row.)
    expired = aliased(BonusLedger)
    conn.execute(insert(Activity).from_select(
        ["customer_id", "at", "kind", "campaign_id", "node_id", "occurrence", "ledger_id",
         "summary", "details"],
        select(expired.customer_id, literal(now, DateTime), literal("bonus_expired"),
               expired.campaign_id, expired.node_id, expired.occurrence, expired.id,
               literal("Expired ") + cast(-expired.amount, String) + literal(" points"),
               json_object(conn, amount=expired.amount,
                           booked_on=cast(expired.booked_on, String),
                           reverses=expired.reverses_id, description=expired.description))
        .where(among(conn, expired.id, added))))
    return len(added)
