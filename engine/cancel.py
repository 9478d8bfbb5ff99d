"""The STOP button: cancel a campaign's queued and held messages, each with an activity."""

from __future__ import annotations

from sqlalchemy import Connection, and_, insert, literal, select, update

from engine.errors import NotFound
from engine.models import Activity, Campaign, Message
from engine.models.base import utcnow


def cancel_messages(conn: Connection, key: str, run_id: int | None = None) -> int:
    """Cancel what has not gone out yet; returns how many messages were cancelled."""
    now = utcnow()
    campaign_id = conn.execute(select(Campaign.id).where(Campaign.key == key)).scalar()
    if campaign_id is None:
        raise NotFound(f"no campaign {key!r}")
    which = and_(Message.campaign_id == campaign_id, Message.status.in_(("queued", "held")))
    if run_id is not None:
        which = and_(which, Message.run_id == run_id)
    ids = list(conn.execute(select(Message.id).where(which)).scalars())
    if ids:
        conn.execute(update(Message).where(Message.id.in_(ids))
                     .values(status="cancelled", lease_until=None))
        conn.execute(insert(Activity).from_select(
            ["customer_id", "at", "kind", "campaign_id", "node_id", "occurrence", "run_id",
             "message_id", "summary", "details"],
            select(Message.customer_id, literal(now), literal("message_cancelled"),
                   Message.campaign_id, Message.node_id, Message.occurrence, Message.run_id,
                   Message.id, literal(f"Message cancelled (campaign {key} stopped)"),
                   literal({}, Activity.details.type))
            .where(Message.id.in_(ids))))
    return len(ids)
