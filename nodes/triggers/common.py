"""What every trigger kind shares: the pairs it yields (customer, occurrence, invoice)."""

from __future__ import annotations

from sqlalchemy import literal, select

from engine.models import Customer
from engine.sql import AnySelect, no_invoice
from nodes.base import RunContext


def everyone(ctx: RunContext) -> AnySelect:
    """Every customer, with the run date as the occurrence."""
    occurrence = literal(ctx.run_date.isoformat()).label("occurrence")
    return select(Customer.id.label("customer_id"), occurrence, no_invoice())
