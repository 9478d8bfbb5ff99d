"""`kind: event`: each stored event named `name` whose `at` falls on the run date in the
campaign's time zone, optionally only those matching `where` (customer fields and the event's
`event.properties.NAME`, as of the run date). The occurrence is
"event:" + the event's internal id: the sender's id may be 100 characters, the exactly-once
key column holds 64."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, cast, literal, select

from engine.errors import Problem
from engine.errors import ValidationError as RulesError
from engine.models import Customer, Event
from engine.segments import compile_rules, validate_rules
from engine.segments.rules import Catalog
from engine.segments.scoped import Scope
from engine.sql import AnySelect, no_invoice
from nodes.base import RunContext


def local_day_bounds(day: date, timezone: str) -> tuple[datetime, datetime]:
    """[start, end) of `day` in `timezone`, as naive UTC (a DST day has 23 or 25 hours)."""
    zone = ZoneInfo(timezone)

    def midnight(d: date) -> datetime:
        return datetime.combine(d, time(0), tzinfo=zone).astimezone(UTC).replace(tzinfo=None)

    return midnight(day), midnight(day + timedelta(days=1))


def where_problems(rules: Any, catalog: Catalog) -> list[Problem]:
    """Problems with a `where`, paths relative to the node's config."""
    try:
        validate_rules(rules, catalog, path="where", scopes=frozenset({"event"}))
    except RulesError as exc:
        return exc.problems
    return []


def where_clause(rules: Any, as_of: date, catalog: Catalog) -> Any:
    """`where` as SQL over customers joined to the events they did."""
    return compile_rules(rules, as_of, catalog, Scope(event=Event.__table__))


def fire(ctx: RunContext, config: dict[str, Any]) -> AnySelect:
    start, end = local_day_bounds(ctx.run_date, ctx.campaign.timezone)
    stmt = select(
        Event.customer_id.label("customer_id"),
        (literal("event:") + cast(Event.id, String)).label("occurrence"),
        no_invoice(),
    ).where(Event.name == config["name"], Event.at >= start, Event.at < end)
    if config.get("where") is not None:
        stmt = stmt.join(Customer, Customer.id == Event.customer_id).where(
            and_(where_clause(config["where"], ctx.run_date, ctx.catalog)))
    return stmt
