"""Typed reads of a JSON column (a customer's `attributes`, an invoice's, an event's
`properties`), one SQL construct per dialect.

A value of another JSON type reads as NULL, so `attributes.salary > 100` never casts a text
value (which would raise on PostgreSQL) and behaves the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Integer, Numeric, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeEngine

from engine.models import Customer

KINDS = ("number", "text", "bool", "present")
TYPES: dict[str, TypeEngine[Any]] = {
    "number": Numeric(), "text": String(), "bool": Boolean(), "present": Boolean(),
}


class json_attr(FunctionElement[Any]):
    """json_attr(kind, name): the attribute NAME read as KIND, NULL when of another type."""

    inherit_cache = True
    name = "json_attr"
    # kind and attribute are part of the SQL text, so they must be part of the statement cache
    # key; without them a compiled `attributes.tier` would be reused for `attributes.score`.
    _traverse_internals = [  # noqa: RUF012  (SQLAlchemy declares it this way)
        *FunctionElement._traverse_internals,
        ("kind", InternalTraversal.dp_string),
        ("attribute", InternalTraversal.dp_string),
    ]

    def __init__(self, kind: str, attribute: str, column: ColumnElement[Any]) -> None:
        assert kind in KINDS
        self.kind = kind
        self.attribute = attribute
        self.type = TYPES[kind]
        super().__init__(column)


def attr(kind: str, attribute: str,
         column: ColumnElement[Any] | None = None) -> ColumnElement[Any]:
    """Read key `attribute` of a JSON column (the customer's attributes unless told) as
    `kind`. The key is part of the SQL text: callers pass names matched by ATTRIBUTE."""
    source = Customer.__table__.c.attributes if column is None else column
    return json_attr(kind, attribute, source)  # type: ignore[return-value]


@compiles(json_attr, "sqlite")
def _sqlite(element: json_attr, compiler: Any, **kw: Any) -> str:
    col = compiler.process(element.clauses, **kw)
    path = f"'$.\"{element.attribute}\"'"
    jtype = f"json_type({col}, {path})"
    value = f"json_extract({col}, {path})"
    return {
        "number": f"(CASE WHEN {jtype} IN ('integer', 'real') THEN {value} END)",
        "text": f"(CASE WHEN {jtype} = 'text' THEN {value} END)",
        "bool": f"(CASE WHEN {jtype} IN ('true', 'false') THEN {jtype} = 'true' END)",
        "present": f"(COALESCE({jtype}, 'null') != 'null')",
    }[element.kind]


@compiles(json_attr, "postgresql")
def _postgresql(element: json_attr, compiler: Any, **kw: Any) -> str:
    col = compiler.process(element.clauses, **kw)
    key = f"'{element.attribute}'"
    jtype = f"jsonb_typeof({col} -> {key})"
    return {
        "number": f"(CASE WHEN {jtype} = 'number' THEN ({col} ->> {key})::numeric END)",
        "text": f"(CASE WHEN {jtype} = 'string' THEN {col} ->> {key} END)",
        "bool": f"(CASE WHEN {jtype} = 'boolean' THEN ({col} ->> {key})::boolean END)",
        "present": f"(COALESCE({jtype}, 'null') != 'null')",
    }[element.kind]


class days_from(FunctionElement[int]):
    """days_from(start, end): whole days from date `start` to date `end` (end - start)."""

    inherit_cache = True
    name = "days_from"
    type = Integer()

    def __init__(self, start: ColumnElement[Any], end: ColumnElement[Any]) -> None:
        super().__init__(start, end)


@compiles(days_from, "sqlite")
def _days_sqlite(element: days_from, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(julianday({end}) - julianday({start}) AS INTEGER)"


@compiles(days_from, "postgresql")
def _days_postgresql(element: days_from, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"({end} - {start})"
