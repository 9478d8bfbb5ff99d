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

import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jinja2 import TemplateError
from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    case,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from engine import credits, sms
from engine.channels.base import Channel, Outcome, Outgoing
from engine.config import Settings, secret_key
from engine.db import write_transaction
from engine.fastmany import BulkUpdate, FastMany
from engine.message_context import (
    FIGURES,
    Needs,
    bonuses,
    context,
    customer_figures,
    json_text,
    load_batch,
)
from engine.models import Activity, Message
from engine.models.base import utcnow
from engine.sql import among, insert_new, json_object_no_nulls
from engine.templates import is_html, references, render
from engine.unsubscribe import make_token

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

    def add(self, other: DispatchStats) -> None:
        for name in ("claimed", "sent", "retried", "failed", "held"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Prepared:
    row: Any
    outgoing: Outgoing | None = None
    units: int = 1
    encoding: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def backoff(attempts: int) -> timedelta:
    return min(BACKOFF * 2 ** max(attempts - 1, 0), MAX_BACKOFF)


def claim(engine: Engine, now: datetime, limit: int) -> list[int]:
    """Take up to `limit` messages and lease them: first those whose lease ran out (a crashed
    dispatcher's), then due ones by (send_after, id), each read in index order so a claim
    costs the same for a queue of any length."""
    with write_transaction(engine) as conn:
        expired = (select(Message.id).where(Message.status == "sending", Message.lease_until < now)
                   .order_by(Message.id).limit(limit))
        due = (select(Message.id).where(Message.status == "queued", Message.send_after <= now)
               .order_by(Message.send_after, Message.id))
        if conn.dialect.name == "postgresql":
            expired = expired.with_for_update(skip_locked=True)
            due = due.with_for_update(skip_locked=True)
        ids = list(conn.execute(expired).scalars())
        if len(ids) < limit:
            ids += conn.execute(due.limit(limit - len(ids))).scalars()
        if ids:
            conn.execute(update(Message).where(among(conn, Message.id, ids)).values(
                status="sending", lease_until=now + LEASE, attempts=Message.attempts + 1))
    return sorted(ids)


def _source(row: Any) -> tuple[str | None, str]:
    """The (subject, body) template of a message: its node's inline text or its template."""
    if row.inline_template:
        inline = json_text(row.inline_template)
        return inline.get("subject"), inline["body"]
    return row.t_subject, row.t_body


def prepare(rows: list[Any], figures: Mapping[int, dict[str, Any]],
            awarded: Mapping[tuple[int, int, str], dict[str, Any]], settings: Settings,
            now: datetime) -> list[Prepared]:
    """Render each message; a message that cannot be rendered fails with the reason.

    Each message's context holds only what its templates read, and a template that reads only
    `var.attr` values is rendered once per distinct set of those values in the batch."""
    secret = secret_key(settings)
    today = now.date()
    plans: dict[tuple[str | None, str], Needs] = {}
    rendered: dict[tuple[Any, ...], str] = {}
    index = {name: i for i, name in enumerate(rows[0]._fields)} if rows else {}
    out = []
    for row in rows:
        subject_source, body_source = sources = _source(row)
        needs = plans.get(sources) or plans.setdefault(sources, Needs.of(*sources))
        marketing_email = row.channel == "email" and row.campaign_purpose == "marketing"
        url = ""
        # Signing costs more than rendering: only for links a message can carry.
        if marketing_email or "unsubscribe_url" in needs.variables:
            token = make_token(secret, row.customer_id, row.channel, row.campaign_id)
            url = f"{settings.public_url}/u/{token}"
        ctx = context(row, _columns(row, index), needs,
                      figures.get(row.customer_id, {}),
                      awarded.get((row.campaign_id, row.customer_id, row.occurrence)), today, url)
        item = Prepared(row)
        try:
            html = row.channel == "email" and is_html(body_source)
            body = _render(body_source, ctx, html, needs, rendered)
            subject = _render(subject_source, ctx, False, needs, rendered) if subject_source \
                else None
            headers: dict[str, str] = {}
            if row.channel == "sms":
                text = sms.prepare(body, bool(row.t_transliterate))
                body, item.units, item.encoding = text.text, text.parts, text.encoding
            elif marketing_email:
                headers = {"List-Unsubscribe": f"<{url}>",
                           "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
            item.outgoing = Outgoing(row.id, row.channel, row.address, body, subject, html,
                                     row.sender, row.reply_to, headers)
        except (TemplateError, sms.SmsTooLong) as exc:
            item.error = f"cannot render: {exc}"
        out.append(item)
    return out


def _columns(row: Any, index: dict[str, int]) -> Callable[[str], Any]:
    """Reads a customer column of a batch row by position (faster than by name)."""
    def read(name: str) -> Any:
        value = row[index[f"c_{name}"]]
        return json.loads(value) if name == "attributes" and value is not None else value

    return read


def _render(source: str, ctx: dict[str, Any], html: bool, needs: Needs,
            rendered: dict[tuple[Any, ...], str]) -> str:
    if not needs.memo or "{" not in source:
        return render(source, ctx, html=html)
    key: tuple[Any, ...] = (source, html, *(
        (var, attr, ctx[var].get(attr) if isinstance(ctx.get(var), dict) else ctx.get(var))
        for var, attr in sorted(references(source), key=str)))
    try:
        return rendered[key]
    except KeyError:
        result = rendered[key] = render(source, ctx, html=html)
        return result
    except TypeError:  # an unhashable value (an attributes dict): no memo
        return render(source, ctx, html=html)


def dispatch_once(engine: Engine, settings: Settings, channels: Mapping[str, Channel],
                  now: datetime | None = None, batch_size: int = 1000) -> DispatchStats:
    """Claim one batch and see it through; returns what happened."""
    now = now or utcnow()
    stats = DispatchStats()
    ids = claim(engine, now, batch_size)
    stats.claimed = len(ids)
    if not ids:
        return stats
    with engine.connect() as conn:
        rows = load_batch(conn, ids)
        # Aggregates and awards are read only when a template of the batch uses them.
        read: set[tuple[str, str | None]] = set()
        for subject, body in {_source(r) for r in rows}:
            read |= references(subject or "") | references(body or "")
        customers = {r.customer_id for r in rows}
        figures: Mapping[int, dict[str, Any]] = (
            customer_figures(conn, customers, now.date())
            if read & {("customer", None), *(("customer", f) for f in FIGURES)}
            else {cid: {} for cid in customers})
        awarded = bonuses(conn, rows) if any(v == "bonus" for v, _ in read) else {}
    items = prepare(rows, figures, awarded, settings, now)
    sendable = _take_credit(engine, items, stats)
    outcomes: dict[int, Outcome] = {}
    for channel in ("email", "sms"):
        batch = [p.outgoing for p in sendable if p.outgoing and p.outgoing.channel == channel]
        provider = channels[channel]
        for start in range(0, len(batch), provider.max_batch):
            for o in provider.send(batch[start:start + provider.max_batch]):
                outcomes[o.message_id] = o
    for p in items:
        if p.error is not None:
            outcomes[p.row.id] = Outcome(p.row.id, "failed", error=p.error)
    _record(engine, [p for p in items if p.row.id in outcomes], outcomes, settings, now, stats)
    return stats


def _take_credit(engine: Engine, items: list[Prepared], stats: DispatchStats) -> list[Prepared]:
    """Take credit for each renderable message; those without credit wait as `held`."""
    ready, held = [], []
    with write_transaction(engine) as conn:
        metered = {ch for ch, bal in credits.balances(conn).items() if bal is not None}
        for p in items:
            if p.error is not None:
                continue
            if p.row.channel not in metered or credits.take(conn, p.row.channel, p.units):
                ready.append(p)
            else:
                held.append(p.row.id)
        if held:
            conn.execute(update(Message).where(Message.id.in_(held), Message.status == "sending")
                         .values(status="held", lease_until=None,
                                 attempts=Message.attempts - 1))
    stats.held += len(held)
    return ready


_LEASED = Message.status == "sending"
MARK_SENT = BulkUpdate(Message.__table__, _LEASED,
                       {"status": "sent", "lease_until": None, "last_error": None},
                       ("provider_id", "sent_at", "subject", "body", "sms_encoding", "sms_parts"))
MARK_RETRY = BulkUpdate(Message.__table__, _LEASED, {"status": "queued", "lease_until": None},
                        ("send_after", "last_error"))
MARK_FAILED = BulkUpdate(Message.__table__, _LEASED, {"status": "failed", "lease_until": None},
                         ("last_error",))
ACTIVITY_COLUMNS = ("customer_id", "at", "kind", "campaign_id", "node_id", "occurrence",
                    "run_id", "message_id", "summary", "details")
ADD_ACTIVITY = {name: FastMany(insert(Activity).on_conflict_do_nothing(), ACTIVITY_COLUMNS)
                for name, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))}


def _record(engine: Engine, items: list[Prepared], outcomes: Mapping[int, Outcome],
            settings: Settings, now: datetime, stats: DispatchStats) -> None:
    """Write every outcome of a batch: three bulk updates (engine.fastmany), the
    `message_sent` activities in one INSERT ... SELECT from the rows just marked sent, and the
    (rare) `message_failed` activities."""
    sent: list[dict[str, Any]] = []
    retry: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    refunds: Counter[str] = Counter()
    activities = []
    for p in items:
        row, o = p.row, outcomes[p.row.id]
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
        for stmt, rows in ((MARK_SENT, sent), (MARK_RETRY, retry), (MARK_FAILED, failed)):
            stmt.run(conn, rows)
        for channel, units in refunds.items():
            credits.give_back(conn, channel, units)
        if sent:
            _sent_activities(conn, [r["id"] for r in sent], now)
        ADD_ACTIVITY[conn.dialect.name].run(conn, activities)
    stats.sent += len(sent)
    stats.retried += len(retry)
    stats.failed += len(failed)


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


def dispatch(engine: Engine, settings: Settings, channels: Mapping[str, Channel],
             now: datetime | None = None, batch_size: int = 1000) -> DispatchStats:
    """Dispatch batches until nothing is due."""
    total = DispatchStats()
    while True:
        stats = dispatch_once(engine, settings, channels, now, batch_size)
        total.add(stats)
        if stats.claimed < batch_size:
            return total
