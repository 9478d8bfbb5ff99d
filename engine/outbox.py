"""The dispatcher: claims due messages in batches, renders them, takes credit, sends through
the channel's provider and records the outcome with its activity.

Claiming: on PostgreSQL `FOR UPDATE SKIP LOCKED` plus a lease (status `sending`,
`lease_until`), so concurrent dispatchers take disjoint batches and a crashed dispatcher's batch
is taken over when its lease runs out; on SQLite the claim runs under BEGIN IMMEDIATE, one writer.

Exactly once: a message recorded `sent` is never claimed again. The one ambiguous case is a
provider that accepted a message whose response was lost (crash or timeout after the provider
acted, before we recorded it): the lease runs out and the message is sent again. Our message id
travels in SendGrid's custom_args (`nudgeflow_message_id`) so such a duplicate can be traced.
"""

from __future__ import annotations

import gc
import logging
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Select,
    Text,
    any_,
    case,
    cast,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.sql.expression import ColumnElement

from engine import credits
from engine.bulk import BulkUpdate
from engine.channels.base import Channel, Outcome
from engine.config import Settings
from engine.db import write_transaction
from engine.message_context import (
    bonuses,
    customer_figures,
    load_batch,
)
from engine.models import Activity, Message
from engine.models.base import utcnow
from engine.rendering import SUPPRESSED, Prepared, prepare
from engine.sql import among, insert_new, json_object_no_nulls, skipping_duplicates
from engine.workspace import workspace_settings

log = logging.getLogger("nudgeflow.outbox")
LEASE = timedelta(minutes=5)
BACKOFF = timedelta(minutes=1)
MAX_BACKOFF = timedelta(hours=6)


@dataclass
class DispatchStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    held: int = 0
    cancelled: int = 0

    def add(self, other: DispatchStats) -> None:
        for name in ("claimed", "sent", "retried", "failed", "held", "cancelled"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def backoff(attempts: int) -> timedelta:
    return min(BACKOFF * 2 ** max(attempts - 1, 0), MAX_BACKOFF)


# What the dispatcher reads of a claimed message (the JSON document as text: json_text).
CLAIMED = tuple(cast(c, Text).label(c.name) if c.name == "inline_template" else c
                for c in Message.__table__.c
                if c.name in ("id", "customer_id", "campaign_id", "node_id", "occurrence",
                              "run_id", "template_id", "invoice_id", "channel", "address",
                              "attempts", "inline_template", "sender", "reply_to"))


def claim(engine: Engine, now: datetime, limit: int) -> list[Any]:
    """Lease up to `limit` messages and return them by id: first those whose lease ran out (a
    crashed dispatcher's), then due ones by (send_after, id), each read in index order so a
    claim costs the same for a queue of any length. Each is one UPDATE ... RETURNING."""
    with write_transaction(engine) as conn:
        expired = (select(Message.id).where(Message.status == "sending", Message.lease_until < now)
                   .order_by(Message.id))
        due = (select(Message.id).where(Message.status == "queued", Message.send_after <= now)
               .order_by(Message.send_after, Message.id))
        rows = _lease(conn, expired.limit(limit), now)
        if len(rows) < limit:
            rows += _lease(conn, due.limit(limit - len(rows)), now)
    return sorted(rows, key=lambda r: r.id)


def _lease(conn: Connection, which: Select[Any], now: datetime) -> list[Any]:
    taken: ColumnElement[bool] = Message.id.in_(which.scalar_subquery())
    if conn.dialect.name == "postgresql":
        # `= ANY(ARRAY(...))`: the batch is picked once, then its rows updated by primary key;
        # with `IN (...)` PostgreSQL may hash-join against a scan of the whole table.
        taken = Message.id == any_(func.array(
            which.with_for_update(skip_locked=True).scalar_subquery()))
    return list(conn.execute(
        update(Message).where(taken)
        .values(status="sending", lease_until=now + LEASE, attempts=Message.attempts + 1)
        .returning(*CLAIMED)))


@dataclass
class Batch:
    """A claimed batch on its way: rendered, credit taken, waiting for its outcomes."""

    now: datetime
    stats: DispatchStats
    items: list[Prepared] = field(default_factory=list)
    sendable: list[Prepared] = field(default_factory=list)


def _take(engine: Engine, settings: Settings, now: datetime | None, limit: int) -> Batch:
    """Claim a batch, load and render it, take credit."""
    batch = Batch(now or utcnow(), DispatchStats())
    claimed = claim(engine, batch.now, limit)
    batch.stats.claimed = len(claimed)
    if not claimed:
        return batch
    with engine.connect() as conn:
        rows, needs = load_batch(conn, claimed)
        # Aggregates and awards are read only when a template of the batch uses them.
        customers = {r.customer_id for r in rows}
        figures: Mapping[int, dict[str, Any]] = (
            customer_figures(conn, customers, batch.now.date())
            if any(n.figures for n in needs) else {cid: {} for cid in customers})
        awarded = bonuses(conn, rows) if any("bonus" in n.variables for n in needs) else {}
        metered = {ch for ch, balance in credits.balances(conn).items() if balance is not None}
        consent = workspace_settings(conn)["consent_mode"] != "ignore"
    batch.items = prepare(rows, figures, awarded, settings, batch.now, consent)
    batch.sendable = _take_credit(engine, batch.items, metered, batch.stats)
    return batch


def _deliver(engine: Engine, settings: Settings, channels: Mapping[str, Channel],
             batch: Batch) -> DispatchStats:
    """Hand a batch to the providers and record what they answered (on a sender thread)."""
    outcomes: dict[int, Outcome] = {}
    for channel in ("email", "sms"):
        messages = [p.outgoing for p in batch.sendable
                    if p.outgoing and p.outgoing.channel == channel]
        provider = channels[channel]
        for start in range(0, len(messages), provider.max_batch):
            for o in provider.send(messages[start:start + provider.max_batch]):
                outcomes[o.message_id] = o
    for p in batch.items:
        if p.error is not None:
            outcomes[p.row.id] = Outcome(p.row.id, "failed", error=p.error)
    _record(engine, [p for p in batch.items if p.row.id in outcomes or p.cancelled], outcomes,
            settings, batch.now, batch.stats)
    return batch.stats


def _take_credit(engine: Engine, items: list[Prepared], metered: set[str],
                 stats: DispatchStats) -> list[Prepared]:
    """Take credit for each renderable message; those without credit wait as `held`.

    `metered` are the channels that had a meter when the batch was loaded: a batch with none
    of them takes no write lock here (a meter created while it is on its way starts counting
    with the next batch)."""
    ready = [p for p in items if p.error is None and p.cancelled is None]
    if not metered & {p.row.channel for p in ready}:
        return ready
    held = []
    with write_transaction(engine) as conn:
        for channel in ("email", "sms"):
            mine = [p for p in ready if p.row.channel == channel]
            granted = credits.take(conn, channel, [p.units for p in mine]) if mine else []
            held += [p.row.id for p, ok in zip(mine, granted, strict=True) if not ok]
        if held:
            conn.execute(update(Message).where(Message.id.in_(held), Message.status == "sending")
                         .values(status="held", lease_until=None,
                                 attempts=Message.attempts - 1))
    stats.held += len(held)
    waiting = set(held)
    return [p for p in ready if p.row.id not in waiting]


_LEASED = Message.status == "sending"
MARK_SENT = BulkUpdate(Message.__table__, _LEASED,
                       {"status": "sent", "lease_until": None, "last_error": None},
                       ("provider_id", "sent_at", "subject", "body", "sms_encoding", "sms_parts"))
MARK_RETRY = BulkUpdate(Message.__table__, _LEASED, {"status": "queued", "lease_until": None},
                        ("send_after", "last_error"))
MARK_FAILED = BulkUpdate(Message.__table__, _LEASED, {"status": "failed", "lease_until": None},
                         ("last_error",))
MARK_CANCELLED = BulkUpdate(Message.__table__, _LEASED,
                            {"status": "cancelled", "lease_until": None}, ("last_error",))
def _record(engine: Engine, items: list[Prepared], outcomes: Mapping[int, Outcome],
            settings: Settings, now: datetime, stats: DispatchStats) -> None:
    """Write every outcome of a batch: a bulk update per outcome (engine.bulk), the
    `message_sent` activities in one INSERT ... SELECT from the rows just marked sent, and the
    (rare) `message_failed` activities."""
    sent: list[dict[str, Any]] = []
    retry: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    cancelled: list[dict[str, Any]] = []
    refunds: Counter[str] = Counter()
    activities = []
    for p in items:
        row = p.row
        if p.cancelled is not None:
            why = SUPPRESSED[p.cancelled].format(channel=row.channel)
            cancelled.append({"id": row.id, "last_error": f"not sent: {why}"})
            activities.append(_activity(row, "message_cancelled",
                                        f"Message to {row.address} cancelled: {why}", now,
                                        {"reason": p.cancelled}))
            continue
        o = outcomes[row.id]
        status = o.status
        if status == "retry" and row.attempts >= settings.max_attempts:
            status = "failed"
        if status != "sent" and p.error is None:
            refunds[row.channel] += p.units
        if status == "sent":
            out = p.outgoing
            assert out is not None
            sent.append({"id": row.id, "provider_id": o.provider_id, "sent_at": now,
                         "subject": out.subject, "body": out.body, "sms_encoding": p.encoding,
                         "sms_parts": p.units if row.channel == "sms" else None})
        elif status == "retry":
            retry.append({"id": row.id, "send_after": now + backoff(row.attempts),
                          "last_error": o.error})
        else:
            failed.append({"id": row.id, "last_error": o.error})
            activities.append(_activity(row, "message_failed",
                                        f"Message to {row.address} failed: {o.error}", now,
                                        {"error": o.error, "attempts": row.attempts}))
    with write_transaction(engine) as conn:
        for stmt, rows in ((MARK_SENT, sent), (MARK_RETRY, retry), (MARK_FAILED, failed),
                           (MARK_CANCELLED, cancelled)):
            stmt.run(conn, rows)
        for channel, units in refunds.items():
            credits.give_back(conn, channel, units)
        if sent:
            _sent_activities(conn, [r["id"] for r in sent], now)
        if activities:
            conn.execute(skipping_duplicates(conn, Activity.__table__), activities)
    stats.sent += len(sent)
    stats.retried += len(retry)
    stats.failed += len(failed)
    stats.cancelled += len(cancelled)


def _sent_activities(conn: Connection, ids: list[int], now: datetime) -> None:
    m = Message.__table__.c
    what = case((m.channel == "email", "Email"), else_="SMS")
    insert_new(conn, Activity.__table__, select(  # type: ignore[arg-type]
        m.customer_id, literal(now, DateTime).label("at"), literal("message_sent").label("kind"),
        m.campaign_id, m.node_id, m.occurrence, m.run_id, m.id.label("message_id"),
        (what + " sent to " + m.address).label("summary"),
        json_object_no_nulls(conn, provider_id=m.provider_id, attempts=m.attempts,
                             subject=m.subject, sms_parts=m.sms_parts).label("details"),
    ).where(among(conn, m.id, ids), m.status == "sent"))


def _activity(row: Any, kind: str, summary: str, now: datetime,
              details: dict[str, Any]) -> dict[str, Any]:
    return {"customer_id": row.customer_id, "at": now, "kind": kind,
            "campaign_id": row.campaign_id, "node_id": row.node_id,
            "occurrence": row.occurrence, "run_id": row.run_id, "message_id": row.id,
            "summary": summary, "details": {k: v for k, v in details.items() if v is not None}}


@contextmanager
def _collecting_between_batches() -> Iterator[Any]:
    """Pause Python's cyclic garbage collector while batches are processed and collect the
    young generations once per batch instead.

    A batch allocates a few hundred thousand short-lived objects (rows, contexts, payloads),
    nearly all freed by reference counting. Left on, the collector runs hundreds of times per
    batch and now and then walks the whole heap: a third of the dispatcher's time. Collecting
    generations 0 and 1 after each batch still frees any cycle a batch left, so memory stays
    bounded by a batch; the full collections resume when dispatch returns."""
    if not gc.isenabled():
        yield lambda: None
        return
    gc.disable()
    try:
        yield lambda: gc.collect(1)
    finally:
        gc.enable()


def dispatch(engine: Engine, settings: Settings, channels: Mapping[str, Channel],
             now: datetime | None = None, batch_size: int = 1000,
             in_flight: int | None = None) -> DispatchStats:
    """Dispatch batches until nothing is due.

    This thread claims, loads, renders and takes credit for one batch after another; up to
    `in_flight` batches (NUDGEFLOW_DISPATCH_IN_FLIGHT) are meanwhile with the providers, each
    on a sender thread that sends it and then records the outcomes on its own connection. So a
    provider's latency (the largest cost against a real API) and the database's work on one
    batch's outcomes overlap the rendering of the next. A batch's messages stay leased until
    its outcomes are recorded."""
    in_flight = in_flight or settings.dispatch_in_flight
    total = DispatchStats()
    pending: deque[Future[DispatchStats]] = deque()
    with (ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="nudgeflow-send") as pool,
          _collecting_between_batches() as collect):
        try:
            while True:
                collect()
                batch = _take(engine, settings, now, batch_size)
                drained = batch.stats.claimed < batch_size
                if batch.items:
                    pending.append(pool.submit(_deliver, engine, settings, channels, batch))
                else:
                    total.add(batch.stats)
                while pending and (drained or len(pending) >= in_flight):
                    total.add(pending.popleft().result())
                if drained:
                    return total
        except BaseException:
            # The other batches still finish (the pool waits for them): say if they fail too.
            for sending in pending:
                try:
                    sending.result()
                except Exception:
                    log.exception("a batch could not be sent or recorded")
            raise
