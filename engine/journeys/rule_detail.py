"""Why rules did or did not match one customer: every condition of the tree (saved segments
expanded) with the rule's field, operator and value, the customer's value as of the date, and
whether it held, each evaluated by the same SQL the run uses."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, case, false, literal, select, true

from engine.models import Customer, Invoice
from engine.segments import Scope
from engine.segments.fields import FIELDS
from engine.segments.rules import ATTRIBUTE, compile_condition, compile_rules
from engine.segments.scoped import INVOICE_FIELDS, attribute_of, scope_of

# Derived whole-number fields are tested as `f >= n` (engine/segments/fields.py threshold):
# their value is found by a binary search on that test, as far as this bound.
SEARCH_LIMIT = 1 << 20


def conditions(rules: Any, catalog: Any, path: str = "rules",
               within: tuple[str, ...] = ()) -> list[tuple[str, dict[str, Any]]]:
    """(path, condition) of every condition in the tree, segment references expanded (the
    path names the segment: `rules.all[1] > segment member-1y.any[0]`)."""
    if "all" in rules or "any" in rules:
        key = "all" if "all" in rules else "any"
        return [found for i, r in enumerate(rules[key])
                for found in conditions(r, catalog, f"{path}.{key}[{i}]", within)]
    if "not" in rules:
        return conditions(rules["not"], catalog, f"{path}.not", within)
    if "segment" in rules:
        ref = rules["segment"]
        if ref in within or ref not in catalog:
            return []
        return conditions(catalog[ref], catalog, f"{path} > segment {ref}", (*within, ref))
    return [(path, rules)]


def explain_rules(conn: Connection, rules: Any, catalog: Any, as_of: date, customer_id: int,
                  invoice_id: int | None) -> dict[str, Any]:
    """{"matched": bool, "conditions": [{"path", "field", "op", "value", "customer_value",
    "matched"}]} for one customer (and the pair's invoice) as of a date."""
    invoice = Invoice.__table__
    scope = Scope(invoice=invoice)
    leaves = conditions(rules, catalog)
    tests = [compile_rules(rules, as_of, catalog, scope),
             *(compile_condition(c["field"], c["op"], c.get("value"), as_of, scope)
               for _, c in leaves)]
    row = conn.execute(
        select(*(case((t, true()), else_=false()) for t in tests),
               Customer.attributes, invoice.c.attributes.label("invoice_attributes"),
               invoice.c.paid_at, invoice.c.due_date, invoice.c.amount, invoice.c.currency,
               invoice.c.external_id.label("invoice_external_id"))
        .select_from(Customer)
        .outerjoin(invoice, invoice.c.id == literal(invoice_id))
        .where(Customer.id == customer_id)).one()
    out = []
    for i, (path, cond) in enumerate(leaves, start=1):
        out.append({"path": path, "field": cond["field"], "op": cond["op"],
                    "value": cond.get("value"),
                    "customer_value": _value(conn, cond["field"], row, as_of, customer_id),
                    "matched": bool(row[i])})
    return {"matched": bool(row[0]), "conditions": out}


def _value(conn: Connection, name: str, row: Any, as_of: date, customer_id: int) -> Any:
    """The customer's (or the invoice's) value of a field as of a date, JSON-ready; None when
    unknown."""
    if ATTRIBUTE.fullmatch(name):
        return (row.attributes or {}).get(name.split(".", 1)[1])
    needed = scope_of(name)
    if needed == "event":
        return None
    if needed == "invoice":
        if row.invoice_external_id is None:
            return None
        if (key := attribute_of(name)) is not None:
            return (row.invoice_attributes or {}).get(key)
        paid = row.paid_at is not None and row.paid_at <= as_of
        return _json({
            "invoice.paid": paid,
            "invoice.days_past_due": 0 if paid else max(0, (as_of - row.due_date).days),
            "invoice.amount": row.amount, "invoice.due_date": row.due_date,
            "invoice.currency": row.currency, "invoice.external_id": row.invoice_external_id,
        }[name]) if name in INVOICE_FIELDS else None
    field = FIELDS[name]
    if field.value is not None:
        return _json(conn.execute(select(field.value(as_of)).select_from(Customer)
                                  .where(Customer.id == customer_id)).scalar())
    if field.type == "bool":
        return _holds(conn, field.compile("=", True, as_of), customer_id)
    if not _holds(conn, field.compile("not_null", None, as_of), customer_id):
        return None
    low, high = 0, 1  # f >= low holds; find the largest such low
    if not _holds(conn, field.compile(">=", 0, as_of), customer_id):
        return None
    while high < SEARCH_LIMIT and _holds(conn, field.compile(">=", high, as_of), customer_id):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if _holds(conn, field.compile(">=", middle, as_of), customer_id):
            low = middle
        else:
            high = middle
    return low


def _holds(conn: Connection, test: Any, customer_id: int) -> bool:
    return bool(conn.execute(select(case((test, true()), else_=false())).select_from(Customer)
                             .where(Customer.id == customer_id)).scalar())


def _json(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    if isinstance(value, date):
        return value.isoformat()
    return value
