"""Frequency caps (workspace setting `frequency_caps`): at most `max` messages of a channel (and
purpose, if given) per customer in `days` days, across campaigns.

Caps are enforced when due messages are claimed, inside the claim's transaction: the customers
concerned are locked per channel (on PostgreSQL `pg_advisory_xact_lock`, taken in key order;
SQLite serializes writers already), their messages of the channel sent in the window or on
their way (`sending`) are counted, and only the messages that fit are leased. A message leased
is counted by every later claim, so concurrent dispatchers never let one more through. Over a
cap, a message is `skipped` (reason `frequency_cap`) or, with `"over": "delay"`, waits until
the oldest counted message leaves the window. A send-message node with `"ignore_caps": true`
(service messages) is not held back, though what it sends is counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from marshmallow import Schema, fields, validate
from sqlalchemy import (
    Connection,
    DateTime,
    Integer,
    String,
    column,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import values as sql_values

from engine.bulk import BulkUpdate
from engine.messaging.node_configs import node_configs
from engine.messaging.quiet_hours import quiet_ends
from engine.models import Activity, Campaign, Message
from engine.sql import among, skipping_duplicates


class CapSchema(Schema):
    channel = fields.String(required=True, validate=validate.OneOf(("email", "sms")))
    purpose = fields.String(load_default=None, allow_none=True,
                            validate=validate.OneOf(("marketing", "service")))
    max = fields.Integer(required=True, strict=True, validate=validate.Range(1, 10_000))
    days = fields.Integer(required=True, strict=True, validate=validate.Range(1, 366))
    over = fields.String(load_default="skip", validate=validate.OneOf(("skip", "delay")))


@dataclass(frozen=True)
class Cap:
    channel: str
    purpose: str | None
    max: int
    days: int
    over: str

    def applies(self, channel: str, purpose: str) -> bool:
        return self.channel == channel and self.purpose in (None, purpose)


@dataclass(frozen=True)
class CapRules:
    """The workspace's caps, and its quiet hours (a delayed message waits for them too)."""

    caps: tuple[Cap, ...] = ()
    quiet_hours: Mapping[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.caps)


def caps_of(settings: Mapping[str, Any]) -> CapRules:
    return CapRules(tuple(Cap(c["channel"], c.get("purpose"), c["max"], c["days"],
                              c.get("over", "skip"))
                          for c in settings.get("frequency_caps") or []),
                    settings.get("quiet_hours") or {})


@dataclass(frozen=True)
class Candidate:
    id: int
    customer_id: int
    channel: str
    purpose: str
    caps: tuple[int, ...]  # indexes of the caps that hold it back


def admit(conn: Connection, due: Any, rules: CapRules, now: datetime
          ) -> tuple[int, list[int]]:
    """How many due messages `due` (a SELECT of message ids, in claim order) picked, and the
    ids of those that fit the caps; the others are skipped or delayed here (a delayed message
    also waits out its quiet hours). Runs inside the claim's transaction."""
    caps = rules.caps
    pick = due.with_only_columns(Message.id, Message.customer_id, Message.channel,
                                 Message.campaign_id, Message.node_id)
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    rows = conn.execute(pick).all()
    if not rows:
        return 0, []
    campaigns = {r.id: r for r in conn.execute(
        select(Campaign.id, Campaign.purpose, Campaign.graph, Campaign.timezone)
        .where(among(conn, Campaign.id, {r.campaign_id for r in rows})))}
    configs = node_configs((cid, c.graph) for cid, c in campaigns.items())
    ignoring = {key for key, config in configs.items() if config.get("ignore_caps")}
    held: list[Candidate] = []
    by_id = {r.id: r for r in rows}
    for r in rows:
        purpose = campaigns[r.campaign_id].purpose
        mine = tuple(i for i, cap in enumerate(caps) if cap.applies(r.channel, purpose))
        if mine and (r.campaign_id, r.node_id) not in ignoring:
            held.append(Candidate(r.id, r.customer_id, r.channel, purpose, mine))
    if not held:
        return len(rows), [r.id for r in rows]
    _lock(conn, {(c.customer_id, c.channel) for c in held})
    counts, oldest = _counted(conn, caps, {c.customer_id for c in held}, now)
    skipped: list[int] = []
    delayed: dict[int, datetime] = {}
    for c in held:  # in claim order: earlier messages take the room first
        over = [i for i in c.caps if counts[i, c.customer_id] >= caps[i].max]
        if not over:
            for i in c.caps:
                counts[i, c.customer_id] += 1
            continue
        if any(caps[i].over == "skip" for i in over):
            skipped.append(c.id)
        else:
            delayed[c.id] = max(oldest.get((i, c.customer_id), now)
                                + timedelta(days=caps[i].days) for i in over)
    _skip(conn, skipped, now)
    if delayed:
        # A delayed message also waits out its quiet hours.
        delayed |= quiet_ends(conn, [by_id[i] for i in delayed], delayed, configs,
                              {cid: c.timezone for cid, c in campaigns.items()},
                              {"quiet_hours": rules.quiet_hours})
        DELAY.run(conn, [{"id": i, "send_after": t} for i, t in delayed.items()])
    out = set(skipped) | set(delayed)
    return len(rows), [r.id for r in rows if r.id not in out]


DELAY = BulkUpdate(Message.__table__, Message.status == "queued", {}, ("send_after",))


def _lock(conn: Connection, keys: set[tuple[int, str]]) -> None:
    """Serialize claims per (customer, channel) until the transaction ends, taking the locks
    in key order so two dispatchers cannot wait on each other."""
    if conn.dialect.name != "postgresql":
        return  # SQLite: the claim holds the database's one write lock
    v = sql_values(column("customer_id", Integer), column("channel", String),
                   name="k").data(sorted(keys))
    ordered = select(v.c.customer_id, v.c.channel).order_by(
        v.c.channel, v.c.customer_id).offset(0).subquery()
    conn.execute(select(func.count(func.pg_advisory_xact_lock(
        func.hashtext(func.current_schema() + ":nudgeflow-cap:" + ordered.c.channel),
        ordered.c.customer_id))).select_from(ordered))


def _counted(conn: Connection, caps: Sequence[Cap], customers: set[int], now: datetime
             ) -> tuple[Counter[tuple[int, int]], dict[tuple[int, int], datetime]]:
    """Per (cap, customer): the messages it counts (sent within its window, or on their way)
    and when the oldest of them went (a message on its way counts as going now)."""
    counts: Counter[tuple[int, int]] = Counter()
    oldest: dict[tuple[int, int], datetime] = {}
    for i, cap in enumerate(caps):
        since = now - timedelta(days=cap.days)
        went = func.coalesce(Message.sent_at, literal(now, DateTime))
        query = (select(Message.customer_id, func.count(), func.min(went))
                 .where(among(conn, Message.customer_id, customers),
                        Message.channel == cap.channel,
                        or_(Message.status == "sending",
                            (Message.status == "sent") & (Message.sent_at > since)))
                 .group_by(Message.customer_id))
        if cap.purpose is not None:
            query = query.join(Campaign, Campaign.id == Message.campaign_id).where(
                Campaign.purpose == cap.purpose)
        for customer_id, n, first in conn.execute(query):
            counts[i, customer_id] = n
            oldest[i, customer_id] = first
    return counts, oldest


def _skip(conn: Connection, ids: list[int], now: datetime) -> None:
    if not ids:
        return
    m = Message.__table__.c
    conn.execute(update(Message).where(among(conn, Message.id, ids), Message.status == "queued")
                 .values(status="skipped", skip_reason="frequency_cap"))
    rows = conn.execute(select(m.id, m.customer_id, m.campaign_id, m.node_id, m.occurrence,
                               m.run_id, m.channel, m.address)
                        .where(among(conn, m.id, ids))).all()
    conn.execute(skipping_duplicates(conn, Activity.__table__), [
        {"customer_id": r.customer_id, "at": now, "kind": "message_skipped",
         "campaign_id": r.campaign_id, "node_id": r.node_id, "occurrence": r.occurrence,
         "run_id": r.run_id, "message_id": r.id,
         "summary": f"{'Email' if r.channel == 'email' else 'SMS'} not sent: frequency cap "
                    "reached",
         "details": {"channel": r.channel, "address": r.address, "reason": "frequency_cap"}}
        for r in rows])
