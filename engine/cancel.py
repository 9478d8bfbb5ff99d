"""The STOP button: cancel a campaign's messages that no dispatcher holds (queued and held),
each with an activity, in chunks, whatever their number."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, func, insert, literal, select, update

from engine.db import write_transaction
from engine.errors import NotFound
from engine.models import Activity, Campaign, Message
from engine.models.base import utcnow
from engine.sql import among

CHUNK = 10_000
WAITING = ("queued", "held")


@dataclass(frozen=True)
class Cancelled:
    """What a STOP did: messages cancelled, and those already with a dispatcher (`sending`),
    which end as the provider answers."""

    cancelled: int
    on_their_way: int


def cancel_messages(engine: Engine, key: str, run_id: int | None = None) -> Cancelled:
    """Cancel what has not gone out yet, CHUNK messages per transaction.

    Each chunk's UPDATE re-checks the status, so a message a dispatcher claimed meanwhile is
    left to it (its outcome will say what the provider did), and each cancelled message gets
    its `message_cancelled` activity in the same transaction."""
    with engine.connect() as conn:
        campaign_id = conn.execute(select(Campaign.id).where(Campaign.key == key)).scalar()
    if campaign_id is None:
        raise NotFound(f"no campaign {key!r}")
    mine = Message.campaign_id == campaign_id
    if run_id is not None:
        mine = and_(mine, Message.run_id == run_id)
    waiting = and_(mine, Message.status.in_(WAITING))
    total = 0
    after = 0
    while True:
        with write_transaction(engine) as conn:
            chunk = list(conn.execute(select(Message.id).where(waiting, Message.id > after)
                                      .order_by(Message.id).limit(CHUNK)).scalars())
            if not chunk:
                break
            after = chunk[-1]
            done = list(conn.execute(
                update(Message).where(among(conn, Message.id, chunk), Message.status.in_(WAITING))
                .values(status="cancelled", lease_until=None, claim_token=None,
                        last_error=f"not sent: campaign {key} stopped")
                .returning(Message.id)).scalars())
            if done:
                _log(conn, done, key)
            total += len(done)
    with engine.connect() as conn:
        sending = conn.execute(select(func.count()).select_from(Message)
                               .where(mine, Message.status == "sending")).scalar_one()
    return Cancelled(total, sending)


def _log(conn: Any, ids: list[int], key: str) -> None:
    conn.execute(insert(Activity).from_select(
        ["customer_id", "at", "kind", "campaign_id", "node_id", "occurrence", "run_id",
         "message_id", "summary", "details"],
        select(Message.customer_id, literal(utcnow()), literal("message_cancelled"),
               Message.campaign_id, Message.node_id, Message.occurrence, Message.run_id,
               Message.id, literal(f"Message cancelled (campaign {key} stopped)"),
               literal({"reason": "campaign_stopped"}, Activity.details.type))
        .where(among(conn, Message.id, ids))))
