"""What the operations endpoints read from the database: the send queue for /healthz, and the
gauges /metrics collects at scrape time. Each query is cheap and reveals no customer data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select, text

from engine.models import Campaign, Message, Run
from engine.models.base import utcnow

QUEUE_STATUSES = ("queued", "sending", "held")


@dataclass(frozen=True)
class Queue:
    queued: int
    sending: int
    held: int
    oldest_due_seconds: float  # how long the longest-waiting due message has waited; 0 if none

    def as_dict(self) -> dict[str, Any]:
        return {"queued": self.queued, "sending": self.sending, "held": self.held,
                "oldest_due_seconds": self.oldest_due_seconds}


def ping(conn: Connection) -> None:
    conn.execute(text("SELECT 1")).scalar_one()


def queue(conn: Connection, now: datetime | None = None) -> Queue:
    """The queue's size by status and its lag. One count per status, each answered from the
    partial index ix_messages_status_send_after_id (an equality on its first column), and the
    earliest due `send_after` of the queued ones from the same index."""
    now = now or utcnow()
    counts = {status: int(conn.execute(select(func.count()).select_from(Message)
                                       .where(Message.status == status)).scalar_one())
              for status in QUEUE_STATUSES}
    oldest = conn.execute(select(func.min(Message.send_after)).where(
        Message.status == "queued", Message.send_after <= now)).scalar_one()
    lag = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return Queue(counts["queued"], counts["sending"], counts["held"], round(lag, 3))


def messages_by_status(conn: Connection) -> list[tuple[str, str, int]]:
    """(status, channel, count) of every message."""
    rows = conn.execute(select(Message.status, Message.channel, func.count())
                        .group_by(Message.status, Message.channel))
    return [(r[0], r[1], int(r[2])) for r in rows]


def runs_by_status(conn: Connection, now: datetime | None = None) -> list[tuple[str, int]]:
    """(status, count) of the runs started in the last 24 hours."""
    since = (now or utcnow()) - timedelta(days=1)
    rows = conn.execute(select(Run.status, func.count()).where(Run.started_at >= since)
                        .group_by(Run.status))
    return [(r[0], int(r[1])) for r in rows]


def last_completed_runs(conn: Connection) -> list[tuple[str, datetime]]:
    """(campaign key, when its last completed run finished, naive UTC). Not for blasts: each
    runs once, and a gauge per blast would be a new time series for every one."""
    rows = conn.execute(select(Campaign.key, func.max(Run.finished_at))
                        .join(Run, Run.campaign_id == Campaign.id)
                        .where(Run.status == "completed", Run.finished_at.is_not(None),
                               Campaign.kind == "campaign")
                        .group_by(Campaign.key))
    return [(r[0], r[1]) for r in rows if r[1] is not None]
