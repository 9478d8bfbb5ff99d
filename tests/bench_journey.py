"""Journey benchmark: the example file's dunning sequence (invoice_due + 1 -> email -> wait 7 ->
unpaid? -> SMS -> wait 7 -> unpaid? -> collections email, with exit rules) in steady state, its
waits full: the engine's daily runs against hand-written SQL doing the same inserts, updates
and activities, on the same data, in the same run."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, select, text

from engine.db import write_transaction
from engine.executor import run
from engine.models import Activity, Campaign, JourneyWait, Message, Run

KEY = "dunning"
# The dunning sequence's steps as a database developer would write them for day :d.
SEND = """
INSERT INTO messages (campaign_id, node_id, customer_id, occurrence, invoice_id, channel,
  address, reply_to, status, skip_reason, send_after, attempts, created_at)
SELECT :c, :node, c.id, p.occurrence, p.invoice_id, :channel, c.{address}, :reply_to,
  CASE WHEN c.{opt_out} OR c.{address} IS NULL OR NOT c.{valid} THEN 'skipped' ELSE 'queued' END,
  CASE WHEN c.{opt_out} THEN 'opted_out' WHEN c.{address} IS NULL THEN 'no_address'
       WHEN NOT c.{valid} THEN 'invalid_address' END, :now, 0, :now
FROM ({pairs}) p JOIN customers c ON c.id = p.customer_id
ON CONFLICT DO NOTHING"""
ACTIVITY = """
INSERT INTO activities (customer_id, at, kind, campaign_id, node_id, occurrence, run_id,
  message_id, summary, details)
SELECT customer_id, :now, CASE WHEN status = 'skipped' THEN 'message_skipped'
  ELSE 'message_queued' END, campaign_id, node_id, occurrence, run_id, id, 'Message', '{}'
FROM messages WHERE campaign_id = :c AND node_id = :node AND created_at = :now
ON CONFLICT DO NOTHING"""
PARK = """
INSERT INTO journey_waits (campaign_id, node_id, customer_id, occurrence, invoice_id,
  parked_on, release_on, status)
SELECT :c, :wait, customer_id, occurrence, invoice_id, :d, :release, 'waiting'
FROM messages WHERE campaign_id = :c AND node_id = :node AND created_at = :now
ON CONFLICT DO NOTHING"""
EXIT = """
UPDATE journey_waits SET status = 'exited', ended_on = :d
WHERE campaign_id = :c AND node_id = :wait AND status = 'waiting' AND release_on <= :d
  AND customer_id IN (SELECT id FROM customers WHERE status IN ('closed', 'deceased'))"""
RELEASE = """
UPDATE journey_waits SET status = 'released', ended_on = :d
WHERE campaign_id = :c AND node_id = :wait AND status = 'waiting' AND release_on <= :d"""
RELEASED_UNPAID = """
SELECT w.customer_id, w.occurrence, w.invoice_id FROM journey_waits w
JOIN invoices i ON i.id = w.invoice_id
WHERE w.campaign_id = :c AND w.node_id = :wait AND w.status = 'released' AND w.ended_on = :d
  AND (i.paid_at IS NULL OR i.paid_at > :d)"""
FIRED = """
SELECT customer_id, 'invoice:' || id || ':' || :due AS occurrence, id AS invoice_id
FROM invoices WHERE due_date = :due AND (paid_at IS NULL OR paid_at > :d)"""
EMAIL = {"address": "email", "opt_out": "email_opt_out", "valid": "email_valid"}
SMS = {"address": "phone", "opt_out": "sms_opt_out", "valid": "phone_valid"}


def hand_day(engine: Engine, campaign_id: int, d: date, now: Any) -> None:
    base = {"c": campaign_id, "d": d, "now": now, "due": d - timedelta(days=1),
            "release": d + timedelta(days=7), "reply_to": "collections@example.com"}
    with write_transaction(engine) as conn:
        def send(node: str, channel: str, cols: dict[str, str], pairs: str,
                 **extra: Any) -> None:
            params = {**base, "node": node, "channel": channel, **extra}
            conn.execute(text(SEND.format(pairs=pairs, **cols)), params)
            conn.execute(text(ACTIVITY), params)

        for wait in ("week2", "week1"):  # release first, as the graph's later nodes run
            conn.execute(text(EXIT), {**base, "wait": wait})
            conn.execute(text(RELEASE), {**base, "wait": wait})
        send("collections", "email", EMAIL, RELEASED_UNPAID, wait="week2")
        send("sms", "sms", SMS, RELEASED_UNPAID, wait="week1", reply_to=None)
        conn.execute(text(PARK), {**base, "node": "sms", "wait": "week2"})
        send("notice", "email", EMAIL, FIRED)
        conn.execute(text(PARK), {**base, "node": "notice", "wait": "week1"})


def _clear(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        for model in (Activity, Message, JourneyWait, Run):
            conn.execute(delete(model))


def _effects(engine: Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(m)).scalar_one()
                     for m in (Message, Activity, JourneyWait))


def _warm_up(engine: Engine, day: date) -> None:
    """Two weeks of runs before `day`, so that its run finds both waits full."""
    _clear(engine)
    for i in range(14, 0, -1):
        result = run(engine, KEY, day - timedelta(days=i))
        assert result.status == "completed", result.error


def bench_journey(engine: Engine, day: date, days: int = 10) -> dict[str, Any]:
    """Two weeks of warm-up runs, so both waits are full, then `days` days timed: the
    engine's runs against the hand-written SQL of the same days on the same warm state."""
    with engine.connect() as conn:
        campaign_id = conn.execute(select(Campaign.id).where(Campaign.key == KEY)).scalar_one()
    dates = [day + timedelta(days=i) for i in range(days)]
    _warm_up(engine, day)
    before = _effects(engine)
    started = time.perf_counter()
    released = 0
    for d in dates:
        result = run(engine, KEY, d)
        assert result.status == "completed", result.error
        released += sum(result.counts[w].get("released", 0) for w in ("week1", "week2"))
    ours_t = time.perf_counter() - started
    ours = tuple(o - b for o, b in zip(_effects(engine), before, strict=True))
    _warm_up(engine, day)
    started = time.perf_counter()
    for d in dates:
        hand_day(engine, campaign_id, d, datetime.combine(d, datetime.min.time()))
    hand_t = time.perf_counter() - started
    hand = tuple(h - b for h, b in zip(_effects(engine), before, strict=True))
    _clear(engine)
    print(f"  dunning journey, {days} days after two weeks' warm-up ({released:,} released "
          f"from waits; new messages, activities, parked): engine {ours} in "
          f"{ours_t / days:.3f} s a day, hand-written SQL {hand} in {hand_t / days:.3f} s a "
          f"day, ratio {ours_t / hand_t:.2f}")
    return {"engine_s": ours_t, "hand_s": hand_t, "effects": ours, "hand": hand}


