"""Fields a rule may read beyond the customer, where the campaign gives them a meaning: the
pair's invoice (`invoice.*`, in campaigns triggered by invoice_due) and the triggering event's
properties (`event.properties.NAME`, in an event trigger's `where`).

The caller joins the table the fields read (outer-joined invoices on the pair's invoice_id, the
events the trigger selects) and passes it in a `Scope`; the fields compile to plain column
tests on it, with the NULL semantics of every other field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import FromClause, and_, false, or_
from sqlalchemy.sql.expression import ColumnElement

from engine.segments import dates
from engine.segments.fields import Bool, compare, threshold
from engine.segments.sqlfuncs import attr

SCOPES = ("invoice", "event")
NAME = r"[A-Za-z_][A-Za-z0-9_]*"
INVOICE_ATTRIBUTE = re.compile(rf"invoice\.attributes\.({NAME})")
EVENT_PROPERTY = re.compile(rf"event\.properties\.({NAME})")
# Type names as the rule language uses them (engine/segments/fields.py TYPE_OPS).
INVOICE_FIELDS = {
    "invoice.paid": "bool",
    "invoice.days_past_due": "int",
    "invoice.amount": "number",
    "invoice.due_date": "date",
    "invoice.currency": "string",
    "invoice.external_id": "string",
}
WHERE = {
    "invoice": "invoice fields can be read only in a campaign whose trigger is invoice_due",
    "event": "event properties can be read only in an event trigger's where",
}


@dataclass(frozen=True)
class Scope:
    """What the rules may read besides `customers`: the joined invoices and events tables."""

    invoice: FromClause | None = None
    event: FromClause | None = None


def scope_of(name: str) -> str | None:
    """Which scope a field name needs ("invoice", "event"), or None for a customer field."""
    if name in INVOICE_FIELDS or INVOICE_ATTRIBUTE.fullmatch(name):
        return "invoice"
    if name.startswith("event."):
        return "event"
    return None


def attribute_of(name: str) -> str | None:
    """The JSON key a scoped attribute field reads (`invoice.attributes.plate` -> plate)."""
    m = INVOICE_ATTRIBUTE.fullmatch(name) or EVENT_PROPERTY.fullmatch(name)
    return m[1] if m else None


def field_type(name: str) -> str | None:
    """The rule type of a scoped field with a fixed type; None for attributes (typed by their
    value) and for names that are not scoped fields."""
    return INVOICE_FIELDS.get(name)


def compile_scoped(name: str, op: str, value: Any, kind: str | None, as_of: date,
                   scope: Scope | None) -> Bool:
    """One condition on a scoped field. `kind` is the attribute kind for JSON fields."""
    needed = scope_of(name)
    table = getattr(scope, needed) if scope is not None and needed else None
    if table is None:
        raise ValueError(f"{name}: {WHERE.get(needed or '', 'not a field here')}")
    key = attribute_of(name)
    column = table.c.properties if needed == "event" else table.c.attributes
    if key is not None:
        if op in ("is_null", "not_null"):
            present = attr("present", key, column)
            return present if op == "not_null" else ~present
        assert kind is not None
        return compare(attr(kind, key, column), op, value)
    c = table.c
    if name == "invoice.paid":
        paid = and_(c.id.is_not(None), c.paid_at.is_not(None), c.paid_at <= as_of)
        unpaid = and_(c.id.is_not(None), or_(c.paid_at.is_(None), c.paid_at > as_of))
        if op == "is_null":
            return c.id.is_(None)
        if op == "not_null":
            return c.id.is_not(None)
        want = bool(value)
        if op == "=":
            return paid if want else unpaid
        return or_(c.id.is_(None), unpaid if want else paid)  # !=
    if name == "invoice.days_past_due":
        # Days since the due date while unpaid as of the run date, else 0; tested, as the
        # customer's days_past_due, as a plain date comparison.
        unpaid = or_(c.paid_at.is_(None), c.paid_at > as_of)

        def at_least(n: int) -> Bool:
            if n <= 0:
                return c.id.is_not(None)
            limit = dates.shift(as_of, -n)
            return and_(unpaid, c.due_date <= limit) if limit is not None else false()

        return threshold(c.id.is_not(None), at_least, op, value)
    column_of: dict[str, ColumnElement[Any]] = {
        "invoice.amount": c.amount, "invoice.due_date": c.due_date,
        "invoice.currency": c.currency, "invoice.external_id": c.external_id}
    if name == "invoice.due_date" and op not in ("is_null", "not_null"):
        value = [date.fromisoformat(v) for v in value] if isinstance(value, list) \
            else date.fromisoformat(value)
    if name not in column_of:
        raise ValueError(f"{name}: not a field here")
    return compare(column_of[name], op, value)
