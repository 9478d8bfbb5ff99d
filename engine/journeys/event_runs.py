"""The event campaigns' minute job: an event's effects exist within two minutes.

Every minute the scheduler leader runs each active event-triggered campaign for today (and
yesterday, for an event that arrived just after midnight) in the campaign's time zone, but only
when that date has events of the trigger's name received since its last attempt began: one
indexed query per campaign and date, and no runs-log attempt for a minute that brought nothing.
Repeated attempts are folded (engine.runlog), so a busy campaign's attempts list stays short.

An event is received (received_at) before its transaction commits; a run that began in between
does not see it. So "since its last attempt began" reaches GRACE further back: an event stored
by a transaction shorter than GRACE is never missed, at the cost of a re-run or two (folded,
creating nothing twice) after each new event. The daily catch-up (and a process that has just
become the leader) looks the same way over the whole catch-up window, for events that arrived
while no scheduler ran; an event for an older date fires only if that date is run again
(`nudgeflow run --campaign KEY --date D`)."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select

from engine.executor import RunResult, campaign_today, describe_failure, run
from engine.models import Campaign, Event, Run
from engine.models.base import utcnow
from nodes.triggers.event import local_day_bounds

log = logging.getLogger("nudgeflow.scheduler")
GRACE = timedelta(minutes=2)


def event_name(graph: Any) -> str | None:
    """The event name a campaign's trigger waits for, or None if it is no event trigger."""
    for node in (graph or {}).get("nodes", []):
        config = node.get("config") or {}
        if node.get("type") == "trigger" and config.get("kind") == "event":
            return str(config["name"])
    return None


def has_new_events(conn: Connection, campaign: Any, name: str, day: date) -> bool:
    """Whether `day` has events named `name` received since its last attempt began (any, if
    it was never run); read by the (name, at) index, within one day of events."""
    start, end = local_day_bounds(day, campaign.timezone)
    last = conn.execute(select(Run.started_at).where(
        Run.campaign_id == campaign.id, Run.run_date == day)).scalar_one_or_none()
    query = select(Event.id).where(Event.name == name, Event.at >= start, Event.at < end)
    if last is not None:
        query = query.where(Event.received_at > last - GRACE)
    return conn.execute(query.limit(1)).first() is not None


def due(conn: Connection, now: datetime, days_back: int = 1) -> list[tuple[str, date]]:
    """(campaign key, date) pairs to run, oldest date first: today and `days_back` days
    before it, each with new events."""
    out = []
    for c in conn.execute(select(Campaign.id, Campaign.key, Campaign.timezone, Campaign.graph,
                                 Campaign.active_since)
                          .where(Campaign.status == "active").order_by(Campaign.key)):
        name = event_name(c.graph)
        if name is None:
            continue
        today = campaign_today(c.timezone, now)
        for day in (today - timedelta(days=n) for n in range(days_back, -1, -1)):
            if c.active_since is not None and day < c.active_since:
                continue
            if has_new_events(conn, c, name, day):
                out.append((c.key, day))
    return sorted(out, key=lambda pair: (pair[1], pair[0]))


def run_event_campaigns(engine: Engine, now: datetime | None = None,
                        days_back: int = 1) -> list[RunResult]:
    """Run each event campaign's dates with new events (today and `days_back` days before);
    one failure never stops the others. `now` (naive UTC) is the clock, for tests."""
    clock = now or utcnow()
    with engine.connect() as conn:
        pairs = due(conn, clock, days_back)
    results = []
    for key, day in pairs:
        try:
            result = run(engine, key, day, now=now, fold_attempts=True)
        except Exception as exc:  # the campaign went away, the database is gone...
            log.warning("events: run %s %s: not run: %s", key, day, describe_failure(exc))
            continue
        log.log(logging.WARNING if result.status == "failed" else logging.INFO,
                "events: run %s %s: %s%s", key, day, result.status,
                f": {result.error}" if result.error else "")
        results.append(result)
    return results
