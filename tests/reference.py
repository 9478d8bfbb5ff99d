"""A plain-Python evaluator of segment rules: the oracle the SQL compiler is tested against.

Written independently of engine.segments (only the documented semantics are shared): a missing
value satisfies only is_null, != and not_in; 29 February is 28 February in non-leap years."""

from __future__ import annotations

import calendar
from datetime import date
from typing import Any


def _birthday_in(born: date, year: int) -> date:
    if (born.month, born.day) == (2, 29) and not calendar.isleap(year):
        return date(year, 2, 28)
    return date(year, born.month, born.day)


def derived(c: dict[str, Any], d: date) -> dict[str, Any]:
    """Every field's value for one customer as of d."""
    out = dict(c)
    born, reg = c.get("birth_date"), c.get("registered_at")
    out["age"] = None if born is None else d.year - born.year - (_birthday_in(born, d.year) > d)
    if born is None:
        out["days_until_birthday"] = None
    else:
        nxt = _birthday_in(born, d.year)
        if nxt < d:
            nxt = _birthday_in(born, d.year + 1)
        out["days_until_birthday"] = (nxt - d).days
    out["days_since_registration"] = None if reg is None else (d - reg).days
    out["has_valid_email"] = c.get("email") is not None and c["email_valid"]
    out["has_valid_phone"] = c.get("phone") is not None and c["phone_valid"]
    unpaid = [i for i in c["invoices"] if i["paid_at"] is None or i["paid_at"] > d]
    overdue = [i for i in unpaid if i["due_date"] < d]
    out["days_past_due"] = (d - min(i["due_date"] for i in overdue)).days if overdue else 0
    out["overdue_amount"] = sum(i["amount"] for i in overdue)
    out["outstanding_amount"] = sum(i["amount"] for i in unpaid)
    out["unpaid_invoices"] = len(unpaid)
    out["bonus_balance"] = sum(  # the generated ledgers hold credits only: nothing redeemed
        e["amount"] for e in c["ledger"]
        if e["kind"] in ("accrual", "adjustment") and e["booked_on"] <= d
        and (e.get("activates_on") or e["booked_on"]) <= d
        and (e["expires_at"] is None or e["expires_at"] > d))
    sent = [m["created_at"].date() for m in c["messages"]
            if m["status"] in ("queued", "sending", "sent", "held") and m["created_at"].date() <= d]
    out["days_since_last_message"] = (d - max(sent)).days if sent else None
    out.update(payments(c["invoices"], d))
    return out


def payments(invoices: list[dict[str, Any]], d: date) -> dict[str, Any]:
    """The invoice fields of DESIGN.md's "Data sets and reports" as of d."""
    unpaid = [i for i in invoices if i["paid_at"] is None or i["paid_at"] > d]
    paid = [i for i in invoices if i["paid_at"] is not None and i["paid_at"] <= d]
    ahead = [i for i in unpaid if i["due_date"] >= d]
    nxt = min((i["due_date"] for i in ahead), default=None)
    last = max((i["paid_at"] for i in paid), default=None)

    def owed(first: int, last: int | None) -> Any:
        return sum(i["amount"] for i in unpaid
                   if (i["due_date"] - d).days >= first
                   and (last is None or (i["due_date"] - d).days <= last))

    total = sum(i["amount"] for i in invoices)
    return {
        "next_due_date": nxt,
        "next_amount_due": sum(i["amount"] for i in ahead if i["due_date"] == nxt)
        if nxt else None,
        "last_payment_date": last,
        "days_since_last_payment": (d - last).days if last else None,
        "owed_next_30": owed(0, 30), "owed_31_60": owed(31, 60), "owed_61_90": owed(61, 90),
        "owed_91_120": owed(91, 120), "owed_over_120": owed(121, None),
        "overdue_invoices": sum(1 for i in unpaid if i["due_date"] < d),
        "paid_ratio": float(sum(i["amount"] for i in paid)) / float(total) if total else None,
        "paid_up_on": last if invoices and not unpaid else None,
    }


def _op(op: str, x: Any, v: Any) -> bool:
    if op == "is_null":
        return x is None
    if op == "not_null":
        return x is not None
    if x is None:
        return op in ("!=", "not_in")
    return {
        "=": lambda: x == v, "!=": lambda: x != v, "<": lambda: x < v, "<=": lambda: x <= v,
        ">": lambda: x > v, ">=": lambda: x >= v, "in": lambda: x in v,
        "not_in": lambda: x not in v, "between": lambda: v[0] <= x <= v[1],
        "contains": lambda: v.lower() in x.lower(),
        "starts_with": lambda: x.lower().startswith(v.lower()),
    }[op]()


def _attribute(attrs: dict[str, Any], name: str, value: Any) -> Any:
    raw = attrs.get(name)
    sample = value[0] if isinstance(value, list) else value
    if isinstance(sample, bool):
        return raw if isinstance(raw, bool) else None
    if isinstance(sample, int | float):
        return raw if isinstance(raw, int | float) and not isinstance(raw, bool) else None
    return raw if isinstance(raw, str) else None


def matches(rules: dict[str, Any], c: dict[str, Any], d: date,
            catalog: dict[str, Any]) -> bool:
    if "all" in rules:
        return all(matches(r, c, d, catalog) for r in rules["all"])
    if "any" in rules:
        return any(matches(r, c, d, catalog) for r in rules["any"])
    if "not" in rules:
        return not matches(rules["not"], c, d, catalog)
    if "segment" in rules:
        return matches(catalog[rules["segment"]], c, d, catalog)
    name, op, value = rules["field"], rules["op"], rules.get("value")
    if name.startswith("attributes."):
        key = name.split(".", 1)[1]
        if op in ("is_null", "not_null"):
            x = c["attributes"].get(key)
        else:
            x = _attribute(c["attributes"], key, value)
        return _op(op, x, value)
    x = derived(c, d)[name]
    if isinstance(x, date):
        value = [date.fromisoformat(v) for v in value] if isinstance(value, list) \
            else (date.fromisoformat(value) if value is not None else None)
    return _op(op, x, value)
