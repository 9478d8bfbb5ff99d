"""Open and click tracking, as the send-message node that queued an email asks for it
(`"tracking": {"opens": true, "clicks": true}`).

The outbox row does not carry it: see engine.messaging.node_configs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

TRACKED = ("opens", "clicks")


def tracking(rows: Iterable[Any], configs: Mapping[tuple[int, str], Mapping[str, Any]]
             ) -> dict[tuple[int, str], frozenset[str]]:
    """(campaign id, node id) -> what its emails track, for the nodes of the batch's emails
    that track anything (`configs`: engine.messaging.node_configs)."""
    out = {}
    for key in {(r.campaign_id, r.node_id) for r in rows if r.channel == "email"}:
        asked = configs.get(key, {}).get("tracking") or {}
        if on := frozenset(k for k in TRACKED if asked.get(k) is True):
            out[key] = on
    return out
