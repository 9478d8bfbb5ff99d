"""The dispatcher: claims due messages in batches, renders them, takes credit, sends through
the channel's provider and records each provider request's outcome with its activity.

Claims. A claim leases a batch (status `sending`, `lease_until`, and a `claim_token` naming the
claim); on PostgreSQL with `FOR UPDATE SKIP LOCKED`, on SQLite under BEGIN IMMEDIATE, so
concurrent dispatchers take disjoint batches. While a batch is worked on, a heartbeat renews
its lease (NUDGEFLOW_DISPATCH_LEASE_SECONDS, renewed every third of it); a dispatcher that
crashed stops renewing, and its batch is taken over, under a new token, once the lease runs
out. Every outcome is written only under the token that sent the message, so a dispatcher that
lost its lease writes nothing, and it starts no request unless its lease is safely ahead.

Exactly once. Each provider request's outcomes are recorded as soon as its answer arrives,
before the next request starts, and a message recorded `sent` is never claimed again. The one
ambiguous case is a request that was open when its dispatcher died (or timed out, or got a
garbled answer): the provider may have accepted it, and the message is sent again when its
lease is taken over (or retried). Our message id travels in SendGrid's custom_args
(`nudgeflow_message_id`) so such a duplicate can be traced. An attempt cut short by a crash does
not count: attempts are counted when an outcome is recorded.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Generator, Iterator, Mapping
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
LEASE = timedelta(seconds=Settings.dispatch_lease_seconds)
MAX_BACKOFF = timedelta(hours=6)


@dataclass
class DispatchStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    held: int = 0
    cancelled: int = 0
    released: int = 0  # left unsent, for another claim, when a lease could not be kept

    def add(self, other: DispatchStats) -> None:
        for name in ("claimed", "sent", "retried", "failed", "held", "cancelled", "released"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def backoff(attempts: int, base: timedelta = timedelta(minutes=1)) -> timedelta:
    """The wait before attempt `attempts + 1`: base, 2 x base, 4 x base ... at most 6 hours."""
    return min(base * 2 ** min(max(attempts - 1, 0), 32), MAX_BACKOFF)


# What the dispatcher reads of a claimed message (the JSON document as text: json_text).
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


def claim(engine: Engine, now: datetime, limit: int, lease: timedelta = LEASE) -> Claim:
    """Lease up to `limit` messages under a new token: first those whose lease ran out (a
    crashed dispatcher's), then due ones by (send_after, id), each read in index order so a
    claim costs the same for a queue of any length. Each is one UPDATE ... RETURNING; rows
    come back by id."""
    token = uuid.uuid4().hex
    started = time.monotonic()
    with write_transaction(engine) as conn:
        expired = (select(Message.id).where(Message.status == "sending", Message.lease_until < now)
                   .order_by(Message.id))
        due = (select(Message.id).where(Message.status == "queued", Message.send_after <= now)
               .order_by(Message.send_after, Message.id))
        rows = _lease(conn, expired.limit(limit), now + lease, token)
        if len(rows) < limit:
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
                conn.execute(update(Message)
                             .where(Message.claim_token == c.token, _LEASED)
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


@dataclass
class Batch:
    """A claimed batch on its way: rendered, credit taken, waiting for its outcomes."""

    claim: Claim
    fixed_now: bool
    stats: DispatchStats
    items: list[Prepared] = field(default_factory=list)
    sendable: list[Prepared] = field(default_factory=list)
    metered: set[str] = field(default_factory=set)
    recorded: set[int] = field(default_factory=set)  # ids whose outcome was written (or fenced)

    def now(self) -> datetime:
        """When an outcome happened: the caller's `now` if it gave one, else the clock."""
        return self.claim.now if self.fixed_now else utcnow()


def _take(engine: Engine, settings: Settings, now: datetime | None, limit: int,
          heartbeat: Heartbeat) -> Batch:
    """Claim a batch, load and render it, take credit."""
    claimed = claim(engine, now or utcnow(), limit,
                    timedelta(seconds=settings.dispatch_lease_seconds))
    heartbeat.hold(claimed)
    batch = Batch(claimed, now is not None, DispatchStats(claimed=len(claimed.rows)))
    if not claimed.rows:
        heartbeat.release(claimed)
        return batch
    with engine.connect() as conn:
        rows, needs = load_batch(conn, claimed.rows)
        # Aggregates and awards are read only when a template of the batch uses them.
        customers = {r.customer_id for r in rows}
        today = claimed.now.date()
        figures: Mapping[int, dict[str, Any]] = (
            customer_figures(conn, customers, today)
            if any(n.figures for n in needs) else {cid: {} for cid in customers})
        awarded = bonuses(conn, rows) if any("bonus" in n.variables for n in needs) else {}
        batch.metered = {ch for ch, balance in credits.balances(conn).items()
                         if balance is not None}
        consent = workspace_settings(conn)["consent_mode"] != "ignore"
    batch.items = prepare(rows, figures, awarded, settings, claimed.now, consent)
    batch.sendable = _take_credit(engine, batch)
    return batch


def _deliver(engine: Engine, settings: Settings, channels: Mapping[str, Channel],
             batch: Batch, heartbeat: Heartbeat) -> DispatchStats:
    """Hand a batch to the providers and record each request's outcomes as its answer arrives
    (on a sender thread). Messages that need no provider (unrenderable, suppressed) are
    recorded first. No request starts unless the batch's lease is safe; what is left unsent
    then stays leased for another claim, its credit given back."""
    try:
        _record(engine, settings, batch, [p for p in batch.items
                                          if p.error is not None or p.cancelled is not None], {})
        for channel in ("email", "sms"):
            mine = [p for p in batch.sendable if p.row.channel == channel]
            provider = channels[channel]
            for start in range(0, len(mine), provider.max_batch):
                if not _send(engine, settings, provider, batch, heartbeat,
                             mine[start:start + provider.max_batch]):
                    _release(engine, batch, [p for p in batch.sendable
                                             if p.row.id not in batch.recorded])
                    return batch.stats
    finally:
        heartbeat.release(batch.claim)
    return batch.stats


def _send(engine: Engine, settings: Settings, provider: Channel, batch: Batch,
          heartbeat: Heartbeat, chunk: list[Prepared]) -> bool:
    """Send one provider call's worth, recording each request's answer before the next request
    starts; False when the lease was no longer safe and the rest was left unsent."""
    outgoing = [p.outgoing for p in chunk if p.outgoing is not None]
    by_id = {p.row.id: p for p in chunk}
    answered: set[int] = set()
    requests: Generator[list[Outcome], None, None] | None = None
    try:
        while True:
            if not heartbeat.safe(batch.claim):
                log.warning("lease of claim %s no longer safe: %d message(s) left for another "
                            "claim", batch.claim.token, len(outgoing) - len(answered))
                return False
            try:
                requests = requests or provider.send(outgoing)
                outcomes = next(requests)
            except StopIteration:
                break
            except Exception as exc:  # a provider breaking its contract: retry the rest
                log.exception("provider %s raised", type(provider).__name__)
                outcomes = [Outcome(o.message_id, "retry", error=f"provider error: {exc!r}"[:500])
                            for o in outgoing if o.message_id not in answered]
                requests = None
            outcomes = [o for o in outcomes if o.message_id in by_id
                        and o.message_id not in answered]
            answered.update(o.message_id for o in outcomes)
            _record(engine, settings, batch, [by_id[o.message_id] for o in outcomes],
                    {o.message_id: o for o in outcomes})
            if requests is None:
                break
    finally:
        if requests is not None:
            requests.close()
    unanswered = [o for o in outgoing if o.message_id not in answered]
    if unanswered:  # a provider that did not answer for some: try them again later
        _record(engine, settings, batch, [by_id[o.message_id] for o in unanswered],
                {o.message_id: Outcome(o.message_id, "retry", error="no answer from the provider")
                 for o in unanswered})
    return True


def _take_credit(engine: Engine, batch: Batch) -> list[Prepared]:
    """Take credit for each renderable message; those without credit wait as `held`.

    `batch.metered` are the channels that had a meter when the batch was loaded: a batch with
    none of them takes no write lock here (a meter created while it is on its way starts
    counting with the next batch)."""
    ready = [p for p in batch.items if p.error is None and p.cancelled is None]
    if not batch.metered & {p.row.channel for p in ready}:
        return ready
    held = []
    with write_transaction(engine) as conn:
        for channel in ("email", "sms"):
            mine = [p for p in ready if p.row.channel == channel]
            granted = credits.take(conn, channel, [p.units for p in mine]) if mine else []
            held += [p.row.id for p, ok in zip(mine, granted, strict=True) if not ok]
        if held:
            conn.execute(update(Message).where(Message.id.in_(held), _LEASED,
                                               Message.claim_token == batch.claim.token)
                         .values(status="held", lease_until=None, claim_token=None))
    batch.stats.held += len(held)
    waiting = set(held)
    return [p for p in ready if p.row.id not in waiting]


def _release(engine: Engine, batch: Batch, unsent: list[Prepared]) -> None:
    """Give back the credit of messages left unsent when the lease was no longer safe; the
    messages themselves stay leased, for whoever claims them when the lease runs out."""
    batch.stats.released += len(unsent)
    refunds: Counter[str] = Counter()
    for p in unsent:
        if p.row.channel in batch.metered:
            refunds[p.row.channel] += p.units
    if refunds:
        with write_transaction(engine) as conn:
            for channel, units in refunds.items():
                credits.give_back(conn, channel, units)


_LEASED = Message.status == "sending"
_DONE = {"lease_until": None, "claim_token": None}
_ATTEMPT = {**_DONE, "attempts": Message.attempts + 1}
MARK_SENT = BulkUpdate(Message.__table__, _LEASED, {**_ATTEMPT, "status": "sent", "last_error": None},
                       ("provider_id", "sent_at", "subject", "body", "sms_encoding", "sms_parts"),
                       match=("claim_token",))
MARK_RETRY = BulkUpdate(Message.__table__, _LEASED, {**_ATTEMPT, "status": "queued"},
                        ("send_after", "last_error"), match=("claim_token",))
MARK_FAILED = BulkUpdate(Message.__table__, _LEASED, {**_ATTEMPT, "status": "failed"},
                         ("last_error",), match=("claim_token",))
MARK_CANCELLED = BulkUpdate(Message.__table__, _LEASED, {**_DONE, "status": "cancelled"},
                            ("last_error",), match=("claim_token",))


def _record(engine: Engine, settings: Settings, batch: Batch, items: list[Prepared],
            outcomes: Mapping[int, Outcome]) -> None:
    """Write the outcomes of some of a batch's messages in one transaction: a bulk update per
    outcome (engine.bulk) fenced by the batch's claim token, the `message_sent` activities in
    one INSERT ... SELECT from the rows just marked sent, and the other activities of the rows
    this claim still held. Credit is given back for what did not go out."""
    if not items:
        return
    now = batch.now()
    token = batch.claim.token
    base = timedelta(seconds=settings.retry_backoff_seconds)
    sent: list[dict[str, Any]] = []
    retry: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    cancelled: list[dict[str, Any]] = []
    refunds: Counter[str] = Counter()
    refunded: dict[int, int] = {}
    channel_of = {p.row.id: p.row.channel for p in items}
    activities: dict[int, dict[str, Any]] = {}
    for p in items:
        row = p.row
        attempt = row.attempts + 1
        if p.cancelled is not None:
            why = SUPPRESSED[p.cancelled].format(channel=row.channel)
            cancelled.append({"id": row.id, "claim_token": token,
                              "last_error": f"not sent: {why}"})
            activities[row.id] = _activity(row, "message_cancelled",
                                           f"Message to {row.address} cancelled: {why}", now,
                                           {"reason": p.cancelled})
            continue
        o = outcomes.get(row.id) or Outcome(row.id, "failed", error=p.error)
        status = o.status
        if status == "retry" and attempt >= settings.max_attempts:
            status = "failed"
        if status != "sent" and p.error is None and row.channel in batch.metered:
            refunds[row.channel] += p.units
            refunded[row.id] = p.units
        if status == "sent":
            out = p.outgoing
            assert out is not None
            sent.append({"id": row.id, "claim_token": token, "provider_id": o.provider_id,
                         "sent_at": now, "subject": out.subject, "body": out.body,
                         "sms_encoding": p.encoding,
                         "sms_parts": p.units if row.channel == "sms" else None})
        elif status == "retry":
            retry.append({"id": row.id, "claim_token": token,
                          "send_after": now + backoff(attempt, base), "last_error": o.error})
        else:
            failed.append({"id": row.id, "claim_token": token, "last_error": o.error})
            activities[row.id] = _activity(row, "message_failed",
                                           f"Message to {row.address} failed: {o.error}", now,
                                           {"error": o.error, "attempts": attempt})
    with write_transaction(engine) as conn:
        done = {name: stmt.run(conn, rows) for name, stmt, rows in (
            ("sent", MARK_SENT, sent), ("retry", MARK_RETRY, retry),
            ("failed", MARK_FAILED, failed), ("cancelled", MARK_CANCELLED, cancelled))}
        mine = {i for ids in done.values() for i in ids}
        # What another claim holds now is not ours to refund or to log.
        for channel, units in refunds.items():
            units = sum(refunded.get(i, 0) for i in mine if channel_of[i] == channel)
            if units:
                credits.give_back(conn, channel, units)
        if done["sent"]:
            _sent_activities(conn, done["sent"], now)
        logged = [a for i, a in activities.items() if i in mine]
        if logged:
            conn.execute(skipping_duplicates(conn, Activity.__table__), logged)
    batch.recorded.update(p.row.id for p in items)
    lost = len(items) - len(mine)
    if lost:
        log.warning("claim %s: %d outcome(s) not written, the lease was taken over", token, lost)
    batch.stats.sent += len(done["sent"])
    batch.stats.retried += len(done["retry"])
    batch.stats.failed += len(done["failed"])
    batch.stats.cancelled += len(done["cancelled"])


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
    on a sender thread that sends it request by request, recording each request's outcomes on
    its own connection as its answer arrives. So a provider's latency (the largest cost against
    a real API) and the database's work overlap the rendering of the next batch. A batch's
    messages stay leased, renewed by the heartbeat, until their outcomes are recorded."""
    in_flight = in_flight or settings.dispatch_in_flight
    total = DispatchStats()
    pending: deque[Future[DispatchStats]] = deque()
    lease = timedelta(seconds=settings.dispatch_lease_seconds)
    with (Heartbeat(engine, lease) as heartbeat,
          ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="nudgeflow-send") as pool,
          _collecting_between_batches() as collect):
        try:
            while True:
                collect()
                batch = _take(engine, settings, now, batch_size, heartbeat)
                drained = batch.stats.claimed < batch_size
                if batch.items:
                    pending.append(pool.submit(_deliver, engine, settings, channels, batch,
                                               heartbeat))
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
