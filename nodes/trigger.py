"""`trigger`: the root of every campaign; yields the (customer, occurrence) pairs due on a date.

A `date` trigger fires on the yearly anniversary of birth_date, registered_at or an imported
date column (`attributes.NAME`, text as YYYY-MM-DD)."""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import (
    FromClause,
    Integer,
    String,
    and_,
    cast,
    false,
    func,
    literal,
    or_,
    select,
)

from engine.models import Customer, Invoice
from engine.segments.dates import mmdd_falling_on
from engine.segments.sqlfuncs import attr
from engine.sql import AnySelect, no_invoice
from nodes.base import Node, RunContext

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DATE_FIELDS = ("birth_date", "registered_at")
# No default day: a weekly schedule that fell back to Monday would run on a day nobody chose.
PICK_DAYS = 'required when every is week: pick the days it runs on, e.g. ["mon", "thu"]'


ATTRIBUTE_DATE = re.compile(r"^attributes\.[A-Za-z0-9_]{1,64}$")


def _date_field(value: str) -> None:
    if value not in DATE_FIELDS and not ATTRIBUTE_DATE.match(value):
        raise ValidationError(f"expected {', '.join(DATE_FIELDS)} or attributes.NAME (an "
                              f"imported column holding YYYY-MM-DD dates), not {value!r}")


class TriggerSchema(Schema):
    kind = fields.String(required=True,
                         validate=validate.OneOf(("date", "invoice_due", "schedule", "manual")))
    field = fields.String(validate=_date_field)
    offset_days = fields.Integer(strict=True, load_default=0,
                                 validate=validate.Range(-366, 366))
    every = fields.String(validate=validate.OneOf(("day", "week", "month")))
    weekdays = fields.List(fields.String(validate=validate.OneOf(WEEKDAYS)),
                           validate=validate.Length(min=1, error=PICK_DAYS))
    day_of_month = fields.Integer(strict=True, validate=validate.Range(1, 31))

    @validates_schema
    def _per_kind(self, data: dict[str, Any], **_kw: Any) -> None:
        kind = data.get("kind")
        if kind == "date" and "field" not in data:
            raise ValidationError(f"required for a date trigger ({', '.join(DATE_FIELDS)})",
                                  "field")
        if kind == "schedule":
            every = data.get("every")
            if every is None:
                raise ValidationError("required for a schedule trigger (day, week or month)",
                                      "every")
            if every == "week" and "weekdays" not in data:
                raise ValidationError(PICK_DAYS, "weekdays")
            if every == "month" and "day_of_month" not in data:
                raise ValidationError("required when every is month (1-31; 31 = last day)",
                                      "day_of_month")


def _mmdd(conn_dialect: str, column: Any) -> Any:
    fmt = func.strftime("%m%d", column) if conn_dialect == "sqlite" else func.to_char(column, "MMDD")
    return cast(fmt, Integer)


def _attribute_anniversary(dialect: str, name: str, event_day: date) -> Any:
    """Customers whose attribute NAME is an ISO date (text) with its anniversary on
    `event_day`, at least a year back. Compared as text: a value that is not a date never
    matches and never raises."""
    text = attr("text", name)
    iso = (text.op("GLOB")("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]") if dialect == "sqlite"
           else text.op("~")("^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))
    mmdd = cast(func.substr(text, 6, 2, type_=String) + func.substr(text, 9, 2, type_=String),
                Integer)
    return and_(iso, mmdd.in_(mmdd_falling_on(event_day)),
                text < date(event_day.year, 1, 1).isoformat())


def schedule_matches(config: dict[str, Any], day: date) -> bool:
    """Whether a schedule trigger fires on `day`; day_of_month past the month's end means its
    last day (31 fires on 30 April and on 28 or 29 February)."""
    every = config["every"]
    if every == "day":
        return True
    if every == "week":
        return WEEKDAYS[day.weekday()] in config["weekdays"]
    last = calendar.monthrange(day.year, day.month)[1]
    return day.day == min(config["day_of_month"], last)


class Trigger(Node):
    type_name = "trigger"
    schema = TriggerSchema
    is_trigger = True

    def provides(self) -> frozenset[str]:
        return frozenset({"invoice"}) if self.config.get("kind") == "invoice_due" else frozenset()

    def execute(self, ctx: RunContext, pairs: FromClause | None) -> AnySelect:
        kind = self.config["kind"]
        day = ctx.run_date
        occurrence = literal(day.isoformat()).label("occurrence")
        everyone = select(Customer.id.label("customer_id"), occurrence, no_invoice())
        if kind == "invoice_due":
            due = day - timedelta(days=self.config["offset_days"])
            return select(
                Invoice.customer_id.label("customer_id"),
                (literal("invoice:") + cast(Invoice.id, String)
                 + literal(f":{due.isoformat()}")).label("occurrence"),
                Invoice.id.label("invoice_id"),
            ).where(Invoice.due_date == due,
                    or_(Invoice.paid_at.is_(None), Invoice.paid_at > day))
        if kind == "date":
            event_day = day - timedelta(days=self.config["offset_days"])
            if self.config["field"].startswith("attributes."):
                name = self.config["field"].removeprefix("attributes.")
                return everyone.where(_attribute_anniversary(ctx.conn.dialect.name, name,
                                                             event_day))
            column = getattr(Customer, self.config["field"])
            if self.config["field"] == "birth_date":
                anniversary = Customer.birth_mmdd.in_(mmdd_falling_on(event_day))
            else:
                anniversary = _mmdd(ctx.conn.dialect.name, column).in_(mmdd_falling_on(event_day))
            # An anniversary needs a year to have passed: the day itself is not one.
            return everyone.where(and_(anniversary, column < date(event_day.year, 1, 1)))
        if kind == "schedule":
            if schedule_matches(self.config, day):
                return everyone
            return everyone.where(false())
        # manual: only when someone runs the campaign by hand
        return everyone if ctx.manual else everyone.where(false())
