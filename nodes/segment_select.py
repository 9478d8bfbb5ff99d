"""`segment-select`: keeps the pairs whose customer is in a segment (a key or inline rules)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validates_schema
from sqlalchemy import FromClause, select

from engine.errors import Problem
from engine.errors import ValidationError as RulesError
from engine.models import Customer
from engine.segments import compile_rules, validate_rules
from engine.segments.rules import references as rule_references
from engine.sql import AnySelect
from nodes.base import Node, References, RunContext


class SegmentSelectSchema(Schema):
    segment = fields.String()
    rules = fields.Dict()

    @validates_schema
    def _one_source(self, data: dict[str, Any], **_kw: Any) -> None:
        if ("segment" in data) == ("rules" in data):
            raise ValidationError("give either segment (a key) or inline rules, not both")


class SegmentSelect(Node):
    type_name = "segment-select"
    schema = SegmentSelectSchema

    def check_references(self, refs: References) -> list[Problem]:
        if "segment" in self.config:
            key = self.config["segment"]
            if key not in refs.segments:
                return [Problem("segment", f"unknown segment {key!r}")]
            return []
        catalog: dict[str, Any] = {key: {"all": []} for key in refs.segments}
        try:
            validate_rules(self.config["rules"], catalog, path="rules")
        except RulesError as exc:
            return exc.problems
        return []

    def uses(self) -> set[tuple[str, str]]:
        if "segment" in self.config:
            return {("segment", self.config["segment"])}
        return {("segment", key) for key in rule_references(self.config["rules"])}

    def rules(self) -> Any:
        return {"segment": self.config["segment"]} if "segment" in self.config \
            else self.config["rules"]

    def execute(self, ctx: RunContext, pairs: FromClause | None) -> AnySelect:
        assert pairs is not None
        keep = compile_rules(self.rules(), ctx.run_date, ctx.catalog)
        return (select(pairs.c.customer_id, pairs.c.occurrence, pairs.c.invoice_id)
                .join(Customer, Customer.id == pairs.c.customer_id).where(keep))
