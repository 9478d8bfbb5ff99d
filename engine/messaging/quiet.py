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

from sqlalchemy import Engine, update

from engine.db import write_transaction
from engine.messaging.claims import LEASED, Claim
from engine.messaging.node_configs import BatchCampaigns
from engine.messaging.quiet_hours import quiet_ends
from engine.models import Message
from engine.sql import among


def defer_quiet(engine: Engine, claim: Claim, rows: list[Any], campaigns: BatchCampaigns,
                workspace: Mapping[str, Any]) -> tuple[list[Any], int]:
    """The rows that may go out now, and how many were put back until their quiet hours end
    (fenced by the claim's token, like every outcome)."""
    now = claim.clock()
    with engine.connect() as conn:
        ends = quiet_ends(conn, rows, dict.fromkeys((r.id for r in rows), now),
                          campaigns.configs, campaigns.timezones, workspace)
    if not ends:
        return rows, 0
    until: dict[datetime, list[int]] = defaultdict(list)
    for message_id, end in ends.items():
        until[end].append(message_id)
    with write_transaction(engine) as conn:
        for end, ids in until.items():
            conn.execute(update(Message).where(among(conn, Message.id, ids), LEASED,
                                               Message.claim_token == claim.token)
                         .values(status="queued", send_after=end, lease_until=None,
                                 claim_token=None))
    return [r for r in rows if r.id not in ends], len(ends)
