"""`nudgeflow prune --before DATE`: remove the messages and activities of every date before
DATE, in chunks, keeping what exactly-once needs.

The exactly-once keys live in the rows pruned: once a date's messages are gone, running that
date again would queue them again. So the prune first records a watermark (settings
`pruned_before`), under the row locks of the runs it prunes, and every run of an earlier date
is refused from then on (engine.executor.run checks it again under its own claim, so a run in
flight cannot slip past). The runs rows stay (the runs log, and the watermark's witness), and
so does the points ledger: balances never change.

What goes: the messages made by the runs of dates before DATE (with their provider events),
their activities and those runs' other activities (points awarded), and the activities of no
run or message (events received, profile changes) logged before DATE (UTC). Refused: a DATE
inside the catch-up window (the scheduler may still run those dates), and a prune that would
remove messages still queued, held or sending."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, or_, select

from engine.db import write_transaction
from engine.errors import NudgeflowError, PrunedDate
from engine.models import Activity, Campaign, Message, Run, Setting
from engine.workspace import set_setting

log = logging.getLogger("nudgeflow.prune")
WATERMARK = "pruned_before"
CHUNK = 10_000
UNFINISHED = ("queued", "held", "sending")


def watermark(conn: Connection) -> date | None:
    """The first date that may still be run, if anything was pruned."""
    value = conn.execute(select(Setting.value).where(Setting.key == WATERMARK)).scalar_one_or_none()
    return date.fromisoformat(value["date"]) if value else None


def refuse_pruned(conn: Connection, key: str, run_date: date) -> None:
    """Raise PrunedDate if `run_date` is before the watermark."""
    mark = watermark(conn)
    if mark is not None and run_date < mark:
        raise PrunedDate(
            f"campaign {key!r}: {run_date.isoformat()} is before {mark.isoformat()}, the date "
            f"`nudgeflow prune` removed messages and activities before; running it again "
            f"would send its messages again, so it is refused")


@dataclass(frozen=True)
class Pruned:
    before: date
    messages: int
    activities: int
    dry_run: bool

    def as_dict(self) -> dict[str, Any]:
        return {"before": self.before.isoformat(), "messages": self.messages,
                "activities": self.activities, "dry_run": self.dry_run}


def _old_runs(before: date) -> Any:
    return select(Run.id).where(Run.run_date < before)


def _messages(before: date) -> Any:
    """The messages of the runs of dates before `before`."""
    return Message.run_id.in_(_old_runs(before))


def _activities(before: date) -> Any:
    """The activities of those runs and messages, and the others (an event received, a
    profile change) logged before `before` (UTC midnight). Each link is tested by primary key,
    so one pass over the table finds them all."""
    old_run = select(Run.id).where(Run.id == Activity.run_id, Run.run_date < before).exists()
    old_message = (select(Message.id).join(Run, Run.id == Message.run_id)
                   .where(Message.id == Activity.message_id, Run.run_date < before).exists())
    return or_(old_run, old_message,
               and_(Activity.run_id.is_(None), Activity.message_id.is_(None),
                    Activity.at < datetime.combine(before, time())))


def check(conn: Connection, before: date, today: date, catchup_days: int) -> None:
    """Refuse a DATE the scheduler may still run, or messages not yet finished."""
    first_kept = today - timedelta(days=max(catchup_days, 1))
    if before > first_kept:
        raise NudgeflowError(
            f"--before {before.isoformat()}: the scheduler may still run dates from "
            f"{first_kept.isoformat()} (today {today.isoformat()} less "
            f"NUDGEFLOW_CATCHUP_DAYS={catchup_days}, and at least a day for other time "
            f"zones); choose {first_kept.isoformat()} or earlier")
    waiting = conn.execute(
        select(Campaign.key, Message.status, func.count())
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(_messages(before), Message.status.in_(UNFINISHED))
        .group_by(Campaign.key, Message.status).order_by(Campaign.key, Message.status)).all()
    if waiting:
        listed = ", ".join(f"{n} {status} in {key!r}" for key, status, n in waiting)
        raise NudgeflowError(
            f"--before {before.isoformat()}: messages of those dates have not finished "
            f"({listed}); let them be sent, or cancel them (nudgeflow messages cancel), first")


def _count(conn: Connection, model: Any, where: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(model).where(where)).scalar_one())


def prune(engine: Engine, before: date, *, today: date, catchup_days: int,
          dry_run: bool = False, chunk: int = CHUNK) -> Pruned:
    """Remove the messages and activities of the dates before `before` (see the module)."""
    if dry_run:
        with engine.connect() as conn:
            check(conn, before, today, catchup_days)
            return Pruned(before, _count(conn, Message, _messages(before)),
                          _count(conn, Activity, _activities(before)), True)
    with write_transaction(engine) as conn:
        # Lock the runs of those dates: a re-run in flight finishes first, and any later one
        # sees the watermark when it claims its row (engine.executor.run).
        conn.execute(select(Run.id).where(Run.run_date < before).with_for_update())
        check(conn, before, today, catchup_days)
        mark = watermark(conn)
        if mark is None or before > mark:
            set_setting(conn, WATERMARK, {"date": before.isoformat()})
    activities = _chunks(engine, Activity, _activities(before), chunk)
    messages = _chunks(engine, Message, _messages(before), chunk)
    log.info("pruned before %s: %d message(s), %d activit(ies)", before, messages, activities)
    return Pruned(before, messages, activities, False)


def _chunks(engine: Engine, model: Any, where: Any, chunk: int) -> int:
    """Delete the rows `where` selects, `chunk` at a time in id order, each chunk its own
    transaction (short locks, a bounded WAL)."""
    removed, last = 0, 0
    while True:
        with write_transaction(engine) as conn:
            ids = list(conn.execute(select(model.id).where(where, model.id > last)
                                    .order_by(model.id).limit(chunk)).scalars())
            if ids:
                conn.execute(delete(model).where(model.id.in_(ids)))
        if not ids:
            return removed
        removed, last = removed + len(ids), ids[-1]
