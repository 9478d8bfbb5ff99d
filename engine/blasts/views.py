"""Reading blasts: one with its run's counts and its messages by status, or a page of them,
newest first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, func, select

from engine.blasts.create import SEND, sent_counts
from engine.errors import NotFound
from engine.models import Blast, Campaign, Message, Run, Template
from engine.sql import among

COLUMNS = (Blast.campaign_id, Campaign.key, Campaign.name, Campaign.purpose, Campaign.graph,
           Blast.as_of, Blast.source, Blast.selection, Blast.requested, Blast.not_members,
           Blast.created_by, Blast.created_at, Run.id.label("run_id"),
           Run.status.label("run_status"), Run.counts, Run.error)


def _query() -> Any:
    return (select(*COLUMNS).join(Campaign, Campaign.id == Blast.campaign_id)
            .outerjoin(Run, and_(Run.campaign_id == Blast.campaign_id,
                                 Run.run_date == Blast.as_of)))


def _statuses(conn: Connection, ids: list[int]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {i: {} for i in ids}
    if ids:
        for campaign_id, status, n in conn.execute(
                select(Message.campaign_id, Message.status, func.count())
                .where(among(conn, Message.campaign_id, ids))
                .group_by(Message.campaign_id, Message.status)):
            out[campaign_id][status] = int(n)
    return out


def _shape(row: Any, statuses: dict[str, int], channels: dict[str, str]) -> dict[str, Any]:
    send: dict[str, Any] = next((n["config"] for n in row.graph["nodes"] if n["id"] == SEND), {})
    by_key = set(row.source) == {"segment"} and isinstance(row.source["segment"], str)
    return {
        "id": row.campaign_id, "key": row.key, "name": row.name, "purpose": row.purpose,
        "segment": row.source["segment"] if by_key else None,
        "rules": None if by_key else row.source,
        "date": row.as_of.isoformat(), "selection": row.selection, "requested": row.requested,
        "not_members": list(row.not_members or []),
        "template": send.get("template"),
        "channel": channels.get(send.get("template") or "", send.get("channel")),
        "send_at": send.get("send_at"),
        "created_by": row.created_by, "created_at": row.created_at,
        "run": {"id": row.run_id, "status": row.run_status, "error": row.error},
        "counts": sent_counts(row.counts or {}), "messages": statuses,
    }


def _channels(conn: Connection, rows: Sequence[Any]) -> dict[str, str]:
    keys = {n["config"].get("template") for r in rows for n in r.graph["nodes"] if n["id"] == SEND}
    keys.discard(None)
    if not keys:
        return {}
    return dict(conn.execute(select(Template.key, Template.channel)  # type: ignore[arg-type]
                             .where(Template.key.in_(sorted(keys)))).all())


def describe(conn: Connection, blast_id: int) -> dict[str, Any]:
    row = conn.execute(_query().where(Blast.campaign_id == blast_id)).first()
    if row is None:
        raise NotFound(f"no blast {blast_id}")
    return _shape(row, _statuses(conn, [blast_id])[blast_id], _channels(conn, [row]))


def list_blasts(conn: Connection, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    rows = conn.execute(_query().order_by(Blast.campaign_id.desc())
                        .limit(limit).offset(offset)).all()
    statuses = _statuses(conn, [r.campaign_id for r in rows])
    channels = _channels(conn, rows)
    return [_shape(r, statuses[r.campaign_id], channels) for r in rows]


def blast_id(key_or_id: str) -> int:
    """A blast named by its id (7) or its campaign key (blast-7)."""
    text = key_or_id.removeprefix("blast-")
    if not text.isdigit() or len(text) > 9:
        raise NotFound(f"no blast {key_or_id!r} (expected its id, 7, or key, blast-7)")
    return int(text)
