"""`kind: schedule`: every customer on the matching days (`every: day|week|month`)."""

from __future__ import annotations

import calendar
from datetime import date
from typing import Any

from sqlalchemy import false

from engine.sql import AnySelect
from nodes.base import RunContext
from nodes.triggers.common import everyone

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


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


def fire(ctx: RunContext, config: dict[str, Any]) -> AnySelect:
    return everyone(ctx) if schedule_matches(config, ctx.run_date) else everyone(ctx).where(false())
