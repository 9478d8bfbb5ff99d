"""`trigger`: the root of every campaign; yields the (customer, occurrence) pairs due on a date.

One module per kind (date, invoice_due, schedule, manual, event), each a `fire(ctx, config)`
returning the SELECT of pairs; `Trigger` validates the config (schema.py) and dispatches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import FromClause

from engine.errors import Problem
from engine.sql import AnySelect
from nodes.base import Node, References, RunContext
from nodes.triggers import date, event, invoice_due, manual, schedule
from nodes.triggers.date import DATE_FIELDS
from nodes.triggers.schedule import WEEKDAYS, schedule_matches
from nodes.triggers.schema import KINDS, TriggerSchema

FIRE: dict[str, Callable[[RunContext, dict[str, Any]], AnySelect]] = {
    "date": date.fire, "invoice_due": invoice_due.fire, "schedule": schedule.fire,
    "manual": manual.fire, "event": event.fire,
}
assert set(FIRE) == set(KINDS)


class Trigger(Node):
    type_name = "trigger"
    schema = TriggerSchema
    is_trigger = True

    def provides(self) -> frozenset[str]:
        return frozenset({"invoice"}) if self.config.get("kind") == "invoice_due" else frozenset()

    def check_references(self, refs: References) -> list[Problem]:
        if self.config.get("kind") != "event" or self.config.get("where") is None:
            return []
        catalog: dict[str, Any] = {key: {"all": []} for key in refs.segments}
        return event.where_problems(self.config["where"], catalog)

    def uses(self) -> set[tuple[str, str]]:
        if self.config.get("kind") != "event" or self.config.get("where") is None:
            return set()
        from engine.segments.rules import references

        return {("segment", key) for key in references(self.config["where"])}

    def execute(self, ctx: RunContext, pairs: FromClause | None) -> AnySelect:
        return FIRE[self.config["kind"]](ctx, self.config)


__all__ = ["DATE_FIELDS", "KINDS", "WEEKDAYS", "Trigger", "TriggerSchema", "schedule_matches"]
