"""The dispatcher: claims due messages in batches, renders them, takes credit, sends through
the channel's provider and records each provider request's outcome with its activity.

Claims (engine.messaging.claims) are leases under a token, renewed by a heartbeat while a batch
is worked on and taken over when a dispatcher died; outcomes (engine.messaging.outcomes) are
written only under the token that sent the message, and no request starts on a lease that is
not safely ahead. Frequency caps (engine.messaging.caps) are applied inside the claim: a due
message over a cap is skipped or delayed there, never leased.

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
import time
from collections import Counter, deque
from collections.abc import Generator, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, update

from engine import credits
from engine.channels.base import Channel, Outcome
from engine.config import Settings
from engine.db import write_transaction
from engine.message_context import bonuses, customer_figures, load_batch
from engine.messaging.caps import caps_of
from engine.messaging.claims import LEASED, Heartbeat, claim
from engine.messaging.node_configs import batch_campaigns
from engine.messaging.outcomes import Batch, DispatchStats, record
from engine.messaging.quiet import defer_quiet
from engine.messaging.tracking import tracking
from engine.metrics import PROVIDER_LATENCY
from engine.models import Message
from engine.models.base import utcnow
from engine.rendering import Prepared, prepare
from engine.workspace import workspace_settings

log = logging.getLogger("nudgeflow.outbox")


def _take(engine: Engine, settings: Settings, now: datetime | None, limit: int,
          heartbeat: Heartbeat) -> Batch:
    """Claim a batch, load and render it, take credit."""
    with engine.connect() as conn:
        workspace = workspace_settings(conn)
    claimed = claim(engine, now or utcnow(), limit,
                    timedelta(seconds=settings.dispatch_lease_seconds), caps_of(workspace))
    heartbeat.hold(claimed)
    batch = Batch(claimed, now is not None, DispatchStats(claimed=len(claimed.rows)))
    if not claimed.rows:
        heartbeat.release(claimed)
        return batch
    with engine.connect() as conn:
        campaigns = batch_campaigns(conn, claimed.rows)
    due, batch.stats.deferred = defer_quiet(engine, claimed, claimed.rows, campaigns, workspace)
    if not due:
        heartbeat.release(claimed)
        return batch
    with engine.connect() as conn:
        rows, needs = load_batch(conn, due)
        # Aggregates and awards are read only when a template of the batch uses them.
        customers = {r.customer_id for r in rows}
        today = claimed.now.date()
        figures: Mapping[int, dict[str, Any]] = (
            customer_figures(conn, customers, today)
            if any(n.figures for n in needs) else {cid: {} for cid in customers})
        awarded = bonuses(conn, rows) if any("bonus" in n.variables for n in needs) else {}
        batch.metered = {ch for ch, balance in credits.balances(conn).items()
                         if balance is not None}
        consent = workspace["consent_mode"] != "ignore"
    batch.items = prepare(rows, figures, awarded, settings, claimed.now, consent,
                          tracking(rows, campaigns.configs))
    batch.sendable = _take_credit(engine, batch)
    return batch


def _deliver(engine: Engine, settings: Settings, channels: Mapping[str, Channel],
             batch: Batch, heartbeat: Heartbeat) -> DispatchStats:
    """Hand a batch to the providers and record each request's outcomes as its answer arrives
    (on a sender thread). Messages that need no provider (unrenderable, suppressed) are
    recorded first. No request starts unless the batch's lease is safe; what is left unsent
    then stays leased for another claim, its credit given back."""
    try:
        record(engine, settings, batch, [p for p in batch.items
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
    latency = PROVIDER_LATENCY.labels(chunk[0].row.channel)  # _deliver sends no empty chunk
    requests: Generator[list[Outcome], None, None] | None = None
    try:
        while True:
            if not heartbeat.safe(batch.claim):
                log.warning("lease of claim %s no longer safe: %d message(s) left for another "
                            "claim", batch.claim.token, len(outgoing) - len(answered))
                return False
            started = time.perf_counter()
            try:
                requests = requests or provider.send(outgoing)
                outcomes = next(requests)
                latency.observe(time.perf_counter() - started)
            except StopIteration:
                break
            except Exception as exc:  # a provider breaking its contract: retry the rest
                latency.observe(time.perf_counter() - started)
                log.exception("provider %s raised", type(provider).__name__)
                outcomes = [Outcome(o.message_id, "retry", error=f"provider error: {exc!r}"[:500])
                            for o in outgoing if o.message_id not in answered]
                requests = None
            outcomes = [o for o in outcomes if o.message_id in by_id
                        and o.message_id not in answered]
            answered.update(o.message_id for o in outcomes)
            record(engine, settings, batch, [by_id[o.message_id] for o in outcomes],
                    {o.message_id: o for o in outcomes})
            if requests is None:
                break
    finally:
        if requests is not None:
            requests.close()
    unanswered = [o for o in outgoing if o.message_id not in answered]
    if unanswered:  # a provider that did not answer for some: try them again later
        record(engine, settings, batch, [by_id[o.message_id] for o in unanswered],
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
            conn.execute(update(Message).where(Message.id.in_(held), LEASED,
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
