"""Events posted by other systems (`POST /api/v1/events`, `nudgeflow import events FILE`):
validated, stored all or nothing, each once by the sender's id.

A record is {"id", "customer", "name", "at", "properties"}: `id` the sender's idempotency key
(1-100 characters), `customer` an existing customer's external id, `name` 1-100 characters,
`at` RFC 3339 with an offset (default: now), stored as naive UTC, `properties` an object. In a
CSV file the properties are `properties.NAME` columns. An id already stored (or given twice) is
a duplicate, counted and skipped, whatever its content. Each event stored writes its
`event_received` activity in the same transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, DateTime, String, cast, func, literal, select

from engine.db import write_transaction
from engine.errors import Problem, ValidationError
from engine.importing import (
    BATCH,
    Located,
    RowError,
    _blank,
    _existing,
    attribute_value,
    batched,
    checked_row,
    from_file,
    parse_text,
)
from engine.models import Activity, Customer, Event
from engine.models.base import utcnow
from engine.segments.dates import day_problem
from engine.sql import among, insert_new, json_object, skipping_duplicates

KEYS = ("id", "customer", "name", "at", "properties")
PROPERTY = "properties."
MAX_EVENTS = 10_000


@dataclass
class EventsResult:
    received: int = 0
    created: int = 0

    @property
    def duplicates(self) -> int:
        return self.received - self.created

    def as_dict(self) -> dict[str, int]:
        return {"received": self.received, "created": self.created,
                "duplicates": self.duplicates}


def parse_at(value: Any, now: datetime) -> datetime:
    """RFC 3339 with an offset ("2025-03-10T09:30:00+02:00", "...Z") as naive UTC; none: now."""
    if _blank(value):
        return now
    if not isinstance(value, str):
        raise RowError("at", f"expected RFC 3339 text with an offset, got {value!r}")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise RowError("at", f"expected RFC 3339 with an offset (2025-03-10T09:30:00+02:00), "
                             f"got {value!r}") from None
    if moment.tzinfo is None:
        raise RowError("at", f"expected a date and time with an offset (Z or +02:00), "
                             f"got {value!r}")
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    if (why := day_problem(utc.date())) is not None:
        raise RowError("at", why)
    return utc


def fold_properties(record: dict[str, Any]) -> dict[str, Any]:
    """`properties.NAME` columns (CSV) into the `properties` object; an empty cell is absent."""
    columns = [k for k in record if k.startswith(PROPERTY)]
    if not columns:
        return record
    if "properties" in record:
        raise RowError("properties", "give properties as an object or as properties.NAME "
                                     "columns, not both")
    folded = {k: v for k, v in record.items() if not k.startswith(PROPERTY)}
    folded["properties"] = {k.removeprefix(PROPERTY): attribute_value(record[k])
                            for k in columns if not _blank(record[k])}
    return folded


def event_row(record: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Validate one record into the events columns (the customer still by external id)."""
    record = fold_properties(record)
    unknown = sorted(set(record) - set(KEYS))
    if unknown:
        raise RowError(unknown[0], f"unknown key (expected {', '.join(KEYS)}, or "
                                   f"properties.NAME columns in a CSV file)")
    row: dict[str, Any] = {}
    for key, column in (("id", "external_id"), ("customer", "customer"), ("name", "name")):
        value = parse_text(record.get(key), key)
        if value is None:
            raise RowError(key, "required")
        if key != "customer" and len(value) > 100:
            raise RowError(key, f"at most 100 characters, got {len(value)}")
        row[column] = value
    row["at"] = parse_at(record.get("at"), now)
    properties = record.get("properties")
    if properties is not None and not isinstance(properties, dict):
        raise RowError("properties", f"expected an object, got {type(properties).__name__}")
    row["properties"] = properties or {}
    return row


def _activities(conn: Connection, ids: list[int], now: datetime) -> None:
    """One `event_received` activity per new event, in one INSERT ... SELECT."""
    e = Event.__table__.c
    properties = e.properties if conn.dialect.name == "postgresql" else func.json(e.properties)
    insert_new(conn, Activity.__table__, select(  # type: ignore[arg-type]
        e.customer_id, literal(now, DateTime).label("at"),
        literal("event_received").label("kind"),
        (literal("event:") + cast(e.id, String)).label("occurrence"),
        (literal("Event ") + e.name + literal(" received")).label("summary"),
        json_object(conn, event_id=e.external_id, name=e.name, properties=properties
                    ).label("details"),
    ).where(among(conn, e.id, ids)))


def _store(conn: Connection, rows: list[tuple[str, dict[str, Any]]], problems: list[Problem],
           now: datetime, failed: bool) -> int:
    """Insert the events, unless a customer is unknown (added to `problems`) or the import has
    `failed` already (the transaction rolls back anyway); returns how many were new."""
    customers = _existing(conn, Customer.__table__,  # type: ignore[arg-type]
                          {r["customer"] for _, r in rows})
    ready = []
    for where, row in rows:
        customer_id = customers.get(row["customer"])
        if customer_id is None:
            problems.append(Problem(where, f"customer: no customer {row['customer']!r}"))
            continue
        ready.append({"external_id": row["external_id"], "customer_id": customer_id,
                      "name": row["name"], "at": row["at"], "properties": row["properties"],
                      "received_at": now})
    if failed or problems or not ready:
        return 0  # the transaction rolls back anyway: no need to write
    new = list(conn.execute(skipping_duplicates(conn, Event.__table__).returning(Event.id),
                            ready).scalars())
    if new:
        _activities(conn, new, now)
    return len(new)


def ingest(engine: Any, records: Iterable[Located], title: str = "events",
           now: datetime | None = None) -> EventsResult:
    """Validate and store events, all or nothing; a known id is a duplicate, not an error."""
    result = EventsResult()
    problems: list[Problem] = []
    table = Event.__table__
    with write_transaction(engine) as conn:
        # Taken once the transaction holds the write lock (SQLite): a run that starts after
        # it sees these events, and received_at is never older than a run that missed them
        # by more than the minute job's grace (engine.journeys.event_runs).
        now = now or utcnow()
        for chunk in batched(records, BATCH):
            good: list[tuple[str, dict[str, Any]]] = []
            found: list[Problem] = []
            for where, _label, record in chunk:
                result.received += 1
                row, bad = checked_row(table, where, record,
                                       lambda r: event_row(r, now))  # type: ignore[arg-type]
                if row is None:
                    found.extend(bad)
                    continue
                good.append((where, row))
            if good:
                result.created += _store(conn, good, found, now, failed=bool(problems))
            # In the order of the records (unknown customers are found after the rest).
            order = {where: i for i, (where, _label, _record) in enumerate(chunk)}
            problems.extend(sorted(found, key=lambda p: order[p.where]))
        if problems:
            # Raising inside the transaction rolls back every batch already written.
            raise ValidationError(problems, title=f"{title}: {len(problems)} error(s)")
    return result


def import_events(engine: Any, path: Path) -> EventsResult:
    return ingest(engine, from_file(path), title=str(path))
