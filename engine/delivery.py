"""What became of the messages a run or a campaign sent: sent, delivered, bounced, opened,
clicked, counted for many runs or campaigns in one GROUP BY."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, func, select

from engine.models import Message

FIGURES = ("sent", "delivered", "bounced", "opened", "clicked")
# Not delivered, for good: an email bounced or dropped, an SMS undelivered or failed.
BOUNCED = ("bounced", "dropped", "undelivered", "failed")


def delivery_counts(conn: Connection, by: str, ids: Collection[int]) -> dict[int, dict[str, int]]:
    """{run or campaign id: {figure: count}} over the messages sent (`by` is "run" or
    "campaign"); every id asked for is in the answer, with zeros when nothing was sent."""
    if not ids:
        return {}
    key = Message.run_id if by == "run" else Message.campaign_id
    m = Message.__table__.c

    def count(condition: Any) -> Any:
        return func.count().filter(condition)

    rows = conn.execute(
        select(key, count(m.sent_at.is_not(None)).label("sent"),
               count(m.delivered_at.is_not(None)).label("delivered"),
               count(m.delivery_status.in_(BOUNCED)).label("bounced"),
               count(m.opened_at.is_not(None)).label("opened"),
               count(m.clicked_at.is_not(None)).label("clicked"))
        .where(key.in_(sorted(ids)), m.status == "sent").group_by(key))
    out = {i: dict.fromkeys(FIGURES, 0) for i in ids}
    for r in rows:
        out[r[0]] = {f: int(getattr(r, f)) for f in FIGURES}
    return out
