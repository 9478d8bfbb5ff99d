"""Catch-up after downtime: every missed date since the last completed run, oldest first."""

from __future__ import annotations

import json
from datetime import date, time
from pathlib import Path

from sqlalchemy import select, update

from engine.campaigns import import_file
from engine.config import Settings
from engine.db import write_transaction
from engine.models import Campaign, Run
from engine.scheduler import build_scheduler, catch_up, due_dates
from tests.campaign_docs import MONTHLY, document
from tests.conftest import Db


def test_due_dates() -> None:
    today = date(2026, 3, 10)
    assert due_dates(date(2026, 3, 7), date(2026, 1, 1), today, 7) == [
        date(2026, 3, 8), date(2026, 3, 9), date(2026, 3, 10)]
    # Bounded by NUDGEFLOW_CATCHUP_DAYS and by the activation date.
    assert due_dates(None, date(2026, 1, 1), today, 2) == [
        date(2026, 3, 8), date(2026, 3, 9), date(2026, 3, 10)]
    assert due_dates(None, date(2026, 3, 10), today, 7) == [today]
    assert due_dates(today, date(2026, 1, 1), today, 7) == []


def test_catch_up_runs_missed_days_oldest_first(db: Db, tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(document(MONTHLY)))
    import_file(db.engine, path)
    with write_transaction(db.engine) as conn:
        conn.execute(update(Campaign).values(active_since=date(2026, 1, 1)))
    settings = Settings(catchup_days=3)
    results = catch_up(db.engine, settings, today=date(2026, 3, 10))
    assert [(r.campaign, r.run_date) for r in results] == [
        ("month-end", date(2026, 3, d)) for d in (7, 8, 9, 10)]
    assert catch_up(db.engine, settings, today=date(2026, 3, 10)) == []
    results = catch_up(db.engine, settings, today=date(2026, 3, 12))
    assert [r.run_date for r in results] == [date(2026, 3, 11), date(2026, 3, 12)]
    with db.engine.connect() as conn:
        assert conn.execute(select(Run.status).distinct()).scalars().all() == ["completed"]


def test_scheduler_has_the_daily_job_at_run_at(db: Db) -> None:
    scheduler = build_scheduler(db.engine, Settings(run_at=time(7, 30),
                                                    timezone="Africa/Johannesburg"))
    job = scheduler.get_job("daily")
    assert str(job.trigger) == "cron[hour='7', minute='30']"
    assert str(job.trigger.timezone) == "Africa/Johannesburg"
