"""The schedule, on a fake clock: what a catch-up runs (missed and failed dates of the window,
oldest first; today only once NUDGEFLOW_RUN_AT has passed), what it records as skipped, that
one broken campaign fails alone, and that one process at a time leads."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text, update

from engine.campaigns import import_file
from engine.config import Settings
from engine.db import write_transaction
from engine.executor import run
from engine.leader import SoleLeadership
from engine.models import Campaign, Message, Run, Segment
from engine.scheduler import Plan, Schedule, build_scheduler, catch_up, latest_run_at, plan
from tests.campaign_docs import MONTHLY, daily, daily_document, document
from tests.conftest import Db
from tests.webapp import session_client, token_for
from tests.world import customer, insert_world

SETTINGS = Settings(run_at=time(6, 0), catchup_days=3)
MAR = {d: date(2026, 3, d) for d in range(1, 32)}
# A rule the database cannot execute: written past validation, as a bad upgrade or a hand
# edit would leave it (text compared with an object).
UNRUNNABLE = {"field": "first_name", "op": "=", "value": {"not": "text"}}


def at(day: int, hour: int = 7, minute: int = 0) -> datetime:
    """A moment in March 2026, naive UTC (the workspace is on UTC; RUN_AT is 06:00)."""
    return datetime(2026, 3, day, hour, minute)


def import_doc(db: Db, tmp_path: Path, doc: dict[str, Any]) -> None:
    """Import a campaign file: its active campaigns are active from today."""
    path = tmp_path / "campaigns.json"
    path.write_text(json.dumps(doc))
    import_file(db.engine, path)


def load(db: Db, tmp_path: Path, doc: dict[str, Any], active_since: date | None) -> None:
    """Import a campaign file, with its campaigns active since `active_since`."""
    import_doc(db, tmp_path, doc)
    with write_transaction(db.engine) as conn:
        conn.execute(update(Campaign).values(active_since=active_since))


def people(db: Db) -> None:
    with write_transaction(db.engine) as conn:
        insert_world(conn, [customer(f"P{i}", first_name=f"P{i}", email=f"p{i}@example.com",
                                     email_valid=True) for i in (1, 2)])


def set_rules(db: Db, segment: str, rules: Any) -> None:
    with write_transaction(db.engine) as conn:
        conn.execute(update(Segment).where(Segment.key == segment).values(rules=rules))


def runs(db: Db) -> dict[tuple[str, date], tuple[str, str | None, int]]:
    """(campaign, date) -> (status, error, number of attempts)."""
    with db.engine.connect() as conn:
        rows = conn.execute(select(Campaign.key, Run.run_date, Run.status, Run.error,
                                   Run.attempts).join(Campaign, Campaign.id == Run.campaign_id))
        return {(r.key, r.run_date): (r.status, r.error, len(r.attempts)) for r in rows}


def messages(db: Db, key: str) -> list[str]:
    """The occurrences (dates) of a campaign's messages, one per customer and date."""
    with db.engine.connect() as conn:
        return sorted(conn.execute(select(Message.occurrence).join(
            Campaign, Campaign.id == Message.campaign_id).where(Campaign.key == key)).scalars())


def ran(result: Any) -> list[tuple[str, date, str]]:
    return [(r.campaign, r.run_date, r.status) for r in result.runs]


def test_latest_run_at() -> None:
    assert latest_run_at(at(10, 7), time(6), "UTC") == at(10, 6)
    assert latest_run_at(at(10, 6), time(6), "UTC") == at(10, 6)  # the minute it is due
    assert latest_run_at(at(10, 5, 59), time(6), "UTC") == at(9, 6)
    # 06:00 in Johannesburg is 04:00 UTC.
    assert latest_run_at(at(10, 3, 59), time(6), "Africa/Johannesburg") == at(9, 4)
    assert latest_run_at(at(10, 4), time(6), "Africa/Johannesburg") == at(10, 4)


def test_plan() -> None:
    window = {"due_through": MAR[10], "catchup_days": 3, "last_before_window": None}
    done = {MAR[d]: "completed" for d in (7, 9, 10)}
    # A failed date is retried whatever later dates did, by a full catch-up (not by a tick).
    failed = {**done, MAR[8]: "failed"}
    assert plan(failed, active_since=MAR[1], retry_failed=True, **window).run == [MAR[8]]
    assert plan(failed, active_since=MAR[1], retry_failed=False, **window).run == []
    assert plan(done, active_since=MAR[1], retry_failed=False, **window).run == [MAR[8]]
    # A hand run of a future date suppresses nothing else.
    future = {MAR[15]: "completed"}
    assert plan(future, active_since=MAR[1], retry_failed=True, **window).run == [
        MAR[7], MAR[8], MAR[9], MAR[10]]
    # Never before the activation.
    assert plan({}, active_since=MAR[9], retry_failed=True, **window) == Plan(
        [MAR[9], MAR[10]], [])
    # Never-run dates between the activation and the window are skipped, once.
    assert plan({}, active_since=MAR[4], retry_failed=True, **window).skip == [MAR[4], MAR[5],
                                                                             MAR[6]]
    after_run = {**window, "last_before_window": MAR[4]}
    assert plan({}, active_since=MAR[1], retry_failed=True, **after_run).skip == [MAR[5], MAR[6]]
    assert plan({}, active_since=None, retry_failed=True, **window).skip == []
    # A skipped date inside the window (NUDGEFLOW_CATCHUP_DAYS was raised) is run.
    assert plan({**done, MAR[8]: "skipped"}, active_since=MAR[1], retry_failed=False,
                **window).run == [MAR[8]]


def test_catch_up_runs_missed_days_oldest_first_and_today_after_run_at(
        db: Db, tmp_path: Path) -> None:
    load(db, tmp_path, document(MONTHLY), active_since=MAR[1])
    before = catch_up(db.engine, SETTINGS, at(10, 5, 59))
    assert ran(before) == [("month-end", MAR[d], "completed") for d in (6, 7, 8, 9)]
    assert ran(catch_up(db.engine, SETTINGS, at(10, 5, 59))) == []
    assert ran(catch_up(db.engine, SETTINGS, at(10, 6))) == [("month-end", MAR[10], "completed")]
    assert [r.run_date for r in catch_up(db.engine, SETTINGS, at(12, 8)).runs] == [MAR[11],
                                                                                  MAR[12]]
    assert {s for s, _e, _n in runs(db).values()} == {"completed", "skipped"}


def test_one_broken_campaign_fails_alone_and_is_retried(db: Db, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """"broken" sorts before "healthy": its failure must not keep "healthy" from running."""
    people(db)
    load(db, tmp_path, daily_document(daily("broken", "fragile"), daily("healthy", "everyone")),
         active_since=MAR[9])
    set_rules(db, "fragile", UNRUNNABLE)
    caplog.set_level(logging.INFO, "nudgeflow")
    result = catch_up(db.engine, SETTINGS, at(10))
    assert ran(result) == [("broken", MAR[9], "failed"), ("broken", MAR[10], "failed"),
                           ("healthy", MAR[9], "completed"), ("healthy", MAR[10], "completed")]
    assert result.summary() == "4 run(s), 2 failed"
    assert messages(db, "healthy") == ["2026-03-09"] * 2 + ["2026-03-10"] * 2
    assert messages(db, "broken") == []
    status, error, attempts = runs(db)[("broken", MAR[10])]
    assert (status, attempts) == ("failed", 1)
    assert error is not None and error.startswith("database error: ")
    assert f"run broken 2026-03-10: failed: {error}" in caplog.messages
    # A tick leaves failed dates alone; the next full catch-up retries them, oldest first.
    assert ran(catch_up(db.engine, SETTINGS, at(10, 7, 1), retry_failed=False)) == []
    set_rules(db, "fragile", {"all": []})
    assert ran(catch_up(db.engine, SETTINGS, at(10, 7, 2))) == [
        ("broken", MAR[9], "completed"), ("broken", MAR[10], "completed")]
    assert runs(db)[("broken", MAR[10])] == ("completed", None, 2)
    assert messages(db, "broken") == ["2026-03-09"] * 2 + ["2026-03-10"] * 2


def test_a_failed_date_is_retried_after_later_dates_completed(db: Db, tmp_path: Path) -> None:
    people(db)
    load(db, tmp_path, daily_document(daily("healthy", "everyone")), active_since=MAR[8])
    set_rules(db, "everyone", UNRUNNABLE)
    assert ran(catch_up(db.engine, SETTINGS, at(8))) == [("healthy", MAR[8], "failed")]
    set_rules(db, "everyone", {"all": []})
    # Downtime; the ticks of a later day run the missing dates, not the failed one...
    assert ran(catch_up(db.engine, SETTINGS, at(10), retry_failed=False)) == [
        ("healthy", MAR[9], "completed"), ("healthy", MAR[10], "completed")]
    # ...which the next full catch-up (at RUN_AT, or at start) still runs.
    assert ran(catch_up(db.engine, SETTINGS, at(11, 6))) == [
        ("healthy", MAR[8], "completed"), ("healthy", MAR[11], "completed")]


def test_a_hand_run_for_a_future_date_does_not_suspend_the_schedule(db: Db,
                                                                     tmp_path: Path) -> None:
    people(db)
    load(db, tmp_path, daily_document(daily("healthy", "everyone")), active_since=MAR[8])
    assert run(db.engine, "healthy", MAR[20], manual=True).status == "completed"
    assert [r.run_date for r in catch_up(db.engine, SETTINGS, at(10)).runs] == [
        MAR[8], MAR[9], MAR[10]]


def test_days_beyond_the_window_are_recorded_as_skipped(db: Db, tmp_path: Path, nf,  # type: ignore[no-untyped-def]
                                                        caplog: pytest.LogCaptureFixture) -> None:
    people(db)
    load(db, tmp_path, daily_document(daily("healthy", "everyone")), active_since=MAR[1])
    assert run(db.engine, "healthy", MAR[2]).status == "completed"
    caplog.set_level(logging.INFO, "nudgeflow")
    result = catch_up(db.engine, SETTINGS, at(10))
    assert [r.run_date for r in result.runs] == [MAR[7], MAR[8], MAR[9], MAR[10]]
    assert [(s.campaign, s.dates) for s in result.skipped] == [
        ("healthy", [MAR[3], MAR[4], MAR[5], MAR[6]])]
    assert result.summary() == "4 run(s), 0 failed, 4 day(s) skipped beyond the catch-up window"
    reason = ("beyond the catch-up window: more than NUDGEFLOW_CATCHUP_DAYS=3 days before "
              "2026-03-10, when the scheduler caught up (to run it: nudgeflow run --campaign "
              "healthy --date DATE)")
    assert f"healthy: skipped 4 day(s), 2026-03-03 to 2026-03-06: {reason}" in caplog.messages
    got = runs(db)
    assert [got[("healthy", MAR[d])] for d in (3, 4, 5, 6)] == [("skipped", reason, 0)] * 4
    assert ("healthy", MAR[1]) not in got  # before the last run: not the schedule's to judge
    assert catch_up(db.engine, SETTINGS, at(10, 8)).skipped == []  # recorded once
    listed = nf("runs", "--campaign", "healthy").out
    assert f"2026-03-04 healthy v1 skipped: {reason}" in listed
    # A skipped date can still be run by hand.
    assert run(db.engine, "healthy", MAR[4], manual=True).status == "completed"
    assert runs(db)[("healthy", MAR[4])] == ("completed", None, 1)


def test_skipped_and_retried_runs_in_the_api_and_the_runs_page(app: Flask, db: Db,
                                                               tmp_path: Path) -> None:
    people(db)
    load(db, tmp_path, daily_document(daily("healthy", "everyone")), active_since=MAR[1])
    catch_up(db.engine, SETTINGS, at(10))
    run(db.engine, "healthy", MAR[10], manual=True)  # a second attempt at the 10th
    client = app.test_client()
    answer = client.get("/api/v1/runs?campaign=healthy", headers=token_for(db, "viewer"))
    assert answer.status_code == 200
    by_date = {r["run_date"]: r for r in answer.json}
    assert by_date["2026-03-01"]["status"] == "skipped"
    assert by_date["2026-03-01"]["error"].startswith("beyond the catch-up window")
    tenth = by_date["2026-03-10"]
    # P1, P2, and the app's C1, whose message is recorded as skipped (no email address).
    assert tenth["counts"]["m"]["created"] == 3  # what the first attempt created
    assert [(a["attempt"], a["status"], a["counts"]["m"]["created"])
            for a in tenth["attempts"]] == [(1, "completed", 3), (2, "completed", 0)]
    item = client.get(f"/api/v1/runs/{tenth['id']}", headers=token_for(db, "viewer"))
    assert item.status_code == 200
    assert item.json["attempts"] == tenth["attempts"]
    browser, _csrf = session_client(app, "viewer")
    page = browser.get("/runs?campaign=healthy")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<span class="status status-skipped">skipped</span>' in html
    assert "beyond the catch-up window" in html
    total = "Send message: passed 3 · queued 2 · created 3 · skipped: no address on file 1"
    assert f"<li>{total}</li>" in html  # the run's: what the first attempt created
    second = total.replace("created 3", "created 0")
    assert second in html  # in the second attempt's own figures: nothing new


def test_a_campaign_activated_mid_day_runs_today(app: Flask, db: Db, tmp_path: Path) -> None:
    """Activation through the API (the page posts there too) or a campaign file: the next
    tick after RUN_AT runs it for today, not tomorrow."""
    people(db)
    load(db, tmp_path, daily_document(daily("later", "everyone", status="draft"),
                                      daily("filed", "everyone", status="draft")),
         active_since=None)
    settings = Settings(run_at=time(0, 0), catchup_days=3)  # past RUN_AT on the real clock
    schedule = Schedule(db.engine, settings, SoleLeadership())
    assert ran(schedule.tick()) == []
    answer = app.test_client().post("/api/v1/campaigns/later/activate",
                                    headers=token_for(db, "marketer"))
    assert answer.status_code == 200
    assert answer.json["status"] == "active"
    with db.engine.connect() as conn:
        today = conn.execute(select(Campaign.active_since).where(Campaign.key == "later")
                             ).scalar_one()
    assert ran(schedule.tick()) == [("later", today, "completed")]
    import_doc(db, tmp_path, daily_document(daily("filed", "everyone")))
    assert ran(schedule.tick()) == [("filed", today, "completed")]
    assert ran(schedule.tick()) == []
    assert messages(db, "later") == [today.isoformat()] * 3  # P1, P2 and the app's C1


def test_one_leader_at_a_time(db: Db, tmp_path: Path) -> None:
    people(db)
    load(db, tmp_path, daily_document(daily("healthy", "everyone")), active_since=MAR[9])
    first, second = Schedule(db.engine, SETTINGS), Schedule(db.engine, SETTINGS)
    try:
        assert ran(first.tick(at(10))) == [("healthy", MAR[9], "completed"),
                                           ("healthy", MAR[10], "completed")]
        assert second.tick(at(10)) is None and not second.leading
        assert first.tick(at(11)) is not None  # the leader keeps leading
        assert second.tick(at(11)) is None
        first.stop()  # as when its process ends
        taken = second.tick(at(11, 8))
        assert taken is not None and second.leading
        assert ran(taken) == []  # the 11th was run by the first leader
        assert first.tick(at(12)) is None
    finally:
        first.stop()
        second.stop()
    assert {n for _s, _e, n in runs(db).values()} == {1}  # no date was run twice


def test_a_leader_whose_connection_dies_stops_leading(db: Db, tmp_path: Path) -> None:
    if db.dialect != "postgresql":
        pytest.skip("the SQLite lock is a file held by the process: it has no connection")
    load(db, tmp_path, daily_document(daily("healthy", "everyone")), active_since=MAR[10])
    first, second = Schedule(db.engine, SETTINGS), Schedule(db.engine, SETTINGS)
    assert first.tick(at(10)) is not None and second.tick(at(10)) is None
    try:
        lock_conn = first.leadership.conn  # type: ignore[attr-defined]
        pid = lock_conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with db.engine.connect() as conn:  # waits (up to 10 s) until the backend has ended
            assert conn.execute(text("SELECT pg_terminate_backend(:pid, 10000)"),
                                {"pid": pid}).scalar()
        assert second.tick(at(10, 8)) is not None  # the server freed the lock with the session
        assert first.tick(at(10, 8)) is None and not first.leading
    finally:
        first.stop()
        second.stop()


def test_a_tick_that_cannot_reach_the_database_is_reported_not_raised(
        empty_db: Db, caplog: pytest.LogCaptureFixture) -> None:
    schedule = Schedule(empty_db.engine, SETTINGS, SoleLeadership())
    caplog.set_level(logging.INFO, "nudgeflow")
    schedule.job()  # no tables: every query fails
    (line,) = [m for m in caplog.messages if "catch-up not done" in m]
    assert line.startswith("scheduler: catch-up not done, retrying at the next tick: "
                           "database error: ")


def test_scheduler_jobs(db: Db) -> None:
    scheduler = build_scheduler(Schedule(db.engine, Settings(
        run_at=time(7, 30), timezone="Africa/Johannesburg"), SoleLeadership()))
    job = scheduler.get_job("daily")
    assert str(job.trigger) == "cron[hour='7', minute='30']"
    assert str(job.trigger.timezone) == "Africa/Johannesburg"
    assert (job.func.__name__, job.kwargs) == ("job", {"full": True})
    assert str(scheduler.get_job("tick").trigger) == "interval[0:00:10]"
    assert str(scheduler.get_job("dispatch").trigger) == "interval[0:00:30]"
