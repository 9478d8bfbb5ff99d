"""Outbox invariants: claims are disjoint and leases expire exactly at their boundary; for any
customers and campaigns nothing reaches an opted-out customer, one without consent for a
marketing campaign (unless consent is ignored) or an invalid address, and nothing goes twice."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select, update

from engine.campaigns import import_file
from engine.config import Settings
from engine.db import write_transaction
from engine.executor import run
from engine.messaging.claims import LEASE, Heartbeat, claim
from engine.messaging.outcomes import Batch, DispatchStats, record
from engine.models import Activity, Campaign, Customer, Message
from engine.outbox import dispatch
from engine.workspace import set_setting
from tests.conftest import Db
from tests.fakes import RecordingChannel
from tests.world import clear, customer, insert_world

SETTINGS = Settings(secret_key="k", public_url="https://nf.example")
T0 = datetime(2025, 1, 1, 12, 0)


def _queue(db: Db, n: int, minutes_apart: int = 0,
           status: Callable[[int], str] = lambda _i: "queued") -> list[int]:
    """n emails of campaign "k" (queued, or as `status(i)` says), due at T0 (or each
    `minutes_apart` after the one before, the last at T0 - minutes_apart); their ids."""
    with write_transaction(db.engine) as conn:
        cid = conn.execute(insert(Customer).values(external_id="c", attributes={})
                           ).inserted_primary_key[0]
        camp = conn.execute(insert(Campaign).values(key="k", name="k", graph={})
                            ).inserted_primary_key[0]
        conn.execute(insert(Message), [
            {"campaign_id": camp, "node_id": "m", "customer_id": cid, "occurrence": str(i),
             "channel": "email", "address": f"c{i}@example.com", "status": status(i),
             "send_after": T0 - timedelta(minutes=minutes_apart * (n - i)),
             "inline_template": {"subject": "S", "body": "B {{ today }}"}}
            for i in range(n)])
        return list(conn.execute(select(Message.id).order_by(Message.id)).scalars())


def test_claims_are_disjoint_and_leases_expire_at_the_boundary(db: Db) -> None:
    ids = _queue(db, 5, minutes_apart=1)
    def claimed(at: datetime, limit: int) -> list[int]:
        return [m.id for m in claim(db.engine, at, limit).rows]

    a, b, c, d = (claimed(T0, 2) for _ in range(4))
    assert (a, b, c, d) == (ids[0:2], ids[2:4], ids[4:5], [])
    # A lease runs until exactly T0 + LEASE: not before, then it is taken over.
    assert claimed(T0 + LEASE, 10) == []
    taken = claim(db.engine, T0 + LEASE + timedelta(microseconds=1), 10)
    assert [m.id for m in taken.rows] == ids
    # A claim cut short (by a crash) is no attempt: none has been counted.
    assert {m.attempts for m in taken.rows} == {0}
    with db.engine.connect() as conn:
        assert set(conn.execute(select(Message.attempts)).scalars()) == {0}
        assert set(conn.execute(select(Message.claim_token)).scalars()) == {taken.token}


class FailingSecondCall(RecordingChannel):
    max_batch = 1000

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def send(self, batch: Any) -> Any:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("provider client crashed")
        return super().send(batch)


def test_batches_in_flight_are_each_sent_and_recorded_once(db: Db) -> None:
    from sqlalchemy import func

    from engine.models import Activity

    ids = _queue(db, 2500)
    channel = RecordingChannel()
    channel.max_batch = 1000
    stats = dispatch(db.engine, SETTINGS, {"email": channel, "sms": channel}, now=T0,
                     batch_size=1000, in_flight=2)
    assert (stats.claimed, stats.sent) == (2500, 2500)
    assert sorted(m.message_id for m in channel.sent) == ids
    with db.engine.connect() as conn:
        assert set(conn.execute(select(Message.status)).scalars()) == {"sent"}
        assert conn.execute(select(func.count()).select_from(Activity)
                            .where(Activity.kind == "message_sent")).scalar_one() == 2500


class SlowChannel(RecordingChannel):
    """Answers after a while, counting how many batches it holds at once."""

    max_batch = 1000

    def __init__(self) -> None:
        super().__init__()
        self.lock, self.holding, self.most = threading.Lock(), 0, 0

    def send(self, batch: Any) -> Any:
        with self.lock:
            self.holding += 1
            self.most = max(self.most, self.holding)
        time.sleep(0.5)
        with self.lock:
            self.holding -= 1
            return super().send(batch)


def test_the_setting_decides_how_many_batches_are_in_flight(db: Db) -> None:
    ids = _queue(db, 500)
    channel = SlowChannel()
    stats = dispatch(db.engine, replace(SETTINGS, dispatch_in_flight=3),
                     {"email": channel, "sms": channel}, now=T0, batch_size=100)
    assert (stats.sent, channel.most) == (500, 3)
    assert sorted(m.message_id for m in channel.sent) == ids


def test_a_crashing_provider_fails_only_its_own_request(db: Db) -> None:
    ids = _queue(db, 2500)
    channel = FailingSecondCall()
    stats = dispatch(db.engine, SETTINGS, {"email": channel, "sms": channel}, now=T0,
                     batch_size=1000, in_flight=2)
    assert (stats.sent, stats.retried) == (1500, 1000)
    with db.engine.connect() as conn:
        rows = {m.id: m for m in conn.execute(select(Message))}
    sent = sorted(m.message_id for m in channel.sent)
    # The request that raised is retried after the backoff (the provider may or may not have
    # taken it: the ambiguous case); every other one was sent and recorded once.
    retried = sorted(i for i in ids if rows[i].status == "queued")
    assert len(retried) == 1000 and set(retried).isdisjoint(sent)
    assert all(rows[i].send_after == T0 + timedelta(minutes=1) and rows[i].attempts == 1
               and "provider client crashed" in rows[i].last_error for i in retried)
    assert sent == [i for i in ids if rows[i].status == "sent"]


PERSON = st.fixed_dictionaries({
    "email_ok": st.booleans(), "has_email": st.booleans(), "phone_ok": st.booleans(),
    "email_opt_out": st.booleans(), "sms_opt_out": st.booleans(),
    "marketing_consent": st.booleans(),
    # What the person changes after the run queued their message and before it is sent.
    "later": st.sampled_from([None, "opt_out", "withdraw_consent", "give_consent"])})


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(people=st.lists(PERSON, min_size=1, max_size=8),
       purpose=st.sampled_from(["marketing", "service"]),
       channel=st.sampled_from(["email", "sms"]), ignore_consent=st.booleans())
def test_nothing_reaches_who_must_not_get_it(db: Db, tmp_path: Path, people: list[dict[str, Any]],
                                             purpose: str, channel: str,
                                             ignore_consent: bool) -> None:
    with write_transaction(db.engine) as conn:
        clear(conn)
        from engine.models import Setting

        conn.execute(Setting.__table__.delete())
        set_setting(conn, "consent_mode", "ignore" if ignore_consent else "require")
        insert_world(conn, [customer(
            f"p{i}", email=f"p{i}@example.com" if p["has_email"] else None,
            email_valid=p["email_ok"], phone="+27821234567" if p["phone_ok"] else "123",
            phone_valid=p["phone_ok"], email_opt_out=p["email_opt_out"],
            sms_opt_out=p["sms_opt_out"], marketing_consent=p["marketing_consent"])
            for i, p in enumerate(people)])
    doc = {"version": 1, "campaigns": [{
        "key": "blast", "name": "Blast", "status": "active", "purpose": purpose,
        "graph": {"nodes": [
            {"id": "t", "type": "trigger", "config": {"kind": "schedule", "every": "day"}},
            {"id": "m", "type": "send-message",
             "config": {"channel": channel, "subject": "Hi", "body": "Hi {{ customer.external_id }}"}}],
            "edges": [["t", "m"]]}}]}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    import_file(db.engine, path)
    rec = RecordingChannel()
    channels = {"email": rec, "sms": rec}
    run(db.engine, "blast", date(2025, 1, 1), now=T0)
    with write_transaction(db.engine) as conn:
        for i, p in enumerate(people):
            change = {"opt_out": {f"{channel}_opt_out": True},
                      "withdraw_consent": {"marketing_consent": False},
                      "give_consent": {"marketing_consent": True}}.get(p["later"])
            if change:
                conn.execute(update(Customer).where(Customer.external_id == f"p{i}")
                             .values(change))
    for _ in range(2):  # running and dispatching twice changes nothing
        run(db.engine, "blast", date(2025, 1, 1), now=T0)
        dispatch(db.engine, SETTINGS, channels, now=T0)
    sent_ids = [m.message_id for m in rec.sent]
    assert len(sent_ids) == len(set(sent_ids))
    by_address = {m.body.removeprefix("Hi "): m for m in rec.sent}
    assert len(by_address) == len(rec.sent)
    for i, p in enumerate(people):
        consent_later = {"withdraw_consent": False, "give_consent": True}.get(
            p["later"], p["marketing_consent"])
        allowed = (
            # as the run found them (queued or skipped, once) ...
            not p["email_opt_out" if channel == "email" else "sms_opt_out"]
            and (purpose == "service" or ignore_consent or p["marketing_consent"])
            and (p["has_email"] and p["email_ok"] if channel == "email" else p["phone_ok"])
            # ... and as the dispatcher found them
            and p["later"] != "opt_out"
            and (purpose == "service" or ignore_consent or consent_later))
        assert (f"p{i}" in by_address) == allowed, (p, purpose, channel, ignore_consent)


def test_a_dispatcher_that_lost_its_lease_writes_nothing(db: Db) -> None:
    """A claims, stalls past its lease; B takes the batch over and sends it. A's outcomes,
    arriving late, change nothing: no status, no activity, no second `sent`."""
    from engine.rendering import Prepared

    ids = _queue(db, 3)
    a = claim(db.engine, T0, 10)
    b = claim(db.engine, T0 + LEASE + timedelta(seconds=1), 10)
    assert [m.id for m in b.rows] == ids and a.token != b.token
    rec = RecordingChannel()
    late = Batch(a, True, DispatchStats(), items=[Prepared(row, error="cannot render: x")
                                                  for row in a.rows])
    record(db.engine, SETTINGS, late, late.items, {})
    assert (late.stats.failed, late.stats.sent) == (0, 0)
    with db.engine.connect() as conn:
        assert set(conn.execute(select(Message.status)).scalars()) == {"sending"}
        assert conn.execute(select(func.count()).select_from(Activity)).scalar_one() == 0
    # B (its lease still running) is not disturbed: a dispatch after B's lease ran out takes
    # the batch over once more and sends each message once.
    stats = dispatch(db.engine, SETTINGS, {"email": rec, "sms": rec},
                     now=T0 + 2 * LEASE + timedelta(seconds=2))
    assert (stats.claimed, stats.sent) == (3, 3)
    assert sorted(m.message_id for m in rec.sent) == ids


def test_the_heartbeat_keeps_a_batch_that_is_still_being_sent(db: Db) -> None:
    _queue(db, 2)
    lease = timedelta(seconds=30)
    taken = claim(db.engine, T0, 10, lease)
    with Heartbeat(db.engine, lease) as heartbeat:
        heartbeat.hold(taken)
        assert heartbeat.safe(taken)
        time.sleep(0.2)
        heartbeat.renew()
        with db.engine.connect() as conn:
            until = set(conn.execute(select(Message.lease_until)).scalars())
        assert len(until) == 1 and T0 + lease + timedelta(seconds=0.2) <= until.pop() \
            < T0 + lease + timedelta(seconds=5)
        # Renewed, the batch cannot be claimed at its first lease's end.
        assert claim(db.engine, T0 + lease + timedelta(seconds=0.1), 10).rows == []
        heartbeat.release(taken)
        assert not heartbeat.safe(taken)


def test_a_template_that_raises_for_one_customer_fails_that_message_alone(db: Db) -> None:
    ids = _queue(db, 4)
    bodies = ["{{ 100 // today.day }} ok", "{{ today.nothing + 1 }}",
              "{{ 'x' * 10**9 }}", "{{ 9**(9**9) }}"]
    with write_transaction(db.engine) as conn:
        for i, body in zip(ids, bodies, strict=True):
            conn.execute(update(Message).where(Message.id == i)
                         .values(inline_template={"subject": "S", "body": body}))
    rec = RecordingChannel()
    stats = dispatch(db.engine, SETTINGS, {"email": rec, "sms": rec}, now=T0)
    assert (stats.claimed, stats.sent, stats.failed) == (4, 1, 3)
    assert [m.body for m in rec.sent] == ["100 ok"]
    with db.engine.connect() as conn:
        rows = {m.id: m for m in conn.execute(select(Message))}
        failed = dict(conn.execute(select(Activity.message_id, Activity.details["error"])
                                   .where(Activity.kind == "message_failed")).all())
    assert rows[ids[0]].status == "sent"
    assert rows[ids[1]].last_error.startswith("cannot render: ")
    assert rows[ids[2]].last_error == (
        "cannot render: the template builds a text longer than 100,000 characters")
    assert rows[ids[3]].last_error == (
        "cannot render: the template builds a number larger than 2**4096")
    assert set(failed) == set(ids[1:])


def test_stop_cancels_any_number_of_waiting_messages(db: Db) -> None:
    """More than PostgreSQL's 65,535 bind parameters, in chunks, each with its activity."""
    from engine.cancel import cancel_messages

    n = 70_000
    _queue(db, n, status=lambda i: "held" if i % 7 == 0 else "queued")
    sending = claim(db.engine, T0, 5)
    done = cancel_messages(db.engine, "k")
    assert (done.cancelled, done.on_their_way) == (n - 5, 5)
    with db.engine.connect() as conn:
        assert dict(conn.execute(select(Message.status, func.count())
                                 .group_by(Message.status)).all()) == {
            "cancelled": n - 5, "sending": 5}
        assert conn.execute(select(func.count()).select_from(Activity)
                            .where(Activity.kind == "message_cancelled")).scalar_one() == n - 5
    assert sending.rows
