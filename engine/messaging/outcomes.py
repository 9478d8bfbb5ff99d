"""Recording what the providers did: each outcome written under the claim that sent the
message, with its activity, in one transaction per provider request."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, case, literal, select

from engine import credits
from engine.bulk import BulkUpdate
from engine.channels.base import Outcome
from engine.config import Settings
from engine.db import write_transaction
from engine.feedback.refusals import Refusal
from engine.feedback.refusals import apply as apply_refusals
from engine.messaging.claims import LEASED, Claim
from engine.metrics import SEND_FAILURES, SENDS
from engine.models import Activity, Message
from engine.models.base import utcnow
from engine.rendering import SUPPRESSED, Prepared
from engine.sql import among, insert_new, json_object_no_nulls, skipping_duplicates

log = logging.getLogger("nudgeflow.outbox")
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
    deferred: int = 0  # due inside their quiet hours: back in the queue until they end

    def add(self, other: DispatchStats) -> None:
        for name in ("claimed", "sent", "retried", "failed", "held", "cancelled", "released",
                     "deferred"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def backoff(attempts: int, base: timedelta = timedelta(minutes=1)) -> timedelta:
    """The wait before attempt `attempts + 1`: base, 2 x base, 4 x base ... at most 6 hours."""
    return min(base * 2 ** min(max(attempts - 1, 0), 32), MAX_BACKOFF)


# What the dispatcher reads of a claimed message (the JSON document as text: json_text).
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


_DONE = {"lease_until": None, "claim_token": None}
_ATTEMPT = {**_DONE, "attempts": Message.attempts + 1}
MARK_SENT = BulkUpdate(Message.__table__, LEASED, {**_ATTEMPT, "status": "sent", "last_error": None},
                       ("provider_id", "sent_at", "subject", "body", "sms_encoding", "sms_parts"),
                       match=("claim_token",))
MARK_RETRY = BulkUpdate(Message.__table__, LEASED, {**_ATTEMPT, "status": "queued"},
                        ("send_after", "last_error"), match=("claim_token",))
MARK_FAILED = BulkUpdate(Message.__table__, LEASED, {**_ATTEMPT, "status": "failed"},
                         ("last_error",), match=("claim_token",))
MARK_CANCELLED = BulkUpdate(Message.__table__, LEASED, {**_DONE, "status": "cancelled"},
                            ("last_error",), match=("claim_token",))


def record(engine: Engine, settings: Settings, batch: Batch, items: list[Prepared],
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
    refused: dict[int, Refusal] = {}
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
            if o.refusal is not None:
                refused[row.id] = Refusal(row.customer_id, row.id, row.channel, row.address,
                                          o.refusal, o.error or "")
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
        if refusals := [r for i, r in refused.items() if i in done["failed"]]:
            apply_refusals(conn, refusals, now)
    batch.recorded.update(p.row.id for p in items)
    lost = len(items) - len(mine)
    if lost:
        log.warning("claim %s: %d outcome(s) not written, the lease was taken over", token, lost)
    batch.stats.sent += len(done["sent"])
    batch.stats.retried += len(done["retry"])
    batch.stats.failed += len(done["failed"])
    batch.stats.cancelled += len(done["cancelled"])
    _count(done, channel_of)


def _count(done: Mapping[str, list[int]], channel_of: Mapping[int, str]) -> None:
    """This process's counters: one increment per channel per provider request."""
    for name, counter in (("sent", SENDS), ("retry", SEND_FAILURES), ("failed", SEND_FAILURES)):
        if done[name]:
            for channel, n in Counter(channel_of[i] for i in done[name]).items():
                counter.labels(channel).inc(n)


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
