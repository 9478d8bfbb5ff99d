"""Send-message node settings the outbox row does not carry (tracking, ignore_caps): read at
dispatch from the graphs of a batch's campaigns, once per batch, so a node edited while its
messages wait applies to them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def node_configs(graphs: Iterable[tuple[int, Any]]) -> dict[tuple[int, str], dict[str, Any]]:
    """(campaign id, node id) -> node config, for (campaign id, graph) pairs."""
    return {(campaign_id, node.get("id")): node.get("config") or {}
            for campaign_id, graph in graphs for node in (graph or {}).get("nodes") or ()}
