"""Portable SQL building blocks for set-based effects (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TypeAlias

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Connection,
    FromClause,
    Integer,
    Select,
    String,
    Table,
    and_,
    any_,
    cast,
    func,
    literal,
    literal_column,
    null,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import BIT
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.expression import ColumnElement

BIT32 = BIT(32)
# A SELECT of any columns (SQLAlchemy 2.1 types Select by its column types).
AnySelect: TypeAlias = "Select[*tuple[Any, ...]]"


def insert_new(conn: Connection, table: Table, select: Select[Any]) -> int:
    """INSERT ... SELECT skipping rows whose unique key already exists; returns rows added.

    The unique keys make this the exactly-once step: a second run, a concurrent run (which
    waits on the first's uncommitted rows and then skips them) or a re-run after a crash adds
    only what is missing."""
    # `WHERE true` keeps SQLite from reading ON CONFLICT as a join's ON clause.
    stmt = skipping_duplicates(conn, table).from_select(
        [c.name for c in select.selected_columns], select.where(true()))
    return rowcount(conn, stmt)


def last_id(conn: Connection, table: FromClause) -> int:
    """The table's highest id so far (0 when empty): what `added_since` reads after."""
    return int(conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one())


def added_since(table: FromClause, before: int, run_id: int | None) -> ColumnElement[bool]:
    """The rows this run's last insert into `table` added, read by primary key: those with an
    id above `last_id` taken just before it and this run's id. Ids only grow (SQLite's are
    max + 1 under the write lock; PostgreSQL's come from a sequence), and a row another
    transaction added meanwhile carries another run's id. Cheaper than joining the added rows
    back to what was inserted on their unique key."""
    return and_(table.c.id > before, table.c.run_id == run_id)  # type: ignore[no-any-return]


def skipping_duplicates(conn: Connection, table: Any) -> Any:
    """INSERT INTO table ... ON CONFLICT DO NOTHING."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    return insert(table).on_conflict_do_nothing()


def rowcount(conn: Connection, stmt: Any) -> int:
    """Rows an INSERT ... SELECT wrote (SQLAlchemy keeps the count only when asked to)."""
    return int(conn.execute(stmt.execution_options(preserve_rowcount=True)).rowcount)


def json_object(conn: Connection, **items: Any) -> ColumnElement[Any]:
    """A JSON object built in SQL from column expressions."""
    fn = func.jsonb_build_object if conn.dialect.name == "postgresql" else func.json_object
    args: list[Any] = []
    for key, value in items.items():
        assert key.isidentifier()  # keys are ours, never user input
        args.extend([literal_column(f"'{key}'"), value])
    return fn(*args)


def json_object_no_nulls(conn: Connection, **items: Any) -> ColumnElement[Any]:
    """json_object() without the members whose value is NULL."""
    built = json_object(conn, **items)
    if conn.dialect.name == "postgresql":
        return func.jsonb_strip_nulls(built)
    return func.json_patch("{}", built)  # a merge patch drops null members


def among(conn: Connection, column: Any, ids: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN (ids)` for a batch as one parameter, so a 1,000-id batch is not 1,000
    parameters to bind and a statement compiled anew each time: on PostgreSQL an array
    (`= ANY(:ids)`), on SQLite a JSON array read by json_each."""
    if conn.dialect.name == "postgresql":
        return column == any_(literal(list(ids), ARRAY(column.type)))  # type: ignore[no-any-return]
    listed = func.json_each(literal(json.dumps(list(ids)), String)).table_valued("value")
    return column.in_(select(listed.c.value))  # type: ignore[no-any-return]


def no_invoice() -> ColumnElement[Any]:
    return cast(null(), Integer).label("invoice_id")


def bucket(conn: Connection, text: ColumnElement[Any]) -> ColumnElement[int]:
    """A stable number 0-99 for a text, the same on both databases and in Python
    (engine.db.bucket_of): the first 32 bits of its MD5, modulo 100."""
    if conn.dialect.name == "postgresql":
        head: ColumnElement[Any] = literal_column("'x'", String) + func.substr(
            func.md5(text), 1, 8, type_=String)
        return func.mod(cast(cast(head, BIT32), BigInteger), 100)  # type: ignore[no-any-return]
    return func.nf_bucket(text, type_=Integer)  # type: ignore[no-any-return]
