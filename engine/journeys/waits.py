"""What becomes of customers waiting at a wait node when a new version of the campaign no
longer has it: they leave the journey, each with a `journey_exited` activity saying why,
rather than wait for a release that no run would ever make."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, String, cast, literal, select, update

from engine.models import Activity, JourneyWait
from engine.models.base import utcnow
from engine.sql import insert_new, json_object, rowcount

W = JourneyWait.__table__.c


def end_removed_waits(conn: Connection, campaign_id: int, graph: dict[str, Any],
                      version: int, today: date) -> int:
    """End the waits of `campaign_id` at nodes that are not wait nodes of `graph` (its new
    version); returns how many customers left."""
    kept = [n["id"] for n in graph.get("nodes", []) if n.get("type") == "wait"]
    gone = (W.campaign_id == campaign_id) & (W.status == "waiting") & W.node_id.not_in(kept)
    ended = rowcount(conn, update(JourneyWait).where(gone).values(status="exited",
                                                                  ended_on=today))
    if not ended:
        return 0
    summary = (f"left the journey: version {version} of the campaign no longer has the wait "
               f"this customer was at")
    insert_new(conn, Activity.__table__, select(  # type: ignore[arg-type]
        W.customer_id, literal(utcnow()).label("at"), literal("journey_exited").label("kind"),
        W.campaign_id, W.node_id, W.occurrence, literal(summary).label("summary"),
        json_object(conn, reason=cast(literal("wait_removed"), String),
                    version=literal(version),
                    waited_since=cast(W.parked_on, String)).label("details"),
    ).where(W.campaign_id == campaign_id, W.status == "exited", W.ended_on == today,
            W.ended_run_id.is_(None), W.node_id.not_in(kept)))
    return ended
