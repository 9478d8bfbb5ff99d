"""Quiet hours at dispatch. A run moves a message's send time out of its quiet hours when it
queues it (nodes/send_message.py), but a message can still come due inside them: a retry after
backoff, one that waited for credit, one whose dispatcher was down. Each claimed batch is checked
again: a message inside its quiet hours (the node's, else the workspace's for the channel, read
in the customer's zone, else the campaign's) goes back to the queue until they end."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update

from engine.db import write_transaction
from engine.messaging.claims import LEASED, Claim
from engine.messaging.node_configs import node_configs
from engine.messaging.quiet_hours import quiet_until, window_for
from engine.models import Campaign, Customer, Message
from engine.sql import among


def defer_quiet(engine: Engine, claim: Claim, rows: list[Any],
                workspace: Mapping[str, Any]) -> tuple[list[Any], int]:
    """The rows that may go out now, and how many were put back until their quiet hours end
    (fenced by the claim's token, like every outcome)."""
    if not rows:
        return rows, 0
    with engine.connect() as conn:
        campaigns = conn.execute(select(Campaign.id, Campaign.graph, Campaign.timezone).where(
            among(conn, Campaign.id, {r.campaign_id for r in rows}))).all()
        configs = node_configs((c.id, c.graph) for c in campaigns)
        windows = {r.id: w for r in rows if (w := window_for(
            configs.get((r.campaign_id, r.node_id), {}), r.channel, workspace))}
        if not windows:
            return rows, 0
        zones = dict(conn.execute(select(Customer.id, Customer.timezone).where(
            among(conn, Customer.id, {r.customer_id for r in rows if r.id in windows}))).all())
    campaign_zone = {c.id: c.timezone for c in campaigns}
    now = claim.clock()
    until: dict[datetime, list[int]] = defaultdict(list)
    for r in rows:
        if r.id in windows:
            zone = zones.get(r.customer_id) or campaign_zone[r.campaign_id]
            if (end := quiet_until(now, zone, windows[r.id])) is not None:
                until[end].append(r.id)
    if not until:
        return rows, 0
    with write_transaction(engine) as conn:
        for end, ids in until.items():
            conn.execute(update(Message).where(among(conn, Message.id, ids), LEASED,
                                               Message.claim_token == claim.token)
                         .values(status="queued", send_after=end, lease_until=None,
                                 claim_token=None))
    deferred = {i for ids in until.values() for i in ids}
    return [r for r in rows if r.id not in deferred], len(deferred)
