"""The messages report: counts, SMS parts and credits by day, campaign, channel and status.

A sent message counts on the day it was sent, any other on the day it was created (queued or
skipped), in the workspace's time zone. Credits used are the units sent messages cost (one per
email, one per SMS part), whether or not the channel is metered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, case, func, select
from sqlalchemy.sql.expression import ColumnElement

from engine.models import Campaign, Message
from engine.reports.localdate import local_date, utc_bounds
from engine.sql import AnySelect

DIMENSIONS = ("day", "campaign", "channel", "status")
FIGURES = ("messages", "sms_parts", "credits")
WHEN = func.coalesce(Message.sent_at, Message.created_at)
# The units a message cost: one per email and per SMS part, for sent messages only.
UNITS = case((Message.status != "sent", 0), (Message.channel == "email", 1),
             else_=func.coalesce(Message.sms_parts, 0))


@dataclass(frozen=True)
class MessageFilter:
    """Which messages a report covers; None: any. Dates are local to `timezone`."""

    timezone: str = "UTC"
    since: date | None = None
    until: date | None = None
    campaign: str | None = None
    channel: str | None = None
    status: str | None = None


def _where(f: MessageFilter) -> list[ColumnElement[bool]]:
    start, end = utc_bounds(f.since, f.until, f.timezone)
    where: list[ColumnElement[bool]] = []
    if start is not None:
        where.append(WHEN >= start)
    if end is not None:
        where.append(WHEN < end)
    if f.campaign:
        where.append(Campaign.key == f.campaign)
    if f.channel:
        where.append(Message.channel == f.channel)
    if f.status:
        where.append(Message.status == f.status)
    return where


def _messages(conn: Connection, f: MessageFilter) -> Any:
    """The filtered messages, one row each with the dimensions and their units (a subquery:
    the groups are then plain columns, the same on both databases)."""
    day = local_date(conn, WHEN, f.timezone, utc_bounds(f.since, f.until, f.timezone))
    return (select(day.label("day"), Campaign.key.label("campaign"), Message.channel,
                   Message.status, Message.sms_parts, UNITS.label("units"))
            .select_from(Message).join(Campaign, Campaign.id == Message.campaign_id)
            .where(*_where(f)).subquery())


def _figures(m: Any) -> list[Any]:
    return [func.count().label("messages"),
            func.coalesce(func.sum(m.c.sms_parts), 0).label("sms_parts"),
            func.coalesce(func.sum(m.c.units), 0).label("credits")]


def statement(conn: Connection, f: MessageFilter, by: tuple[str, ...] = DIMENSIONS) -> AnySelect:
    """One row per group of `by` (in DIMENSIONS' order) with FIGURES, ordered by the groups."""
    m = _messages(conn, f)
    keys = [m.c[d] for d in DIMENSIONS if d in by]
    return select(*keys, *_figures(m)).group_by(*keys).order_by(*keys)


def report(conn: Connection, f: MessageFilter, by: tuple[str, ...] = DIMENSIONS,
           limit: int = 1000, offset: int = 0) -> dict[str, Any]:
    """`limit` groups from `offset` on, how many groups there are, and the totals of every
    message the filter covers (also per status)."""
    stmt = statement(conn, f, by)
    # The number of groups comes with the page (a window over the groups), in the same pass.
    rows = conn.execute(stmt.add_columns(func.count().over().label("groups"))
                        .limit(limit).offset(offset)).all()
    if rows:
        count = rows[0].groups
    else:
        count = conn.execute(select(func.count()).select_from(stmt.order_by(None).subquery())
                             ).scalar_one()
    m = _messages(conn, f)
    per_status = select(m.c.status, *_figures(m)).group_by(m.c.status).order_by(m.c.status)
    by_status = {r.status: {k: int(r._mapping[k]) for k in FIGURES}
                 for r in conn.execute(per_status)}
    totals: dict[str, Any] = {k: sum(s[k] for s in by_status.values()) for k in FIGURES}
    return {"by": [d for d in DIMENSIONS if d in by], "timezone": f.timezone,
            "from": f.since, "to": f.until, "total_rows": int(count),
            "rows": [_row(r) for r in rows], "totals": {**totals, "by_status": by_status}}


def _row(r: Any) -> dict[str, Any]:
    out = dict(r._mapping)
    out.pop("groups", None)
    for k in FIGURES:
        out[k] = int(out[k])
    return out
