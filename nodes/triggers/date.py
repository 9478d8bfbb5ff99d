"""`kind: date`: a date of the customer's (birth_date, registered_at, or an imported column
`attributes.NAME` holding YYYY-MM-DD), shifted by `offset_days`.

`repeat: yearly` (the default) fires on each anniversary (a 29 February date on 28 February in
non-leap years), never on the day itself; `repeat: once` fires on the date itself, so an
offset of -7 fires 7 days before a policy's end date, and never again."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import Integer, String, and_, cast, func

from engine.models import Customer
from engine.segments.dates import mmdd_falling_on
from engine.segments.sqlfuncs import attr
from engine.sql import AnySelect
from nodes.base import RunContext
from nodes.triggers.common import everyone

DATE_FIELDS = ("birth_date", "registered_at")
REPEATS = ("yearly", "once")
ATTRIBUTE_DATE = re.compile(r"^attributes\.[A-Za-z0-9_]{1,64}$")


def date_field(value: str) -> None:
    """A marshmallow validator for `field`."""
    if value not in DATE_FIELDS and not ATTRIBUTE_DATE.match(value):
        raise ValidationError(f"expected {', '.join(DATE_FIELDS)} or attributes.NAME (an "
                              f"imported column holding YYYY-MM-DD dates), not {value!r}")


def _mmdd(dialect: str, column: Any) -> Any:
    fmt = func.strftime("%m%d", column) if dialect == "sqlite" else func.to_char(column, "MMDD")
    return cast(fmt, Integer)


def _iso_text(dialect: str, name: str) -> tuple[Any, Any]:
    """The attribute as text, and whether it looks like YYYY-MM-DD."""
    text = attr("text", name)
    iso = (text.op("GLOB")("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]") if dialect == "sqlite"
           else text.op("~")("^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))
    return text, iso


def _attribute_anniversary(dialect: str, name: str, event_day: date) -> Any:
    """Customers whose attribute NAME is an ISO date (text) with its anniversary on
    `event_day`, at least a year back. Compared as text: a value that is not a date never
    matches and never raises."""
    text, iso = _iso_text(dialect, name)
    mmdd = cast(func.substr(text, 6, 2, type_=String) + func.substr(text, 9, 2, type_=String),
                Integer)
    return and_(iso, mmdd.in_(mmdd_falling_on(event_day)),
                text < date(event_day.year, 1, 1).isoformat())


def _anniversary(dialect: str, field: str, event_day: date) -> Any:
    if field.startswith("attributes."):
        return _attribute_anniversary(dialect, field.removeprefix("attributes."), event_day)
    column = getattr(Customer, field)
    if field == "birth_date":
        anniversary = Customer.birth_mmdd.in_(mmdd_falling_on(event_day))
    else:
        anniversary = _mmdd(dialect, column).in_(mmdd_falling_on(event_day))
    # An anniversary needs a year to have passed: the day itself is not one.
    return and_(anniversary, column < date(event_day.year, 1, 1))


def _on(dialect: str, field: str, event_day: date) -> Any:
    """The date itself is `event_day` (an attribute compared as its ISO text)."""
    if field.startswith("attributes."):
        text, iso = _iso_text(dialect, field.removeprefix("attributes."))
        return and_(iso, text == event_day.isoformat())
    return getattr(Customer, field) == event_day


def fire(ctx: RunContext, config: dict[str, Any]) -> AnySelect:
    event_day = ctx.run_date - timedelta(days=config["offset_days"])
    dialect = ctx.conn.dialect.name
    match = _on if config.get("repeat", "yearly") == "once" else _anniversary
    return everyone(ctx).where(match(dialect, config["field"], event_day))
