"""The daily schedule. APScheduler fires the daily job at NUDGEFLOW_RUN_AT; the engine catches
up by itself, because APScheduler drops a job missed during downtime and its job stores cannot be
shared between processes: each active campaign runs every date since its last completed run,
oldest first, at most NUDGEFLOW_CATCHUP_DAYS back and never before it was activated."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, func, select

from engine.config import Settings
from engine.db import write_transaction
from engine.executor import RunResult, campaign_today, run
from engine.ledger import expire
from engine.models import Campaign, Run

log = logging.getLogger("nudgeflow.scheduler")


def due_dates(last_done: date | None, active_since: date | None, today: date,
              catchup_days: int) -> list[date]:
    """The dates a campaign still has to run, oldest first."""
    start = today - timedelta(days=catchup_days)
    if active_since is not None:
        start = max(start, active_since)
    if last_done is not None:
        start = max(start, last_done + timedelta(days=1))
    return [start + timedelta(days=i) for i in range((today - start).days + 1)]


def catch_up(engine: Engine, settings: Settings, today: date | None = None) -> list[RunResult]:
    """Run every active campaign for every date it has missed, then expire points."""
    with engine.connect() as conn:
        done = dict(conn.execute(
            select(Run.campaign_id, func.max(Run.run_date))
            .where(Run.status == "completed").group_by(Run.campaign_id)).all())
        campaigns = conn.execute(
            select(Campaign.id, Campaign.key, Campaign.timezone, Campaign.active_since)
            .where(Campaign.status == "active").order_by(Campaign.key)).all()
    results = []
    for c in campaigns:
        local_today = today or campaign_today(c.timezone)
        for day in due_dates(done.get(c.id), c.active_since, local_today, settings.catchup_days):
            result = run(engine, c.key, day)
            log.info("run %s %s: %s", c.key, day, result.status)
            results.append(result)
    with write_transaction(engine) as conn:
        expired = expire(conn, today or campaign_today(settings.timezone))
    log.info("expired %d accrual(s)", expired)
    return results


def dispatch_due(engine: Engine, settings: Settings) -> None:
    from engine.channels import channels_for
    from engine.outbox import dispatch

    stats = dispatch(engine, settings, channels_for(settings))
    if stats.claimed:
        log.info("dispatched: %s", stats)


def build_scheduler(engine: Engine, settings: Settings, **jobs: Any) -> BackgroundScheduler:
    """A scheduler with the daily catch-up job and the dispatcher (every 30 s); extra jobs
    (name=(func, trigger)) may be added."""
    scheduler = BackgroundScheduler(timezone=settings.timezone)
    scheduler.add_job(
        catch_up, CronTrigger(hour=settings.run_at.hour, minute=settings.run_at.minute,
                              timezone=settings.timezone),
        args=[engine, settings], id="daily", coalesce=True, max_instances=1,
        misfire_grace_time=3600,
    )
    scheduler.add_job(dispatch_due, IntervalTrigger(seconds=30), args=[engine, settings],
                      id="dispatch", coalesce=True, max_instances=1)
    for name, (fn, trigger) in jobs.items():
        scheduler.add_job(fn, trigger, id=name, coalesce=True, max_instances=1)
    return scheduler
