"""Open and click tracking, as the send-message node that queued an email asks for it
(`"tracking": {"opens": true, "clicks": true}`).

The outbox row does not carry it: see engine.messaging.node_configs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, select

from engine.messaging.node_configs import node_configs
from engine.models import Campaign

TRACKED = ("opens", "clicks")


def tracking(conn: Connection, rows: Iterable[Any]) -> dict[tuple[int, str], frozenset[str]]:
    """(campaign id, node id) -> what its emails track, for the nodes of the batch's emails
    that track anything."""
    wanted = {(r.campaign_id, r.node_id) for r in rows if r.channel == "email"}
    if not wanted:
        return {}
    out = {}
    configs = node_configs(conn.execute(select(Campaign.id, Campaign.graph).where(
        Campaign.id.in_(sorted({c for c, _ in wanted})))))
    for key, config in configs.items():
        asked = config.get("tracking") or {}
        if key in wanted and (on := frozenset(k for k in TRACKED if asked.get(k) is True)):
            out[key] = on
    return out
