"""Row-at-a-time helpers for the small writers that share the import's checks: event ingest
(engine.journeys.events) checks each record with `checked_row`, the demo seed upserts its
rows with `upsert`. Files of customers and invoices go through engine.importing.run."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from sqlalchemy import Connection, FromClause, Table, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from engine.errors import Problem
from engine.importing.cells import RowError
from engine.limits import column_problems, value_problems

BATCH = 2000
Located = tuple[str, str, dict[str, Any]]  # (where, what to call it, record)


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def checked_row(table: FromClause, where: str, record: dict[str, Any],
                build: Callable[[dict[str, Any]], dict[str, Any]]
                ) -> tuple[dict[str, Any] | None, list[Problem]]:
    """A record built into a row, or the problems that stop it, each named at `where`: values
    no database can take (NUL, NaN, ...), a row error, text too long for its column."""
    if bad := value_problems(record):
        return None, [Problem(where, f"{p.where.removeprefix('$.')}: {p.message}") for p in bad]
    try:
        row = build(record)
    except RowError as exc:
        return None, [Problem(where, str(exc))]
    if too_big := column_problems(table, row):
        return None, [Problem(where, f"{c}: {m}") for c, m in too_big]
    return row, []


def upsert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows, updating the given columns of those whose external_id exists."""
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        by_shape.setdefault(tuple(sorted(row)), []).append(row)
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    for columns, group in by_shape.items():
        stmt = insert(table)
        updates: dict[str, Any] = {
            c: stmt.excluded[c] for c in columns if c not in ("external_id", "attributes")
        }
        if "attributes" in columns:
            if conn.dialect.name == "postgresql":
                updates["attributes"] = table.c.attributes.op("||")(stmt.excluded.attributes)
            else:
                updates["attributes"] = func.json_patch(
                    table.c.attributes, stmt.excluded.attributes
                )
        if "updated_at" in table.c:
            updates["updated_at"] = func.now()
        conn.execute(
            stmt.on_conflict_do_update(index_elements=["external_id"], set_=updates), group
        )


def _existing(conn: Connection, table: Table, ids: Iterable[str]) -> dict[str, int]:
    rows = conn.execute(
        select(table.c.external_id, table.c.id).where(table.c.external_id.in_(list(ids)))
    )
    return {ext: pk for ext, pk in rows}
