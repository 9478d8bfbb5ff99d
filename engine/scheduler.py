"""The schedule. Each day's runs are due from NUDGEFLOW_RUN_AT (workspace time) on; the engine
catches up by itself, because APScheduler drops a job missed during downtime and its job stores
cannot be shared between processes.

A catch-up runs, for each active campaign, every date of the window that has no completed run:
never run, or failed (a failed date is retried whatever later dates did), oldest first. The
window ends with the date due at the latest RUN_AT (today once it has passed, else yesterday),
reaches NUDGEFLOW_CATCHUP_DAYS back and never before the campaign was activated. Dates before
the window that were never run are recorded as skipped, with the reason. Each (campaign, date)
run fails alone. Only the scheduler leader (engine.leader) runs campaigns."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Connection, Engine, func, select

from engine import runlog
from engine.config import Settings
from engine.db import write_transaction
from engine.executor import RunResult, campaign_today, describe_failure, run
from engine.leader import Leadership, leadership_for
from engine.ledger import expire
from engine.models import Campaign, Run
from engine.models.base import utcnow
from engine.retention.prune import watermark

log = logging.getLogger("nudgeflow.scheduler")
# How often the leader looks for due runs (a campaign activated mid-day, a date a new leader
# inherits) and a standby process tries to take over.
TICK_SECONDS = 10


def latest_run_at(now: datetime, run_at: time, timezone: str) -> datetime:
    """The latest moment at or before `now` (naive UTC) when the workspace clock read
    `run_at`, as naive UTC."""
    zone = ZoneInfo(timezone)
    local = now.replace(tzinfo=UTC).astimezone(zone)
    for days_back in (0, 1):
        fired = datetime.combine(local.date() - timedelta(days=days_back), run_at,
                                 tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
        if fired <= now:
            return fired
    raise AssertionError("a day has a RUN_AT")  # pragma: no cover


@dataclass(frozen=True)
class Plan:
    """What a catch-up does for one campaign: dates to run and dates to mark skipped."""

    run: list[date]
    skip: list[date]


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def plan(statuses: Mapping[date, str], *, due_through: date, active_since: date | None,
         catchup_days: int, last_before_window: date | None, retry_failed: bool) -> Plan:
    """The dates to run, oldest first: those of the window without a run (or whose run
    failed, with `retry_failed`); and the never-run dates between the activation (or the
    last runs row before the window) and the window, which the schedule will not run."""
    window_start = due_through - timedelta(days=catchup_days)
    start = max(window_start, active_since) if active_since else window_start
    redo = {"skipped", "failed"} if retry_failed else {"skipped"}
    to_run = [d for d in _days(start, due_through)
              if d not in statuses or statuses[d] in redo]
    skip: list[date] = []
    if active_since is not None and active_since < window_start:
        skip_from = active_since
        if last_before_window is not None:
            skip_from = max(skip_from, last_before_window + timedelta(days=1))
        skip = _days(skip_from, window_start - timedelta(days=1))
    return Plan(to_run, skip)


@dataclass(frozen=True)
class Skipped:
    campaign: str
    dates: list[date]


@dataclass
class CatchUp:
    runs: list[RunResult] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    expired: int = 0

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.runs if r.status == "failed"]

    def summary(self) -> str:
        days = sum(len(s.dates) for s in self.skipped)
        return (f"{len(self.runs)} run(s), {len(self.failed)} failed"
                + (f", {days} day(s) skipped beyond the catch-up window" if days else ""))


def skip_reason(key: str, catchup_days: int, due_through: date) -> str:
    return (f"beyond the catch-up window: more than NUDGEFLOW_CATCHUP_DAYS={catchup_days} "
            f"days before {due_through.isoformat()}, when the scheduler caught up (to run it: "
            f"nudgeflow run --campaign {key} --date DATE)")


def _last_before(conn: Connection, campaign_id: int, before: date) -> date | None:
    return conn.execute(select(func.max(Run.run_date)).where(
        Run.campaign_id == campaign_id, Run.run_date < before)).scalar_one()


def catch_up(engine: Engine, settings: Settings, now: datetime | None = None, *,
             retry_failed: bool = True) -> CatchUp:
    """Run every active campaign for every due date it has not completed, record the dates it
    is too late for, then (with `retry_failed`, the daily and first catch-up) expire points.
    `now` (naive UTC) is the clock, for tests; a failure of one run never stops the others."""
    clock = now or utcnow()
    fired = latest_run_at(clock, settings.run_at, settings.timezone)
    done = CatchUp()
    with engine.connect() as conn:
        campaigns = conn.execute(
            select(Campaign.id, Campaign.key, Campaign.version, Campaign.timezone,
                   Campaign.active_since)
            .where(Campaign.status == "active").order_by(Campaign.key)).all()
        through = {c.id: campaign_today(c.timezone, fired) for c in campaigns}
        earliest = min(through.values(), default=fired.date()) - timedelta(
            days=settings.catchup_days)
        statuses: dict[int, dict[date, str]] = {c.id: {} for c in campaigns}
        for row in conn.execute(select(Run.campaign_id, Run.run_date, Run.status).where(
                Run.campaign_id.in_(list(statuses)), Run.run_date >= earliest)):
            statuses[row.campaign_id][row.run_date] = row.status
        pruned = watermark(conn)  # dates before it are gone: never run them again
        plans = {}
        for c in campaigns:
            window_start = through[c.id] - timedelta(days=settings.catchup_days)
            last = (_last_before(conn, c.id, window_start)
                    if c.active_since and c.active_since < window_start else None)
            plans[c.id] = plan(statuses[c.id], due_through=through[c.id],
                               active_since=c.active_since, catchup_days=settings.catchup_days,
                               last_before_window=last, retry_failed=retry_failed)
            if pruned is not None:
                plans[c.id] = Plan([d for d in plans[c.id].run if d >= pruned],
                                   [d for d in plans[c.id].skip if d >= pruned])
    for c in campaigns:
        _skip(engine, c, plans[c.id].skip, skip_reason(c.key, settings.catchup_days, through[c.id]),
              done)
        for day in plans[c.id].run:
            try:
                result = run(engine, c.key, day, now=now)
            except Exception as exc:  # the campaign went away, the database is gone...
                log.warning("run %s %s: not run: %s", c.key, day, describe_failure(exc))
                continue
            log.log(logging.WARNING if result.status == "failed" else logging.INFO,
                    "run %s %s: %s%s", c.key, day, result.status,
                    f": {result.error}" if result.error else "")
            done.runs.append(result)
    if retry_failed:
        try:
            with write_transaction(engine) as conn:
                done.expired = expire(conn, clock.replace(tzinfo=UTC).astimezone(
                    ZoneInfo(settings.timezone)).date())
            if done.expired:
                log.info("expired %d accrual(s)", done.expired)
        except Exception as exc:
            log.warning("expiry: not done: %s", describe_failure(exc))
    return done


def _skip(engine: Engine, campaign: Any, dates: list[date], reason: str, done: CatchUp) -> None:
    if not dates:
        return
    try:
        with write_transaction(engine) as conn:
            runlog.record_skipped(conn, campaign.id, campaign.version, dates, reason)
    except Exception as exc:
        log.warning("%s: could not record skipped days: %s", campaign.key,
                    describe_failure(exc))
        return
    done.skipped.append(Skipped(campaign.key, dates))
    log.warning("%s: skipped %d day(s), %s to %s: %s", campaign.key, len(dates), dates[0],
                dates[-1], reason)


class Schedule:
    """The scheduler of one `serve` or `worker` process: it runs campaigns while it leads."""

    def __init__(self, engine: Engine, settings: Settings,
                 leadership: Leadership | None = None) -> None:
        self.engine, self.settings = engine, settings
        self.leadership = leadership or leadership_for(engine)
        self.leading = False
        self.closed = False  # stopping: this process must not take the lead any more
        # One tick at a time in this process: the daily job and the tick share the lock's
        # connection, and two catch-ups would run the same dates.
        self._busy = threading.Lock()

    def tick(self, now: datetime | None = None, *, full: bool = False) -> CatchUp | None:
        """Catch up if this process leads: the dates without a run (a campaign activated
        mid-day); with `full`, or when it has just become the leader, failed dates too, and
        the event campaigns' dates of the window with new events. None on a standby process."""
        with self._busy:
            if self.closed:
                return None
            leading = self.leadership.acquire()
            became = leading and not self.leading
            if leading != self.leading:
                log.info("scheduler: %s", "this process leads: it runs the campaigns"
                         if leading else "this process lost the lead (its lock is gone)")
            self.leading = leading
            if not leading:
                return None
            done = catch_up(self.engine, self.settings, now, retry_failed=full or became)
            if full or became:  # events that came while no scheduler ran, over the window
                from engine.journeys.event_runs import run_event_campaigns

                done.runs += run_event_campaigns(self.engine, now, self.settings.catchup_days)
            return done

    def job(self, full: bool = False) -> None:
        """`tick` as a scheduler job: a failure (the database away) is reported in a line, and
        the next tick tries again."""
        try:
            self.tick(full=full)
        except Exception as exc:
            log.warning("scheduler: catch-up not done, retrying at the next tick: %s",
                        describe_failure(exc))

    def events(self, now: datetime | None = None) -> list[RunResult] | None:
        """Run the event campaigns' dates with new events (engine.journeys.event_runs) if this process
        leads; None on a standby process."""
        from engine.journeys.event_runs import run_event_campaigns

        with self._busy:
            if self.closed or not self.leadership.acquire():
                return None
            return run_event_campaigns(self.engine, now)

    def events_job(self) -> None:
        """`events` as a scheduler job: a failure is reported in a line, retried next minute."""
        try:
            self.events()
        except Exception as exc:
            log.warning("scheduler: event campaigns not run, retrying in a minute: %s",
                        describe_failure(exc))

    def stop(self) -> None:
        self.closed = True  # a tick still running (shutdown does not wait) takes no lead
        self.leadership.release()
        self.leading = False


def dispatch_due(engine: Engine, settings: Settings) -> None:
    from engine.channels import channels_for
    from engine.outbox import dispatch

    stats = dispatch(engine, settings, channels_for(settings))
    if stats.claimed:
        log.info("dispatched: %s", stats)


def build_scheduler(schedule: Schedule, dispatch_seconds: int = 30,
                    **jobs: Any) -> BackgroundScheduler:
    """A scheduler with the daily catch-up at NUDGEFLOW_RUN_AT, the leader's tick (every
    TICK_SECONDS), the event campaigns' minute job and the dispatcher (every
    `dispatch_seconds`); extra jobs (name=(func, trigger))."""
    settings = schedule.settings
    scheduler = BackgroundScheduler(timezone=settings.timezone)
    scheduler.add_job(
        schedule.job, CronTrigger(hour=settings.run_at.hour, minute=settings.run_at.minute,
                                   timezone=settings.timezone),
        kwargs={"full": True}, id="daily", coalesce=True, max_instances=1,
        misfire_grace_time=3600,
    )
    scheduler.add_job(schedule.job, IntervalTrigger(seconds=TICK_SECONDS), id="tick",
                      coalesce=True, max_instances=1)
    scheduler.add_job(schedule.events_job, IntervalTrigger(minutes=1), id="events",
                      coalesce=True, max_instances=1)
    scheduler.add_job(dispatch_due, IntervalTrigger(seconds=dispatch_seconds),
                      args=[schedule.engine, settings], id="dispatch", coalesce=True,
                      max_instances=1)
    for name, (fn, trigger) in jobs.items():
        scheduler.add_job(fn, trigger, id=name, coalesce=True, max_instances=1)
    return scheduler
