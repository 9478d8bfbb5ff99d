"""A customer's activity log: what we sent, skipped and awarded, and why."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, select

from engine.errors import NotFound
from engine.models import Activity, Campaign, Customer


def customer_id(conn: Connection, external_id: str) -> int:
    found = conn.execute(select(Customer.id).where(Customer.external_id == external_id)
                         ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no customer with external_id {external_id!r}")
    return int(found)


def timeline(conn: Connection, cid: int, kinds: list[str] | None = None,
             limit: int = 1000, *, campaign: str | None = None, since: date | None = None,
             until: date | None = None, offset: int = 0,
             newest_first: bool = False) -> list[dict[str, Any]]:
    """Activities of one customer, oldest first (or newest first), optionally by kind,
    campaign and date range (`until` inclusive)."""
    order = (Activity.at.desc(), Activity.id.desc()) if newest_first else (Activity.at,
                                                                           Activity.id)
    stmt = (select(Activity.at, Activity.kind, Campaign.key.label("campaign"), Activity.node_id,
                   Activity.occurrence, Activity.summary, Activity.details)
            .outerjoin(Campaign, Campaign.id == Activity.campaign_id)
            .where(Activity.customer_id == cid)
            .order_by(*order).limit(limit))
    if kinds:
        stmt = stmt.where(Activity.kind.in_(kinds))
    if campaign:
        stmt = stmt.where(Campaign.key == campaign)
    if since:
        stmt = stmt.where(Activity.at >= datetime.combine(since, time()))
    if until and until < date.max:  # until the calendar's last day is no bound at all
        stmt = stmt.where(Activity.at < datetime.combine(until + timedelta(days=1), time()))
    if offset:
        stmt = stmt.offset(offset)
    return [{**r._mapping, "at": r.at.isoformat(timespec="seconds"),
             "details": {k: v for k, v in (r.details or {}).items() if v is not None}}
            for r in conn.execute(stmt)]
