"""The runs log: one row per (campaign, date) that keeps every attempt at it.

A re-run of a date creates no effect twice, so its own figures say "created 0"; the row's
`counts` add up what each attempt created, and `attempts` keeps each attempt's own figures,
status and error, oldest first. A date the scheduler will never run is recorded as `skipped`.

Event campaigns run today's date again whenever new events arrive (every minute at most), so
an attempt like the one before it (same status, version and error) is folded into it rather
than appended: the entry's `folded` says how many attempts it stands for, `first_started_at`
when the first of them began, and its counts add up their effects. The list stays as long as
the number of distinct outcomes, not of minutes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from engine.labels import label
from engine.lookup import ordered_figures
from engine.models import Run
from engine.models.base import utcnow

# Figures that count new effects (nodes/base.py): disjoint between attempts under the
# exactly-once keys, so they add up. Every other figure describes the latest evaluation.
EFFECTS = frozenset({"created", "awarded"})


def figures(counts: dict[str, Any] | None, sep: str = " · ") -> str:
    """One node's run figures in a fixed order: {"skipped": {"opted_out": 1}, "queued": 3} ->
    "queued 3 · skipped: opted out of this channel 1" (api.js shows them the same way)."""
    parts = []
    for name, value in ordered_figures(counts):
        if isinstance(value, dict):
            if value:
                parts.append(f"{name}: " + ", ".join(f"{label(k, 'skip_reasons')} {v}"
                                                     for k, v in value.items()))
        else:
            parts.append(f"{name} {value}")
    return sep.join(parts)


@dataclass(frozen=True)
class Claimed:
    """The runs row an attempt works on, as it stood before this attempt."""

    id: int
    counts: dict[str, Any]
    attempts: list[dict[str, Any]]

    @property
    def number(self) -> int:
        if not self.attempts:
            return 1
        return int(self.attempts[-1].get("attempt", len(self.attempts))) + 1


def merge_counts(total: dict[str, Any], latest: dict[str, Any]) -> dict[str, Any]:
    """The run's counts after an attempt with figures `latest`: effects added, the rest
    replaced (a node of an earlier version keeps what it did)."""
    merged = dict(total)
    for node_id, figures in latest.items():
        before = total.get(node_id, {})
        merged[node_id] = {k: before.get(k, 0) + v if k in EFFECTS else v
                           for k, v in figures.items()}
    return merged


def append_attempt(attempts: list[dict[str, Any]], attempt: dict[str, Any],
                   fold: bool) -> list[dict[str, Any]]:
    """The attempts list with `attempt` appended, or, with `fold`, merged into the last entry
    when that one has the same status, version and error."""
    last = attempts[-1] if attempts else None
    same = last is not None and all(last.get(k) == attempt[k]
                                    for k in ("status", "version", "error"))
    if not (fold and same):
        return [*attempts, attempt]
    assert last is not None
    merged = {**attempt, "folded": int(last.get("folded", 1)) + 1,
              "first_started_at": last.get("first_started_at", last["started_at"]),
              "counts": merge_counts(last.get("counts") or {}, attempt["counts"])}
    return [*attempts[:-1], merged]


def _upsert(conn: Connection) -> Any:
    return pg_insert(Run) if conn.dialect.name == "postgresql" else sqlite_insert(Run)


def claim(conn: Connection, campaign_id: int, version: int, run_date: date,
          now: datetime) -> Claimed:
    """Insert or take over the runs row of (campaign, date). On PostgreSQL the upsert's row lock
    makes a concurrent run of the same campaign and date wait for this one to finish."""
    stmt = _upsert(conn).values(campaign_id=campaign_id, run_date=run_date, version=version,
                                status="running", counts={}, attempts=[], started_at=now)
    row = conn.execute(stmt.on_conflict_do_update(
        index_elements=["campaign_id", "run_date"],
        set_={"status": "running", "version": version, "started_at": now,
              "finished_at": None, "error": None},
    ).returning(Run.id, Run.counts, Run.attempts)).one()
    return Claimed(int(row.id), dict(row.counts or {}), list(row.attempts or []))


def finish(conn: Connection, claimed: Claimed, version: int, started: datetime, *,
           counts: dict[str, Any], timings: dict[str, Any] | None = None,
           error: str | None = None, fold: bool = False) -> int:
    """Record an attempt's end on the row `claim` returned; returns the attempt's number.
    A failed attempt (`error`) changed nothing, so the run's counts stay as they were. With
    `fold` (the event campaigns' minute job), an attempt like the last is folded into it."""
    finished = utcnow()
    status = "failed" if error else "completed"
    attempt = {"attempt": claimed.number, "version": version, "status": status,
               "started_at": started.isoformat(), "finished_at": finished.isoformat(),
               "counts": counts, "error": error}
    values: dict[str, Any] = {"status": status, "error": error, "finished_at": finished,
                              "attempts": append_attempt(claimed.attempts, attempt, fold)}
    if error is None:
        values |= {"counts": merge_counts(claimed.counts, counts), "timings": timings}
    conn.execute(update(Run).where(Run.id == claimed.id).values(**values))
    return claimed.number


def record_skipped(conn: Connection, campaign_id: int, version: int, dates: Iterable[date],
                   reason: str) -> int:
    """Mark dates the scheduler will not run as `skipped`, with the reason; a date that has a
    runs row meanwhile keeps it. Returns how many were recorded."""
    now = utcnow()
    rows = [{"campaign_id": campaign_id, "run_date": d, "version": version, "status": "skipped",
             "counts": {}, "attempts": [], "error": reason, "started_at": now,
             "finished_at": now} for d in dates]
    recorded = 0
    for i in range(0, len(rows), 500):  # within either database's limit of bound parameters
        stmt = _upsert(conn).values(rows[i:i + 500]).on_conflict_do_nothing(
            index_elements=["campaign_id", "run_date"]).returning(Run.id)
        recorded += len(conn.execute(stmt).all())
    return recorded
