"""Storing provider events once and applying what they say, in the caller's transaction.

Each event is stored by (provider, event id) with INSERT ... ON CONFLICT DO NOTHING: only the
events stored now have effects, so a provider posting a batch twice (or two web processes at
once) changes things once. The delivery state of a message is recomputed from all its stored
events (engine.feedback.events.STATUS_RANK), so events may arrive in any order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, true, update

from engine.bulk import BulkUpdate
from engine.feedback.events import ACTIVITY_OF, STATUS_RANK, Event, Received
from engine.feedback.optouts import set_opt_out
from engine.models import Activity, Customer, Message, MessageEvent
from engine.sql import among, skipping_duplicates

CHUNK = 500  # events per INSERT (8 parameters each, well under SQLite's limit)
TIMES = {"delivered": "delivered_at", "opened": "opened_at", "clicked": "clicked_at"}
SET_STATE = BulkUpdate(Message.__table__, true(), {},
                       ("delivery_status", "delivered_at", "opened_at", "clicked_at"))
WHAT = {"email": "Email", "sms": "SMS"}


def record(conn: Connection, channel: str, events: Sequence[Event], now: datetime) -> Received:
    """Store the events of a `channel` provider and apply the new ones."""
    result = Received(received=len(events))
    unique: dict[str, Event] = {}
    for e in events:
        unique.setdefault(e.event_id, e)
    sent = _messages(conn, {e.message_id for e in unique.values() if e.message_id}, channel)
    owner = {key: m for key, e in unique.items()
             if (m := sent.get(e.message_id or 0)) is not None and _same(e.address, m.address)}
    result.unknown_message = len(unique) - len(owner)
    stored: set[str] = set()
    rows = [{"provider": e.provider, "event_id": key, "kind": e.kind, "at": e.at,
             "message_id": owner[key].id if key in owner else None, "payload": e.payload,
             "received_at": now} for key, e in unique.items()]
    for i in range(0, len(rows), CHUNK):
        stmt = skipping_duplicates(conn, MessageEvent.__table__).values(rows[i:i + CHUNK])
        stored.update(conn.execute(stmt.returning(MessageEvent.event_id)).scalars())
    result.new = len(stored)
    result.duplicates = len(events) - len(stored)
    mine = sorted(((unique[key], owner[key]) for key in stored if key in owner),
                  key=lambda pair: (pair[0].at, pair[0].event_id))
    if mine:
        _state(conn, {m.id for _, m in mine})
        _activities(conn, mine)
        _customers(conn, channel, mine, now)
    return result


def _messages(conn: Connection, ids: set[int], channel: str) -> dict[int, Any]:
    """The messages of the channel the events name, locked until the transaction ends (in id
    order, so two calls cannot deadlock): a concurrent call about the same messages waits,
    then recomputes their state with this call's events in sight, instead of overwriting it
    with a state computed without them."""
    if not ids:
        return {}
    m = Message.__table__.c
    rows = conn.execute(select(m.id, m.customer_id, m.campaign_id, m.node_id, m.occurrence,
                               m.run_id, m.address, Customer.email.label("c_email"))
                        .join(Customer, Customer.id == m.customer_id)
                        .where(among(conn, m.id, sorted(ids)), m.channel == channel)
                        .order_by(m.id).with_for_update(of=Message.__table__))
    return {r.id: r for r in rows}


def _same(reported: str | None, address: str | None) -> bool:
    """Whether the provider's recipient is the message's (a provider account shared with
    another system reports that system's mail too); no recipient named: believed."""
    if reported is None:
        return True
    return "".join(reported.split()).lower() == "".join((address or "").split()).lower()


def _state(conn: Connection, ids: set[int]) -> None:
    """Recompute the delivery state of the messages from all their stored events."""
    e = MessageEvent.__table__.c
    kinds = sorted({*STATUS_RANK, *TIMES})
    found = conn.execute(select(e.message_id, e.kind, func.min(e.at).label("first"),
                                func.max(e.at).label("last"))
                         .where(among(conn, e.message_id, sorted(ids)), e.kind.in_(kinds))
                         .group_by(e.message_id, e.kind))
    state: dict[int, dict[str, Any]] = {i: {"id": i, "delivery_status": None, "rank": None,
                                            **dict.fromkeys(TIMES.values())} for i in ids}
    for r in found:
        s = state[r.message_id]
        if r.kind in TIMES:
            s[TIMES[r.kind]] = r.first
        if r.kind in STATUS_RANK:
            rank = (STATUS_RANK[r.kind], r.last)
            if s["rank"] is None or rank > s["rank"]:
                s["delivery_status"], s["rank"] = r.kind, rank
    SET_STATE.run(conn, [{k: v for k, v in s.items() if k != "rank"} for s in state.values()])


def _activities(conn: Connection, mine: list[tuple[Event, Any]]) -> None:
    """One timeline entry per message and kind, at the first such event (the unique key on
    activities keeps it one across calls too)."""
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for e, m in mine:
        kind = ACTIVITY_OF.get(e.kind)
        if kind is None or (m.id, kind) in rows:
            continue
        url = e.payload.get("url") if e.kind == "clicked" else None
        rows[(m.id, kind)] = {
            "customer_id": m.customer_id, "at": e.at, "kind": kind,
            "campaign_id": m.campaign_id, "node_id": m.node_id, "occurrence": m.occurrence,
            "run_id": m.run_id, "message_id": m.id, "summary": _summary(e, m, url),
            "details": {k: v for k, v in (("provider", e.provider), ("event_id", e.event_id),
                                          ("reason", e.reason), ("url", url)) if v}}
    if rows:
        conn.execute(skipping_duplicates(conn, Activity.__table__), list(rows.values()))


def _summary(e: Event, m: Any, url: Any) -> str:
    what = WHAT["sms" if e.provider == "twilio" else "email"]
    to = m.address
    because = f": {e.reason}" if e.reason else ""
    return {
        "delivered": f"{what} delivered to {to}",
        "bounced": f"{what} to {to} bounced{because}",
        "opened": f"{what} to {to} opened",
        "clicked": f"Link clicked in {what.lower()} to {to}" + (f": {url}" if url else ""),
        "complained": f"{what} to {to} marked as spam",
    }.get(e.kind, f"{what} to {to} not delivered ({e.kind}){because}")


def _customers(conn: Connection, channel: str, mine: list[tuple[Event, Any]],
               now: datetime) -> None:
    """An address gone for good is marked not valid (while it is still the customer's); a
    spam report or an unsubscribe opts the customer out of the channel."""
    invalid = {m.customer_id: (e, m) for e, m in reversed(mine)
               if e.invalid_address and channel == "email" and m.c_email is not None
               and _same(m.c_email, m.address)}
    if invalid:
        changed = list(conn.execute(
            update(Customer).where(Customer.id.in_(sorted(invalid)), Customer.email_valid)
            .values(email_valid=False).returning(Customer.id)).scalars())
        if changed:
            conn.execute(insert(Activity), [{
                "customer_id": cid, "at": invalid[cid][0].at, "kind": "profile_changed",
                "message_id": invalid[cid][1].id,
                "summary": f"Email address {invalid[cid][1].address} marked not valid: "
                           f"{invalid[cid][0].kind}"
                           + (f" ({invalid[cid][0].reason})" if invalid[cid][0].reason else ""),
                "details": {"field": "email_valid", "value": False,
                            "reason": invalid[cid][0].reason or invalid[cid][0].kind}}
                for cid in sorted(changed)])
    leaving = {m.customer_id: (e, m) for e, m in reversed(mine) if e.opt_out}
    for why in sorted({_why(e) for e, _ in leaving.values()}):
        who = {cid: {"message_id": m.id, "provider": e.provider}
               for cid, (e, m) in leaving.items() if _why(e) == why}
        set_opt_out(conn, who, channel, True, now, why, who)


def _why(e: Event) -> str:
    if e.kind == "complained":
        return "marked a message as spam"
    if e.kind == "unsubscribed":
        return f"unsubscribed through {e.provider.capitalize()}"
    return f"{e.provider.capitalize()} suppresses the address ({e.reason})"
