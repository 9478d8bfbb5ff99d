"""The event campaigns' minute job: runs a date only when new events arrived, folds alike
attempts, leaves other campaigns to the daily schedule, and only on the leader."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from engine.config import Settings
from engine.leader import SoleLeadership
from engine.models import Campaign, Run
from engine.scheduler import Schedule, build_scheduler
from tests.campaign_docs import daily
from tests.conftest import Db
from tests.event_docs import load, occurrence, people, post, sent, welcome

SETTINGS = Settings(run_at=time(6, 0), catchup_days=3)
DAY = date(2026, 3, 2)


def at(hour: int, minute: int, day: int = 2) -> datetime:
    return datetime(2026, 3, day, hour, minute)


def runs(db: Db) -> dict[tuple[str, date], dict[str, Any]]:
    with db.engine.connect() as conn:
        return {(r.key, r.run_date): {"attempts": r.attempts, "finished_at": r.finished_at,
                                      "counts": r.counts}
                for r in conn.execute(select(Campaign.key, Run.run_date, Run.attempts,
                                             Run.finished_at, Run.counts)
                                      .join(Campaign, Campaign.id == Run.campaign_id))}


class Standby:
    def acquire(self) -> bool:
        return False

    def release(self) -> None:
        pass


def ran(results: list[Any] | None) -> list[tuple[str, date]]:
    return [(r.campaign, r.run_date) for r in results or []]


def test_the_minute_job_runs_only_when_new_events_arrived(db: Db, tmp_path: Path) -> None:
    people(db, "ana", "ben")
    everyday = daily("everyday", "everyone")
    load(db, tmp_path, welcome(), everyday)
    schedule = Schedule(db.engine, SETTINGS, SoleLeadership())
    assert ran(schedule.events(at(9, 0))) == []  # no event yet: nothing run, nothing logged
    assert runs(db) == {}

    post(db, {"id": "e1", "customer": "ana", "name": "registered",
              "at": "2026-03-02T09:00:30Z"}, now=at(9, 0))
    assert ran(schedule.events(at(9, 1))) == [("welcome", DAY)]
    assert sent(db) == [("ana", "Welcome", occurrence(db, "e1"))]
    # Within the grace an event stored by a transaction the run did not see is looked for
    # again: run once more, folded into the same entry, creating nothing twice.
    assert ran(schedule.events(at(9, 2))) == [("welcome", DAY)]
    before = runs(db)[("welcome", DAY)]
    assert [(a["attempt"], a.get("folded")) for a in before["attempts"]] == [(2, 2)]
    assert before["counts"]["m"]["created"] == 1
    for minute in (5, 6, 30):  # nothing new: no run, no attempt
        assert ran(schedule.events(at(9, minute))) == []
    assert runs(db)[("welcome", DAY)] == before

    post(db, {"id": "e2", "customer": "ben", "name": "registered",
              "at": "2026-03-02T09:40:00Z"}, now=at(9, 40))
    assert ran(schedule.events(at(9, 41))) == [("welcome", DAY)]
    after = runs(db)[("welcome", DAY)]
    assert len(after["attempts"]) == 1 and after["attempts"][0]["folded"] == 3
    assert after["counts"]["m"]["created"] == 2
    assert sent(db) == sorted([("ana", "Welcome", occurrence(db, "e1")),
                               ("ben", "Welcome", occurrence(db, "e2"))])
    # The schedule campaign is the daily job's, never the minute job's.
    assert ("everyday", DAY) not in runs(db)


def test_an_event_just_before_midnight_is_run_after_it(db: Db, tmp_path: Path) -> None:
    people(db, "ana")
    load(db, tmp_path, welcome())
    schedule = Schedule(db.engine, SETTINGS, SoleLeadership())
    assert ran(schedule.events(at(23, 59))) == []
    post(db, {"id": "e1", "customer": "ana", "name": "registered",
              "at": "2026-03-02T23:59:40Z"}, now=at(23, 59))
    assert ran(schedule.events(at(0, 0, day=3))) == [("welcome", DAY)]
    assert sent(db) == [("ana", "Welcome", occurrence(db, "e1"))]


def test_only_the_leader_runs_event_campaigns(db: Db, tmp_path: Path) -> None:
    people(db, "ana")
    load(db, tmp_path, welcome())
    post(db, {"id": "e1", "customer": "ana", "name": "registered",
              "at": "2026-03-02T09:00:00Z"}, now=at(9, 0))
    assert Schedule(db.engine, SETTINGS, Standby()).events(at(9, 1)) is None
    assert runs(db) == {} and sent(db) == []


def test_the_minute_job_is_scheduled(db: Db) -> None:
    scheduler = build_scheduler(Schedule(db.engine, SETTINGS, SoleLeadership()))
    job = scheduler.get_job("events")
    assert str(job.trigger) == "interval[0:01:00]"
    assert job.func.__name__ == "events_job"


def test_runs_shows_a_folded_attempt(nf, db: Db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    people(db, "ana")
    load(db, tmp_path, welcome())
    schedule = Schedule(db.engine, SETTINGS, SoleLeadership())
    post(db, {"id": "e1", "customer": "ana", "name": "registered",
              "at": "2026-03-02T09:00:30Z"}, now=at(9, 0))
    schedule.events(at(9, 1))
    schedule.events(at(9, 2))
    result = nf("runs")
    assert result.code == 0, result.err
    (line,) = [x for x in result.out.splitlines() if x.startswith("  attempt")]
    assert line.startswith("  attempt 2 2026-03-02T09:02:00 v1 completed (the last of 2 alike "
                           "since 2026-03-02T09:01:00) (")
    assert "m: passed 1, queued 1, created 1" in line  # one message over both attempts


def test_the_daily_catch_up_runs_older_dates_with_new_events(db: Db, tmp_path: Path) -> None:
    people(db, "ana", "ben")
    load(db, tmp_path, welcome())
    schedule = Schedule(db.engine, SETTINGS, SoleLeadership())
    post(db, {"id": "e1", "customer": "ana", "name": "registered",
              "at": "2026-03-02T09:00:00Z"}, now=at(9, 0))
    schedule.events(at(9, 1))
    schedule.events(at(9, 5))
    # Sent on the 2nd, stored on the 5th (the sender was down): the minute job looks back one
    # day only; the daily catch-up looks over its window.
    post(db, {"id": "e2", "customer": "ben", "name": "registered",
              "at": "2026-03-02T20:00:00Z"}, now=at(5, 0, day=5))
    assert ran(schedule.events(at(5, 1, day=5))) == []
    done = schedule.tick(at(6, 0, day=5), full=True)
    assert done is not None and ("welcome", DAY) in ran(done.runs)
    assert sent(db) == sorted([("ana", "Welcome", occurrence(db, "e1")),
                               ("ben", "Welcome", occurrence(db, "e2"))])
