"""Data sets: chosen columns of a segment's members as of a date, one SELECT ordered by
external_id, read in chunks from a server-side cursor (memory does not grow with the rows).

Any field with a value may also order the rows (engine/datasets/order.py): a page at a time by
keyset, empty values last.

A column is a customer field (engine/segments/fields.py FIELDS) that has a value expression
(customer columns, the invoice fields, days_past_due, ...) or `attributes.NAME`. A data set made
for a user without contacts.view has its email and phone columns masked in SQL
(engine.access.masking).
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
from engine.access.masking import sql_mask_email, sql_mask_phone
from engine.datasets import order as ordering
from engine.errors import NotFound, Problem, ValidationError
from engine.models import Customer
from engine.segments.fields import FIELDS
from engine.segments.rules import ATTRIBUTE

CHUNK = 2000
MAX_COLUMNS = 100
# What a data set can show: every field with a value expression, in FIELDS' order.
COLUMNS = tuple(name for name, field in FIELDS.items() if field.value is not None)
_ATTRIBUTES = "_attributes"
_KEY = "_sort_key"
MASKS = {"email": sql_mask_email, "phone": sql_mask_phone}


@dataclass(frozen=True)
class DataSet:
    """Validated: which customers (rules), which columns, as of which day."""

    rules: Any
    columns: tuple[str, ...]
    as_of: date
    catalog: Any
    order: ordering.Order | None = None
    masked: bool = False  # email and phone masked (a user without contacts.view)


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
                as_of: date, sort: str | None = None, masked: bool = False) -> DataSet:
    """A saved segment's data set; NotFound for an unknown segment."""
    catalog = segments.load_catalog(conn)
    if key not in catalog:
        raise NotFound(f"unknown segment {key!r}")
    return DataSet({"segment": key}, parse_columns(columns), as_of, catalog,
                   ordering.parse(sort), masked)


def for_rules(conn: Connection, rules: Any, columns: str | Sequence[str],
              as_of: date, sort: str | None = None, masked: bool = False) -> DataSet:
    """A data set of inline rules, validated like a segment's."""
    catalog = segments.load_catalog(conn)
    segments.validate_rules(rules, catalog, path="$.rules")
    return DataSet(rules, parse_columns(columns), as_of, catalog, ordering.parse(sort), masked)


def _value(ds: DataSet, name: str) -> Any:
    value = FIELDS[name].value(ds.as_of)  # type: ignore[misc]
    return MASKS[name](value) if ds.masked and name in MASKS else value


def statement(ds: DataSet, after: str | None = None, limit: int | None = None) -> Select[Any]:
    """ONE SELECT of external_id (the tie-break and cursor) and the columns' values, then the
    customer's attributes when an attributes.NAME column asks for them, then the sort key
    when the data set has an order (masked as its column is: a masked contact cannot be
    ordered by what it hides)."""
    values = [_value(ds, n).label(f"c{i}") for i, n in enumerate(ds.columns) if n in FIELDS]
    if any(n not in FIELDS for n in ds.columns):
        values.append(Customer.attributes.label(_ATTRIBUTES))
    stmt = select(Customer.external_id, *values).where(
        segments.compile_rules(ds.rules, ds.as_of, ds.catalog))
    if ds.order is None:
        stmt = stmt.order_by(Customer.external_id)
        if after is not None:
            stmt = stmt.where(Customer.external_id > after)
    else:
        key = ordering.key(ds.order, ds.as_of)
        if ds.masked and ds.order.field in MASKS:
            key = MASKS[ds.order.field](key)
        stmt = stmt.add_columns(key.label(_KEY)).order_by(*ordering.order_by(ds.order, key))
        if after is not None:
            stmt = stmt.where(ordering.after(ds.order, key, after))
    return stmt if limit is None else stmt.limit(limit)


def count(conn: Connection, ds: DataSet) -> int:
    return segments.count(conn, ds.rules, ds.as_of, ds.catalog)


def shaper(ds: DataSet) -> Any:
    """A function from a selected row to the data set's values in column order."""
    fields = [n in FIELDS for n in ds.columns]
    keys = [n.split(".", 1)[1] if not f else None for n, f in zip(ds.columns, fields, strict=True)]
    needs_attributes = not all(fields)
    at = 1 + sum(fields)  # where the attributes are, after external_id and the field values

    def shape(row: Any) -> tuple[Any, ...]:
        attributes = row[at] if needs_attributes else None
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
    """One keyset page for the JSON API: items as {column: value}, the next cursor (None at
    the end: the last external_id in external_id order, an opaque token in another), the
    total count, and each item's external_id (`ids`, for a page to choose rows by, whatever
    the columns)."""
    found = conn.execute(statement(ds, after, limit + 1)).all()
    shape = shaper(ds)
    items = [dict(zip(ds.columns, (json_value(v) for v in shape(r)), strict=True))
             for r in found[:limit]]
    following = None
    if len(found) > limit:
        last = found[limit - 1]
        following = (last.external_id if ds.order is None
                     else ordering.encode(last[-1], last.external_id))
    return {"columns": list(ds.columns), "as_of": ds.as_of.isoformat(),
            "sort": ds.order.text if ds.order else "external_id", "total": count(conn, ds),
            "items": items, "ids": [r.external_id for r in found[:limit]], "next": following}


def json_value(value: Any) -> Any:
    """A cell as JSON: amounts as numbers, dates ISO."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):
        return value.isoformat()
    return value
