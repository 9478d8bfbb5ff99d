"""`nudgeflow prune --before DATE`: the messages and activities of older dates go in chunks,
the runs log and the points ledger stay, and those dates can never be run again (their
messages would go out twice)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

from engine.campaigns import campaign_today, import_file
from engine.config import Settings
from engine.db import write_transaction
from engine.errors import NudgeflowError, PrunedDate
from engine.executor import run
from engine.models import Activity, BonusLedger, Campaign, Customer, Message, Run
from engine.outbox import dispatch
from engine.retention.prune import prune, watermark
from engine.scheduler import catch_up
from engine.users import create_token, create_user
from tests.conftest import Db
from tests.fakes import RecordingChannel
from tests.world import customer, insert_world
from web import create_app

DOC = {"version": 1, "segments": [], "templates": [], "campaigns": [{
    "key": "daily", "name": "Daily", "status": "active", "purpose": "service",
    "graph": {"nodes": [
        {"id": "t", "type": "trigger", "config": {"kind": "schedule", "every": "day"}},
        {"id": "a", "type": "award-bonus", "config": {"amount": 10, "lifetime_days": None,
                                                       "legal_entity": "Main",
                                                       "description": "Daily points"}},
        {"id": "m", "type": "send-message",
         "config": {"channel": "email", "subject": "Hi", "body": "Hello"}}],
        "edges": [["t", "a"], ["a", "m"]]}}]}
PEOPLE = ("C1", "C2", "C3")


def _setup(db: Db, tmp_path: Path) -> None:
    with write_transaction(db.engine) as conn:
        insert_world(conn, [customer(c, email=f"{c.lower()}@example.com", email_valid=True)
                            for c in PEOPLE])
    path = tmp_path / "campaigns.json"
    path.write_text(json.dumps(DOC))
    import_file(db.engine, path)


def _day(db: Db, day: date, send: bool = True) -> None:
    """Run `daily` for `day` at 06:00 and, with `send`, dispatch its messages at 07:00."""
    midnight = datetime.combine(day, datetime.min.time())
    result = run(db.engine, "daily", day, manual=True, now=midnight + timedelta(hours=6))
    assert result.status == "completed", result.error
    if send:
        channel = RecordingChannel()
        dispatch(db.engine, Settings(secret_key="k"), {"email": channel, "sms": channel},
                 now=midnight + timedelta(hours=7))


def _unsubscribed(db: Db, external_id: str, at: datetime) -> None:
    """An activity of no run or message (as a provider's unsubscribe writes)."""
    with write_transaction(db.engine) as conn:
        cid = conn.execute(select(Customer.id).where(Customer.external_id == external_id)
                           ).scalar_one()
        conn.execute(insert(Activity).values(customer_id=cid, at=at, kind="unsubscribed",
                                             summary="Unsubscribed from email", details={}))


def _state(db: Db) -> dict[str, Any]:
    with db.engine.connect() as conn:
        return {
            "messages": Counter(tuple(r) for r in conn.execute(
                select(Message.occurrence, Message.status))),
            "activities": Counter((kind, at.date().isoformat()) for kind, at in conn.execute(
                select(Activity.kind, Activity.at))),
            "balances": dict(conn.execute(
                select(Customer.external_id, func.sum(BonusLedger.amount))
                .join(BonusLedger, BonusLedger.customer_id == Customer.id)
                .group_by(Customer.external_id)).all()),
            "runs": {(r.run_date, r.status, len(r.attempts)) for r in conn.execute(
                select(Run.run_date, Run.status, Run.attempts))},
        }


def test_prune_removes_old_dates_keeps_ledger_and_runs_and_refuses_them(
        db: Db, tmp_path: Path) -> None:
    _setup(db, tmp_path)
    for day in (date(2026, 1, 30), date(2026, 1, 31), date(2026, 2, 1)):
        _day(db, day)
    _unsubscribed(db, "C1", datetime(2026, 1, 15, 12))
    _unsubscribed(db, "C2", datetime(2026, 2, 15, 12))
    before = _state(db)
    assert before["balances"] == {c: 30 for c in PEOPLE}
    cut = date(2026, 2, 1)

    counted = prune(db.engine, cut, today=date(2026, 3, 1), catchup_days=7, dry_run=True)
    # 2 dates x 3 customers: a message each, and its queued, sent and points activities;
    # and the unsubscribe of 15 January.
    assert (counted.messages, counted.activities, counted.dry_run) == (6, 19, True)
    assert _state(db) == before
    done = prune(db.engine, cut, today=date(2026, 3, 1), catchup_days=7, chunk=4)
    assert (done.messages, done.activities, done.dry_run) == (6, 19, False)

    after = _state(db)
    assert after["messages"] == Counter({("2026-02-01", "sent"): 3})
    assert after["activities"] == Counter({
        ("message_queued", "2026-02-01"): 3, ("message_sent", "2026-02-01"): 3,
        ("bonus_awarded", "2026-02-01"): 3, ("unsubscribed", "2026-02-15"): 1})
    assert after["balances"] == before["balances"]  # the ledger is never pruned
    assert after["runs"] == before["runs"]  # nor the runs log
    with db.engine.connect() as conn:
        assert watermark(conn) == cut

    # The pruned dates cannot be run again; the kept ones run, creating nothing new.
    with pytest.raises(PrunedDate, match=r"^campaign 'daily': 2026-01-31 is before 2026-02-01, "
                       r"the date `nudgeflow prune` removed messages and activities before; "
                       r"running it again would send its messages again, so it is refused$"):
        run(db.engine, "daily", date(2026, 1, 31), manual=True)
    # The API says so with 409 `pruned`.
    with write_transaction(db.engine) as conn:
        create_user(conn, "mia", "marketer", "correct horse battery")
        token = create_token(conn, "mia")
    app = create_app({"NUDGEFLOW_SETTINGS": Settings(database_url=db.url, secret_key="k"),
                      "TESTING": True})
    answer = app.test_client().post("/api/v1/campaigns/daily/run", json={"date": "2026-01-31"},
                                    headers={"Authorization": f"Bearer {token}"})
    app.extensions["nudgeflow_engine"].dispose()
    assert answer.status_code == 409
    assert answer.get_json()["error"]["code"] == "pruned"
    assert run(db.engine, "daily", date(2026, 2, 1), manual=True).status == "completed"
    assert _state(db)["messages"] == after["messages"]
    assert _state(db)["runs"] == {r if r[0] != cut else (cut, "completed", 2)
                                  for r in before["runs"]}
    # A dry run (a preview) of a pruned date writes nothing and is allowed.
    assert run(db.engine, "daily", date(2026, 1, 31), dry_run=True).status == "completed"
    # The catch-up never reaches back past the watermark, however wide its window.
    with write_transaction(db.engine) as conn:
        conn.execute(update(Campaign).values(active_since=date(2025, 12, 1)))
    caught = catch_up(db.engine, Settings(secret_key="k", catchup_days=60),
                      now=datetime(2026, 2, 1, 23))
    assert (caught.runs, caught.skipped) == ([], [])
    # An earlier prune moves no watermark back.
    prune(db.engine, date(2026, 1, 20), today=date(2026, 3, 1), catchup_days=7)
    with db.engine.connect() as conn:
        assert watermark(conn) == cut


def test_prune_refuses_the_catch_up_window_and_unfinished_messages(
        db: Db, tmp_path: Path) -> None:
    _setup(db, tmp_path)
    _day(db, date(2026, 1, 30))
    _day(db, date(2026, 1, 31), send=False)
    before = _state(db)
    with pytest.raises(NudgeflowError, match=r"^--before 2026-02-25: the scheduler may still run "
                       r"dates from 2026-02-22 \(today 2026-03-01 less NUDGEFLOW_CATCHUP_DAYS=7, "
                       r"and at least a day for other time zones\); choose 2026-02-22 or "
                       r"earlier$"):
        prune(db.engine, date(2026, 2, 25), today=date(2026, 3, 1), catchup_days=7)
    with pytest.raises(NudgeflowError, match=r"^--before 2026-02-01: messages of those dates "
                       r"have not finished \(3 queued in 'daily'\); let them be sent, or cancel "
                       r"them \(nudgeflow messages cancel\), first$"):
        prune(db.engine, date(2026, 2, 1), today=date(2026, 3, 1), catchup_days=7)
    assert _state(db) == before
    with db.engine.connect() as conn:
        assert watermark(conn) is None
    # Up to the unfinished date, it goes.
    done = prune(db.engine, date(2026, 1, 31), today=date(2026, 3, 1), catchup_days=7)
    assert (done.messages, done.activities) == (3, 9)


def test_prune_command(db: Db, tmp_path: Path, nf) -> None:  # type: ignore[no-untyped-def]
    _setup(db, tmp_path)
    today = campaign_today("UTC")
    old, kept = today - timedelta(days=30), today - timedelta(days=5)
    _day(db, old)
    _day(db, kept)
    cut = (today - timedelta(days=8)).isoformat()
    out = nf("prune", "--before", cut, "--dry-run")
    assert out.code == 0, out.err
    assert out.out == f"would remove 3 message(s) and 9 activit(ies) before {cut}\n"
    out = nf("prune", "--before", cut, "--json")
    assert out.code == 0, out.err
    assert json.loads(out.out) == {"before": cut, "messages": 3, "activities": 9,
                                   "dry_run": False}
    out = nf("run", "--campaign", "daily", "--date", old.isoformat())
    assert (out.code, out.out) == (1, "")
    assert out.err.startswith(f"error: campaign 'daily': {old.isoformat()} is before {cut}")
    out = nf("prune", "--before", today.isoformat())
    assert out.code == 1
    assert out.err.startswith(f"error: --before {today.isoformat()}: the scheduler may still run")
    out = nf("prune", "--before", "2026-13-01")
    assert out.code == 2 and "expected YYYY-MM-DD" in out.err
    assert nf("prune").code == 2
    with db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Campaign)).scalar_one() == 1
