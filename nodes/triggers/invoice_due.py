"""`kind: invoice_due`: each invoice unpaid on the run date, `offset_days` from its due date
(negative = before). Two invoices due the same day are two occurrences."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import String, cast, literal, or_, select

from engine.models import Invoice
from engine.sql import AnySelect
from nodes.base import RunContext


def fire(ctx: RunContext, config: dict[str, Any]) -> AnySelect:
    day = ctx.run_date
    due = day - timedelta(days=config["offset_days"])
    return select(
        Invoice.customer_id.label("customer_id"),
        (literal("invoice:") + cast(Invoice.id, String)
         + literal(f":{due.isoformat()}")).label("occurrence"),
        Invoice.id.label("invoice_id"),
    ).where(Invoice.due_date == due, or_(Invoice.paid_at.is_(None), Invoice.paid_at > day))
