"""`kind: manual`: every customer, only when someone runs the campaign by hand."""

from __future__ import annotations

from typing import Any

from sqlalchemy import false

from engine.sql import AnySelect
from nodes.base import RunContext
from nodes.triggers.common import everyone


def fire(ctx: RunContext, config: dict[str, Any]) -> AnySelect:
    return everyone(ctx) if ctx.manual else everyone(ctx).where(false())
