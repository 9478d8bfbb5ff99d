"""Claims on batches of due messages: leased under a token, renewed by a heartbeat.

A claim leases a batch (status `sending`, `lease_until`, and a `claim_token` naming the
claim); on PostgreSQL with `FOR UPDATE SKIP LOCKED`, on SQLite under BEGIN IMMEDIATE, so
concurrent dispatchers take disjoint batches. While a batch is worked on, a heartbeat renews
its lease (NUDGEFLOW_DISPATCH_LEASE_SECONDS, every third of it); a dispatcher that crashed
stops renewing, and its batch is taken over, under a new token, once the lease runs out.
Outcomes are written under the token (engine.messaging.outcomes), so a dispatcher that lost its
lease writes nothing.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Select, Text, and_, any_, cast, func, select, update
from sqlalchemy.sql.expression import ColumnElement

from engine.config import Settings
from engine.db import write_transaction
from engine.messaging.caps import CapRules, admit
from engine.models import Message
from engine.sql import among

log = logging.getLogger("nudgeflow.outbox")
LEASE = timedelta(seconds=Settings.dispatch_lease_seconds)
LEASED = Message.status == "sending"

CLAIMED = tuple(cast(c, Text).label(c.name) if c.name == "inline_template" else c
                for c in Message.__table__.c
                if c.name in ("id", "customer_id", "campaign_id", "node_id", "occurrence",
                              "run_id", "template_id", "invoice_id", "channel", "address",
                              "attempts", "inline_template", "sender", "reply_to"))


@dataclass(frozen=True)
class Claim:
    """A claimed batch: its messages, the token that fences their outcomes, and the time of
    the claim (`now` as the caller gave it, with the monotonic clock it started on)."""

    token: str
    now: datetime
    rows: list[Any]
    started: float = field(default_factory=time.monotonic)

    def clock(self) -> datetime:
        """The claim's clock advanced by the time since it was made."""
        return self.now + timedelta(seconds=time.monotonic() - self.started)


def claim(engine: Engine, now: datetime, limit: int, lease: timedelta = LEASE,
          caps: CapRules | None = None) -> Claim:
    """Lease up to `limit` messages under a new token: first those whose lease ran out (a
    crashed dispatcher's), then due ones by (send_after, id), each read in index order so a
    claim costs the same for a queue of any length. Each is one UPDATE ... RETURNING; rows
    come back by id. With frequency caps, due messages over a cap are skipped or delayed
    instead, in the same transaction (engine.messaging.caps)."""
    token = uuid.uuid4().hex
    started = time.monotonic()
    with write_transaction(engine) as conn:
        expired = (select(Message.id).where(Message.status == "sending", Message.lease_until < now)
                   .order_by(Message.id))
        due = (select(Message.id).where(Message.status == "queued", Message.send_after <= now)
               .order_by(Message.send_after, Message.id))
        rows = _lease(conn, expired.limit(limit), now + lease, token)
        while len(rows) < limit and caps:  # until full, or no more are due
            wanted = limit - len(rows)
            picked, admitted = admit(conn, due.limit(wanted), caps, now)
            rows += _lease_ids(conn, admitted, now + lease, token)
            if picked < wanted:
                break
        if len(rows) < limit and not caps:
            rows += _lease(conn, due.limit(limit - len(rows)), now + lease, token)
    return Claim(token, now, sorted(rows, key=lambda r: r.id), started)


def _lease(conn: Connection, which: Select[Any], until: datetime, token: str) -> list[Any]:
    taken: ColumnElement[bool] = Message.id.in_(which.scalar_subquery())
    if conn.dialect.name == "postgresql":
        # `= ANY(ARRAY(...))`: the batch is picked once, then its rows updated by primary key;
        # with `IN (...)` PostgreSQL may hash-join against a scan of the whole table.
        taken = Message.id == any_(func.array(
            which.with_for_update(skip_locked=True).scalar_subquery()))
    return list(conn.execute(
        update(Message).where(taken)
        .values(status="sending", lease_until=until, claim_token=token)
        .returning(*CLAIMED)))


def _lease_ids(conn: Connection, ids: list[int], until: datetime, token: str) -> list[Any]:
    if not ids:
        return []
    return list(conn.execute(
        update(Message).where(among(conn, Message.id, ids))
        .values(status="sending", lease_until=until, claim_token=token)
        .returning(*CLAIMED)))


class Heartbeat:
    """Renews the leases of the claims this dispatcher is working on, every third of the
    lease, on a thread of its own; and says whether a claim's lease is still safely ahead.

    A claim is safe while the lease it last renewed has more than half of its length to run:
    a dispatcher whose renewals fail (the database is gone) stops starting requests well before
    another dispatcher may take its messages over."""

    def __init__(self, engine: Engine, lease: timedelta) -> None:
        self.engine, self.lease = engine, lease
        self._held: dict[str, tuple[Claim, float]] = {}  # token -> (claim, lease ends, monotonic)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nudgeflow-heartbeat",
                                        daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def hold(self, claim: Claim) -> None:
        with self._lock:
            self._held[claim.token] = (claim, claim.started + self.lease.total_seconds())

    def release(self, claim: Claim) -> None:
        with self._lock:
            self._held.pop(claim.token, None)

    def safe(self, claim: Claim) -> bool:
        with self._lock:
            held = self._held.get(claim.token)
        return held is not None and held[1] - time.monotonic() > self.lease.total_seconds() / 2

    def renew(self) -> None:
        """Move each held claim's lease a full lease ahead (only its messages still leased
        under its token)."""
        with self._lock:
            claims = [c for c, _ in self._held.values()]
        if not claims:
            return
        started = time.monotonic()
        with write_transaction(self.engine) as conn:
            for c in claims:
                mine = and_(Message.claim_token == c.token, LEASED)
                if conn.dialect.name == "postgresql":
                    # Rows an outcome is being written to are skipped, not waited for: they
                    # leave the lease as it commits, and waiting (in another order than the
                    # outcome's UPDATE locks them) deadlocked the two. Should that write roll
                    # back, the next beat, a third of a lease on, renews them. (The ids first:
                    # as a subquery of the UPDATE, the locking SELECT ran once per row.)
                    ids = list(conn.execute(select(Message.id).where(mine)
                                            .with_for_update(skip_locked=True)).scalars())
                    mine = Message.id.in_(ids)
                conn.execute(update(Message).where(mine)
                             .values(lease_until=c.clock() + self.lease))
        with self._lock:
            for c in claims:
                if c.token in self._held:
                    self._held[c.token] = (c, started + self.lease.total_seconds())

    def _run(self) -> None:
        while not self._stop.wait(self.lease.total_seconds() / 3):
            try:
                self.renew()
            except Exception:  # the next beat tries again; `safe` stops sending meanwhile
                log.exception("could not renew the dispatcher's leases")
