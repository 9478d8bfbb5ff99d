"""Data sets: chosen columns of a segment's members as of a date, one SELECT ordered by
external_id, read in chunks from a server-side cursor (memory does not grow with the rows).

A column is a customer field (engine/segments/fields.py FIELDS) that has a value expression
(customer columns, the invoice fields, days_past_due, ...) or `attributes.NAME`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Select, select

from engine import segments
from engine.errors import NotFound, Problem, ValidationError
from engine.models import Customer
from engine.segments.fields import FIELDS
from engine.segments.rules import ATTRIBUTE

CHUNK = 2000
MAX_COLUMNS = 100
# What a data set can show: every field with a value expression, in FIELDS' order.
COLUMNS = tuple(name for name, field in FIELDS.items() if field.value is not None)
_ATTRIBUTES = "_attributes"


@dataclass(frozen=True)
class DataSet:
    """Validated: which customers (rules), which columns, as of which day."""

    rules: Any
    columns: tuple[str, ...]
    as_of: date
    catalog: Any


def parse_columns(text: str | Sequence[str], where: str = "columns") -> tuple[str, ...]:
    """The column list ("a,b,c" or a list), each known, none twice; else a ValidationError
    naming the offending column."""
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    problems: list[Problem] = []
    if not names or names == [""]:
        problems.append(Problem(where, "name at least one column"))
    if len(names) > MAX_COLUMNS:
        problems.append(Problem(where, f"at most {MAX_COLUMNS} columns, got {len(names)}"))
    seen: set[str] = set()
    for name in names:
        if name in seen:
            problems.append(Problem(where, f"column {name!r} is named twice"))
        elif name not in COLUMNS and not ATTRIBUTE.fullmatch(name):
            problems.append(Problem(where, f"unknown column {name!r} (expected attributes.NAME "
                                           f"or one of {', '.join(COLUMNS)})"))
        seen.add(name)
    if problems:
        raise ValidationError(problems, title="invalid data set")
    return tuple(names)


def for_segment(conn: Connection, key: str, columns: str | Sequence[str],
                as_of: date) -> DataSet:
    """A saved segment's data set; NotFound for an unknown segment."""
    catalog = segments.load_catalog(conn)
    if key not in catalog:
        raise NotFound(f"unknown segment {key!r}")
    return DataSet({"segment": key}, parse_columns(columns), as_of, catalog)


def for_rules(conn: Connection, rules: Any, columns: str | Sequence[str],
              as_of: date) -> DataSet:
    """A data set of inline rules, validated like a segment's."""
    catalog = segments.load_catalog(conn)
    segments.validate_rules(rules, catalog, path="$.rules")
    return DataSet(rules, parse_columns(columns), as_of, catalog)


def statement(ds: DataSet, after: str | None = None, limit: int | None = None) -> Select[Any]:
    """ONE SELECT of external_id (the order and cursor) and the columns' values, with the
    customer's attributes last when an attributes.NAME column asks for them."""
    values = [FIELDS[n].value(ds.as_of).label(f"c{i}")  # type: ignore[misc]
              for i, n in enumerate(ds.columns) if n in FIELDS]
    if any(n not in FIELDS for n in ds.columns):
        values.append(Customer.attributes.label(_ATTRIBUTES))
    stmt = (select(Customer.external_id, *values)
            .where(segments.compile_rules(ds.rules, ds.as_of, ds.catalog))
            .order_by(Customer.external_id))
    if after is not None:
        stmt = stmt.where(Customer.external_id > after)
    return stmt if limit is None else stmt.limit(limit)


def count(conn: Connection, ds: DataSet) -> int:
    return segments.count(conn, ds.rules, ds.as_of, ds.catalog)


def shaper(ds: DataSet) -> Any:
    """A function from a selected row to the data set's values in column order."""
    fields = [n in FIELDS for n in ds.columns]
    keys = [n.split(".", 1)[1] if not f else None for n, f in zip(ds.columns, fields, strict=True)]
    needs_attributes = not all(fields)

    def shape(row: Any) -> tuple[Any, ...]:
        attributes = row[-1] if needs_attributes else None
        if isinstance(attributes, str):  # SQLite without the JSON type's processing
            attributes = json.loads(attributes)
        out, i = [], 1
        for is_field, key in zip(fields, keys, strict=True):
            if is_field:
                out.append(row[i])
                i += 1
            else:
                out.append(_scalar((attributes or {}).get(key)))
        return tuple(out)

    return shape


def _scalar(value: Any) -> Any:
    """An attribute value for a cell: objects and lists as JSON text."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def rows(conn: Connection, ds: DataSet, after: str | None = None,
         limit: int | None = None) -> Iterator[tuple[Any, ...]]:
    """The data set's rows in external_id order, streamed in chunks of CHUNK."""
    shape = shaper(ds)
    result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(
        statement(ds, after, limit))
    for chunk in result.partitions():
        for row in chunk:
            yield shape(row)


def page(conn: Connection, ds: DataSet, after: str | None, limit: int) -> dict[str, Any]:
    """One keyset page for the JSON API: items as {column: value}, the next cursor (the last
    external_id, None at the end), the total count, and each item's external_id (`ids`, for
    a page to choose rows by, whatever the columns)."""
    found = conn.execute(statement(ds, after, limit + 1)).all()
    shape = shaper(ds)
    items = [dict(zip(ds.columns, (json_value(v) for v in shape(r)), strict=True))
             for r in found[:limit]]
    return {"columns": list(ds.columns), "as_of": ds.as_of.isoformat(), "total": count(conn, ds),
            "items": items, "ids": [r.external_id for r in found[:limit]],
            "next": found[limit - 1].external_id if len(found) > limit else None}


def json_value(value: Any) -> Any:
    """A cell as JSON: amounts as numbers, dates ISO."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):
        return value.isoformat()
    return value
