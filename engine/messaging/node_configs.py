"""Send-message node settings the outbox row does not carry (tracking, ignore_caps, quiet
hours): read at dispatch from the graphs of a batch's campaigns, once per batch, so a node
edited while its messages wait applies to them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from engine.models import Campaign
from engine.sql import among


def node_configs(graphs: Iterable[tuple[int, Any]]) -> dict[tuple[int, str], dict[str, Any]]:
    """(campaign id, node id) -> node config, for (campaign id, graph) pairs."""
    return {(campaign_id, node.get("id")): node.get("config") or {}
            for campaign_id, graph in graphs for node in (graph or {}).get("nodes") or ()}


@dataclass(frozen=True)
class BatchCampaigns:
    """What a batch's messages need of their campaigns: node configs and time zones."""

    configs: dict[tuple[int, str], dict[str, Any]]
    timezones: dict[int, str]


def batch_campaigns(conn: Connection, rows: Iterable[Any]) -> BatchCampaigns:
    found = conn.execute(select(Campaign.id, Campaign.graph, Campaign.timezone).where(
        among(conn, Campaign.id, {r.campaign_id for r in rows}))).all()
    return BatchCampaigns(node_configs((c.id, c.graph) for c in found),
                          {c.id: c.timezone for c in found})
