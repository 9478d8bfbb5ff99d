"""Contact details for users without the contacts.view permission: an email address keeps its
first character and its domain (jane@example.com -> j***@example.com), a phone number its last
two characters (+27821234567 -> ***67); anything else that is not an email is "***".

The same rule in Python (API answers and pages) and in SQL (data sets and CSV/XLSX exports,
where rows stream from the database).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, Integer, String, case, func, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

HIDDEN = "***"
CONTACT_KEYS = ("email", "phone", "address")
_EMAIL = re.compile(r"[^\s@<>\"']+@[^\s@<>\"']+")
_PHONE = re.compile(r"\+?\d[\d \-]{5,}\d")


def mask_email(value: str | None) -> str | None:
    if value is None:
        return None
    at = value.find("@")
    return value[:1] + HIDDEN + value[at:] if at > 0 else HIDDEN


def mask_phone(value: str | None) -> str | None:
    if value is None:
        return None
    return HIDDEN + value[-2:]


def mask_contact(value: Any) -> Any:
    """An email address or a phone number (a message's address is either)."""
    if not isinstance(value, str):
        return value
    return mask_email(value) if "@" in value else mask_phone(value)


def mask_text(text: Any) -> Any:
    """Free text (an activity's summary) with every email address and phone number masked."""
    if not isinstance(text, str):
        return text
    text = _EMAIL.sub(lambda m: mask_email(m[0]) or "", text)
    return _PHONE.sub(lambda m: mask_phone(m[0]) or "", text)


def masked(row: dict[str, Any]) -> dict[str, Any]:
    """A customer or message as a dict with its email, phone and address masked."""
    return {k: mask_contact(v) if k in CONTACT_KEYS else v for k, v in row.items()}


def masked_activity(activity: dict[str, Any]) -> dict[str, Any]:
    """An activity with contact details in its summary and details masked (a profile change's
    old and new email or phone, an address)."""
    return {**activity, "summary": mask_text(activity.get("summary")),
            "details": _deep(activity.get("details"))}


def masked_explain(value: Any) -> Any:
    """An explanation (engine.journeys.explain) with the customer's email or phone masked in
    the conditions on those fields, and contact details masked in its reasons."""
    if isinstance(value, list):
        return [masked_explain(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: masked_explain(v) if k != "reason" else mask_text(v) for k, v in value.items()}
    if out.get("field") in CONTACT_KEYS and "customer_value" in out:
        out["customer_value"] = mask_contact(out["customer_value"])
    return out


def _deep(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        if key in CONTACT_KEYS:  # {"old": ..., "new": ...}
            return {k: mask_contact(v) for k, v in value.items()}
        return {k: _deep(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep(v) for v in value]
    if key in CONTACT_KEYS:
        return mask_contact(value)
    return mask_text(value)


class _position(FunctionElement[Any]):
    """position(needle in text), 1-based, 0 when absent: instr on SQLite, strpos elsewhere."""

    inherit_cache = True
    name = "strpos"
    type = Integer()


@compiles(_position)
def _strpos(element: _position, compiler: Any, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


@compiles(_position, "sqlite")
def _instr(element: _position, compiler: Any, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


def sql_mask_email(column: ColumnElement[Any]) -> ColumnElement[Any]:
    at = _position(column, literal("@", String))
    return case((column.is_(None), None),
                (at > 1, func.substr(column, 1, 1) + literal(HIDDEN, String)
                 + func.substr(column, at)),
                else_=literal(HIDDEN, String))


def sql_mask_phone(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((column.is_(None), None),
                else_=literal(HIDDEN, String) + func.substr(column, func.length(column) - 1))
