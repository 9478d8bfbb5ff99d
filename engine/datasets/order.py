"""A data set's order: external_id (the default), or any field's value as of the date, up or
down, with empty values last and external_id breaking ties, paged by keyset.

The cursor of a sorted page is opaque (`k` + base64url JSON of [empty?, value, external_id]);
the unsorted order keeps the plain external_id as its cursor. Numbers are ordered and compared
as floating point in both, so the order and the cursor's comparison are the same expression on
SQLite and PostgreSQL whatever a driver makes of a numeric value.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, Float, Integer, String, and_, cast, literal, or_
from sqlalchemy.sql.elements import ColumnElement

from engine.errors import Problem, ValidationError
from engine.limits import strict_loads, value_problems
from engine.models import Customer
from engine.segments.fields import FIELDS

_BINDS: dict[str, Any] = {"int": Integer, "number": Float, "bool": Boolean, "date": Date,
                          "string": String}


@dataclass(frozen=True)
class Order:
    field: str
    descending: bool = False

    @property
    def text(self) -> str:
        return ("-" if self.descending else "") + self.field


def parse(text: str | None, where: str = "sort") -> Order | None:
    """`FIELD` or `-FIELD` (descending); None (external_id order) for nothing or external_id."""
    if not text or text == "external_id":
        return None
    descending = text.startswith("-")
    name = text.removeprefix("-")
    field = FIELDS.get(name)
    if field is None or field.value is None:
        sortable = ", ".join(n for n, f in FIELDS.items() if f.value is not None)
        raise ValidationError([Problem(where, f"cannot sort by {name!r} (expected FIELD or "
                                              f"-FIELD, FIELD one of {sortable})")],
                              title="invalid data set")
    return Order(name, descending)


def key(order: Order, as_of: date) -> ColumnElement[Any]:
    field = FIELDS[order.field]
    expr = field.value(as_of)  # type: ignore[misc]
    return cast(expr, Float) if field.type == "number" else expr


def order_by(order: Order, sort_key: ColumnElement[Any]) -> list[ColumnElement[Any]]:
    value = sort_key.desc() if order.descending else sort_key.asc()
    return [sort_key.is_(None).asc(), value, Customer.external_id.asc()]


def after(order: Order, sort_key: ColumnElement[Any], cursor: str) -> ColumnElement[bool]:
    """The rows that come after the cursor's row in this order."""
    empty, value, external_id = decode(order, cursor)
    later_id = Customer.external_id > external_id
    if empty:
        return and_(sort_key.is_(None), later_id)
    bound = literal(value, _BINDS[FIELDS[order.field].type])
    beyond = sort_key < bound if order.descending else sort_key > bound
    return or_(sort_key.is_(None), beyond, and_(sort_key == bound, later_id))


def encode(value: Any, external_id: str) -> str:
    if isinstance(value, date):
        value = value.isoformat()
    elif isinstance(value, Decimal):
        value = float(value)
    raw = json.dumps([value is None, value, external_id], separators=(",", ":"))
    return "k" + base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(order: Order, cursor: str) -> tuple[bool, Any, str]:
    """The cursor's parts, the value in the field's type; a ValidationError naming `after`
    for anything this order did not hand out."""
    try:
        if not cursor.startswith("k"):
            raise ValueError("not a sorted cursor")
        text = cursor[1:]
        parts = strict_loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if value_problems(parts):  # NUL, a lone surrogate, a 65-bit number: not ours
            raise ValueError("not storable")
        empty, value, external_id = parts
        if not isinstance(empty, bool) or not isinstance(external_id, str):
            raise ValueError("bad parts")
        return empty, (None if empty else _typed(order, value)), external_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValidationError([Problem("after", f"not a cursor of the order {order.text!r}: "
                                                "pass the `next` of the previous page")],
                              title="invalid data set") from None


def _typed(order: Order, value: Any) -> Any:
    kind = FIELDS[order.field].type
    if kind == "date":
        return date.fromisoformat(value)
    if kind in ("int", "number") and type(value) in (int, float):
        return value
    if kind == "bool" and type(value) is bool:
        return value
    if kind == "string" and type(value) is str:
        return value
    raise ValueError(f"a {kind} value expected")
