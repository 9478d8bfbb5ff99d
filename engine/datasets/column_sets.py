"""Column sets: a data set's choice of columns saved under a name, for every user to pick."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from engine.datasets import parse_columns
from engine.errors import NotFound, Problem, ValidationError
from engine.models import ColumnSet
from engine.models.base import utcnow

NAME_LENGTH = 100


def _name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= NAME_LENGTH:
        raise ValidationError([Problem("name", f"1 to {NAME_LENGTH} characters")],
                              title="invalid column set")
    return name


def save(conn: Connection, name: str, columns: Any, saved_by: str | None) -> bool:
    """Save (or replace) the set; True when it is new. The columns are checked as a data set's."""
    name = _name(name)
    if not isinstance(columns, str | list) or (isinstance(columns, list) and not all(
            isinstance(c, str) for c in columns)):
        raise ValidationError([Problem("columns", "a list of column names")],
                              title="invalid column set")
    chosen = list(parse_columns(columns))
    values = {"columns": chosen, "saved_by": saved_by, "updated_at": utcnow()}
    # Lock-free upsert that works on both databases: update, else insert (the unique name
    # turns a concurrent insert into an error the caller reports, never a second row).
    if conn.execute(update(ColumnSet).where(ColumnSet.name == name).values(**values)
                    .execution_options(preserve_rowcount=True)).rowcount:
        return False
    conn.execute(insert(ColumnSet).values(name=name, **values))
    return True


def listing(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(ColumnSet.name, ColumnSet.columns, ColumnSet.saved_by,
                               ColumnSet.updated_at).order_by(ColumnSet.name))
    return [{"name": r.name, "columns": list(r.columns), "saved_by": r.saved_by,
             "updated_at": r.updated_at} for r in rows]


def columns_of(conn: Connection, name: str) -> list[str]:
    found = conn.execute(select(ColumnSet.columns).where(ColumnSet.name == name)).scalar()
    if found is None:
        raise NotFound(f"no column set {name!r}")
    return list(found)


def remove(conn: Connection, name: str) -> None:
    if not conn.execute(delete(ColumnSet).where(ColumnSet.name == name)
                        .execution_options(preserve_rowcount=True)).rowcount:
        raise NotFound(f"no column set {name!r}")
