"""What a template sees when a message is rendered: the customer (columns, attributes and derived
fields as of today), the invoice, the bonus awarded upstream, the campaign, today and the
unsubscribe link. Built for a whole batch with a handful of grouped queries."""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Text, and_, case, cast, func, or_, select

from engine.models import BonusLedger, Campaign, Customer, Invoice, Message, Template
from engine.points.credits import available_points
from engine.segments.dates import anniversary, days_until, latest_birth_for_age
from engine.segments.fields import CONTACTED, FIELDS
from engine.sql import among
from engine.templates import references

CUSTOMER_COLUMNS = [c for c in Customer.__table__.c
                    if c.name not in ("created_at", "updated_at", "birth_mmdd")]
# Fields over the invoices as of today, read through their SQL value expressions (the same
# SQL as segment rules and data sets), for the whole batch in one query.
PAYMENT_FIGURES = ("next_due_date", "next_amount_due", "last_payment_date",
                   "days_since_last_payment", "owed_next_30", "owed_31_60", "owed_61_90",
                   "owed_91_120", "owed_over_120", "overdue_invoices", "paid_ratio", "paid_up_on")
MONEY_FIGURES = {"next_amount_due", "owed_next_30", "owed_31_60", "owed_61_90", "owed_91_120",
                 "owed_over_120"}
# Customer fields that take a query over invoices, the ledger or messages.
FIGURES = ("days_past_due", "overdue_amount", "outstanding_amount", "unpaid_invoices",
           "bonus_balance", "days_since_last_message", *PAYMENT_FIGURES)
CUSTOMER_LABELS = [(c.name, f"c_{c.name}") for c in CUSTOMER_COLUMNS]
# What templates see of an invoice (`invoice.attributes.NAME`: its imported extra columns).
INVOICE_COLUMNS = (Invoice.external_id, Invoice.amount, Invoice.currency, Invoice.due_date,
                   Invoice.paid_at, Invoice.attributes)


# The columns behind each derived field (DERIVED).
DERIVED_COLUMNS = {
    "age": ("birth_date",), "days_since_registration": ("registered_at",),
    "days_until_birthday": ("birth_date",), "next_birthday": ("birth_date",),
    "has_valid_email": ("email", "email_valid"), "has_valid_phone": ("phone", "phone_valid"),
    "full_name": ("first_name", "last_name"),
}
# Read for every message: whether it may still go out (see engine.rendering.suppressed).
CONSENT_COLUMNS = ("email_opt_out", "sms_opt_out", "marketing_consent")


def load_batch(conn: Connection, claimed: list[Any]) -> tuple[list[Any], list[Needs]]:
    """The claimed messages with their template, campaign and invoice, and of their customer
    the columns their templates read (plus CONSENT_COLUMNS); and what each distinct pair of
    templates in the batch needs. Rows are named tuples (a Row's attribute costs ten times
    more), with the template as t_*, the campaign as campaign_*, the invoice as i_* and the
    customer as c_* fields."""
    templates = _by_id(conn, Template, (Template.subject, Template.body, Template.transliterate),
                       {m.template_id for m in claimed} - {None})
    campaigns = _by_id(conn, Campaign, (Campaign.key, Campaign.name, Campaign.purpose),
                       {m.campaign_id for m in claimed})
    no_template = (None, None, None)
    sources = {source(m.inline_template, *templates.get(m.template_id, no_template)[:2])
               for m in claimed}
    needs = [Needs.of(*pair) for pair in sources]
    wanted = set(CONSENT_COLUMNS)
    for need in needs:
        if need.customer is None and "customer" in need.variables:
            wanted.update(name for name, _ in CUSTOMER_LABELS)
        for name in need.customer or ():
            wanted.update(DERIVED_COLUMNS.get(name, (name,) if name not in FIGURES else ()))
    columns = [c for c in CUSTOMER_COLUMNS if c.name in wanted]
    json_columns = [cast(c, Text) if c.name == "attributes" else c for c in columns]
    customers = _by_id(conn, Customer, json_columns, {m.customer_id for m in claimed})
    invoice_columns = (*INVOICE_COLUMNS[:-1], cast(Invoice.attributes, Text))
    no_invoice = (None,) * len(invoice_columns)
    invoices = _by_id(conn, Invoice, invoice_columns,
                      {m.invoice_id for m in claimed} - {None}
                      if any("invoice" in n.variables for n in needs) else set())
    record = _record_type((*claimed[0]._fields, "t_subject", "t_body", "t_transliterate",
                           "campaign_key", "campaign_name", "campaign_purpose",
                           *(f"i_{c.name}" for c in INVOICE_COLUMNS),
                           *(f"c_{c.name}" for c in columns)))
    return [record._make((*m, *(templates.get(m.template_id, no_template)
                                if m.template_id is not None else _inline_template(m)),
                          *campaigns[m.campaign_id], *invoices.get(m.invoice_id, no_invoice),
                          *customers[m.customer_id]))
            for m in claimed], needs


def _inline_template(message: Any) -> tuple[None, None, bool]:
    """The t_* fields of a message with inline text: its source is read by `source`; its
    transliterate flag is kept with the text (a node's `transliterate`)."""
    inline = json_text(message.inline_template) or {}
    return None, None, bool(inline.get("transliterate"))


def _by_id(conn: Connection, model: Any, columns: Iterable[Any],
           ids: set[Any]) -> dict[Any, tuple[Any, ...]]:
    """{id: (columns...)} for the given ids of a table."""
    if not ids:
        return {}
    result = conn.execute(select(model.id, *columns).where(among(conn, model.id, ids)))
    return {row[0]: tuple(row)[1:] for row in result}


@lru_cache(maxsize=8)
def _record_type(fields: tuple[str, ...]) -> Any:
    return namedtuple("BatchRow", fields)  # type: ignore[misc]


def source(inline_template: str | None, subject: str | None,
           body: str | None) -> tuple[str | None, str]:
    """The (subject, body) template of a message: its node's inline text (JSON text) or else
    its template's subject and body."""
    if inline_template:
        inline = json_text(inline_template)
        return inline.get("subject"), inline["body"]
    assert body is not None  # a message has inline text or a template (deletes check)
    return subject, body


@lru_cache(maxsize=1024)
def json_text(text: str | None) -> Any:
    """A JSON document selected as text (messages of a batch share their inline template)."""
    return None if text is None else json.loads(text)


def _age(born: date | None, today: date) -> int | None:
    if born is None:
        return None
    age = today.year - born.year
    limit = latest_birth_for_age(today, age)
    return age if limit is not None and born <= limit else age - 1


def customer_figures(conn: Connection, customer_ids: set[int], today: date) -> dict[int, dict[str, Any]]:
    """Invoice, bonus and contact aggregates per customer, as of today."""
    unpaid = or_(Invoice.paid_at.is_(None), Invoice.paid_at > today)
    inv = conn.execute(
        select(Invoice.customer_id,
               func.min(case((and_(unpaid, Invoice.due_date < today), Invoice.due_date))),
               func.sum(case((and_(unpaid, Invoice.due_date < today), Invoice.amount), else_=0)),
               func.sum(case((unpaid, Invoice.amount), else_=0)),
               func.sum(case((unpaid, 1), else_=0)))
        .where(among(conn, Invoice.customer_id, customer_ids)).group_by(Invoice.customer_id)).all()
    bonus = dict(conn.execute(
        select(Customer.id, available_points(Customer.id, today))
        .where(among(conn, Customer.id, customer_ids))).all())
    last = dict(conn.execute(
        select(Message.customer_id, func.max(Message.created_at))
        .where(among(conn, Message.customer_id, customer_ids), Message.status.in_(CONTACTED))
        .group_by(Message.customer_id)).all())
    out: dict[int, dict[str, Any]] = {}
    for cid in customer_ids:
        out[cid] = {"days_past_due": 0, "overdue_amount": Decimal("0.00"),
                    "outstanding_amount": Decimal("0.00"), "unpaid_invoices": 0,
                    "bonus_balance": int(bonus.get(cid) or 0), "days_since_last_message": None}
        if (when := last.get(cid)) is not None:
            when = when if isinstance(when, datetime) else datetime.fromisoformat(str(when))
            out[cid]["days_since_last_message"] = (today - when.date()).days
    for cid, oldest, overdue, outstanding, count in inv:
        figures = out[cid]
        if oldest is not None:
            oldest = oldest if isinstance(oldest, date) else date.fromisoformat(str(oldest))
            figures["days_past_due"] = (today - oldest).days
        figures["overdue_amount"] = Decimal(str(overdue or 0)).quantize(Decimal("0.01"))
        figures["outstanding_amount"] = Decimal(str(outstanding or 0)).quantize(Decimal("0.01"))
        figures["unpaid_invoices"] = int(count or 0)
    for cid, values in payment_figures(conn, customer_ids, today).items():
        out[cid].update(values)
    return out


def payment_figures(conn: Connection, customer_ids: set[int],
                    today: date) -> dict[int, dict[str, Any]]:
    """PAYMENT_FIGURES per customer as of today: amounts to the cent, dates as dates."""
    if not customer_ids:
        return {}
    values = [FIELDS[n].value(today).label(n) for n in PAYMENT_FIGURES]  # type: ignore[misc]
    found = conn.execute(select(Customer.id, *values)
                         .where(among(conn, Customer.id, customer_ids)))
    return {row[0]: {n: _money(v) if n in MONEY_FIGURES else v
                     for n, v in zip(PAYMENT_FIGURES, row[1:], strict=True)}
            for row in found}


def _money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


def bonuses(conn: Connection, rows: list[Any]) -> dict[tuple[int, int, str], dict[str, Any]]:
    """The accrual each message's campaign made for the same customer and occurrence."""
    keys = {(r.campaign_id, r.customer_id, r.occurrence) for r in rows}
    if not keys:
        return {}
    found = conn.execute(select(BonusLedger.campaign_id, BonusLedger.customer_id,
                                BonusLedger.occurrence, BonusLedger.amount,
                                BonusLedger.expires_at, BonusLedger.legal_entity,
                                BonusLedger.description)
                         .where(BonusLedger.kind == "accrual",
                                BonusLedger.campaign_id.in_({k[0] for k in keys}),
                                BonusLedger.customer_id.in_({k[1] for k in keys}))).all()
    return {(b.campaign_id, b.customer_id, b.occurrence):
            {"amount": b.amount, "expires_at": b.expires_at, "legal_entity": b.legal_entity,
             "description": b.description}
            for b in found if (b.campaign_id, b.customer_id, b.occurrence) in keys}


def _full_name(c: Callable[[str], Any], _today: date) -> str:
    return " ".join(p for p in (c("first_name"), c("last_name")) if p)


def _since(day: date | None, today: date) -> int | None:
    return (today - day).days if day else None


# Fields computed from the columns as of today; `c(name)` reads a column.
DERIVED: dict[str, Callable[[Callable[[str], Any], date], Any]] = {
    "age": lambda c, today: _age(c("birth_date"), today),
    "days_since_registration": lambda c, today: _since(c("registered_at"), today),
    "days_until_birthday": lambda c, today: (
        days_until(c("birth_date").month * 100 + c("birth_date").day, today)
        if c("birth_date") else None),
    "next_birthday": lambda c, today: (
        anniversary(c("birth_date").month, c("birth_date").day, today.year)
        if c("birth_date") else None),
    "has_valid_email": lambda c, _today: bool(c("email") and c("email_valid")),
    "has_valid_phone": lambda c, _today: bool(c("phone") and c("phone_valid")),
    "full_name": _full_name,
}
CUSTOMER_FIELDS = (*(name for name, _ in CUSTOMER_LABELS), *FIGURES, *DERIVED)


def customer_fields(c: Callable[[str], Any], figures: dict[str, Any], today: date,
                    names: Iterable[str] = CUSTOMER_FIELDS) -> dict[str, Any]:
    """A customer as templates see it (columns, attributes, figures and derived fields as of
    today), or only the fields in `names`. `c(name)` reads a column."""
    out = {}
    for name in names:
        if (derive := DERIVED.get(name)) is not None:
            out[name] = derive(c, today)
        elif name in FIGURES:
            if name in figures:  # read only when a template uses them
                out[name] = figures[name]
        else:
            out[name] = c(name)
    return out


@dataclass(frozen=True)
class Needs:
    """What a (subject, body) pair of templates reads, so a batch builds only that."""

    variables: frozenset[str]
    customer: tuple[str, ...] | None    # the fields read; None: the whole customer
    memo: bool                          # output depends only on the var.attr values it reads

    @property
    def figures(self) -> bool:
        """Whether a customer aggregate (invoices, ledger, messages) is read."""
        return "customer" in self.variables and (
            self.customer is None or any(f in FIGURES for f in self.customer))

    @classmethod
    def of(cls, *sources: str | None) -> Needs:
        refs = frozenset().union(*(references(s) for s in sources if s))
        wanted = {attr for var, attr in refs if var == "customer"}
        return cls(frozenset(var for var, _ in refs),
                   None if None in wanted else tuple(sorted(a for a in wanted if a is not None)),
                   all(attr is not None for _, attr in refs))


def context(row: Any, c: Callable[[str], Any], needs: Needs, figures: dict[str, Any],
            bonus: dict[str, Any] | None, today: date, unsubscribe_url: str) -> dict[str, Any]:
    """The variables a message's templates read (all of them when `needs` says so)."""
    ctx: dict[str, Any] = {"today": today, "unsubscribe_url": unsubscribe_url, "bonus": bonus}
    if "customer" in needs.variables:
        ctx["customer"] = (customer_fields(c, figures, today) if needs.customer is None
                           else customer_fields(c, figures, today, needs.customer))
    if "invoice" in needs.variables:
        ctx["invoice"] = None if row.invoice_id is None else {
            "external_id": row.i_external_id, "amount": row.i_amount,
            "currency": row.i_currency, "due_date": row.i_due_date, "paid_at": row.i_paid_at,
            # Parsed per message, not shared (json_text's cache): the sandbox lets a template
            # call a dict's methods.
            "attributes": json.loads(row.i_attributes) if row.i_attributes else {}}
    if "campaign" in needs.variables:
        ctx["campaign"] = {"key": row.campaign_key, "name": row.campaign_name}
    return ctx


def preview_context(conn: Connection, customer_id: int, today: date,
                    unsubscribe_url: str) -> dict[str, Any]:
    """The context for previewing a template for one customer: their next unpaid invoice and
    an example award stand in for what a campaign would provide."""
    row = conn.execute(select(*CUSTOMER_COLUMNS).where(Customer.id == customer_id)).one()
    figures = customer_figures(conn, {customer_id}, today)[customer_id]
    invoice = conn.execute(
        select(*INVOICE_COLUMNS)
        .where(Invoice.customer_id == customer_id, Invoice.paid_at.is_(None))
        .order_by(Invoice.due_date).limit(1)).first()
    return {"customer": customer_fields(row._mapping.__getitem__, figures, today),
            "invoice": dict(invoice._mapping) if invoice else None,
            "bonus": {"amount": 100, "expires_at": today + timedelta(days=30),
                      "legal_entity": None, "description": "Preview"},
            "campaign": {"key": "preview", "name": "Preview"}, "today": today,
            "unsubscribe_url": unsubscribe_url}
