"""`segment-select`: keeps the pairs whose customer is in a segment (a key or inline rules).

Inline rules in a campaign triggered by invoice_due may read the pair's invoice (`invoice.*`):
the invoice is outer-joined on the pair's invoice_id. The `condition` node tests the same
rules, but passes every pair on, on its `yes` or `no` output."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validates_schema
from sqlalchemy import FromClause, Select, select

from engine.errors import Problem
from engine.errors import ValidationError as RulesError
from engine.models import Customer, Invoice
from engine.segments import Scope, compile_rules, validate_rules
from engine.segments.fields import Bool
from engine.segments.rules import references as rule_references
from engine.segments.rules import scopes_read
from engine.segments.scoped import WHERE
from engine.sql import AnySelect
from nodes.base import Node, References, RunContext


class SegmentSelectSchema(Schema):
    segment = fields.String()
    rules = fields.Dict()

    @validates_schema
    def _one_source(self, data: dict[str, Any], **_kw: Any) -> None:
        if ("segment" in data) == ("rules" in data):
            raise ValidationError("give either segment (a key) or inline rules, not both")


def rules_problems(rules: Any, refs: References, where: str,
                   scopes: frozenset[str]) -> list[Problem]:
    """Problems of inline rules, `where` relative to the node's config."""
    catalog: dict[str, Any] = {key: {"all": []} for key in refs.segments}
    try:
        validate_rules(rules, catalog, path=where, scopes=scopes)
    except RulesError as exc:
        return exc.problems
    return []


def scoped(ctx: RunContext, pairs: FromClause, rules: Any) -> tuple[FromClause, Bool]:
    """The pairs joined to their customer (and, when the rules read it, their invoice), and
    the rules compiled to a boolean over them, as of the run date."""
    scope = None
    source: Any = pairs.join(Customer, Customer.id == pairs.c.customer_id)
    if "invoice" in scopes_read(rules):
        source = source.outerjoin(Invoice, Invoice.id == pairs.c.invoice_id)
        scope = Scope(invoice=Invoice.__table__)
    return source, compile_rules(rules, ctx.run_date, ctx.catalog, scope)


def over_customers(pairs: FromClause) -> Select[Any] | None:
    """The trigger's own SELECT when the pairs are read inline from a trigger over the
    customers table (one pair per customer: a schedule, a date field): the segment narrows it
    with its WHERE, rather than joining the customers to themselves (PostgreSQL plans that
    self-join as a hash join of the whole table: 3.5 s of a 1M-customer run)."""
    inner = getattr(pairs, "element", None)
    if not isinstance(inner, Select) or inner.get_final_froms() != [Customer.__table__]:
        return None
    column = inner.selected_columns.get("customer_id")
    element = getattr(column, "element", column)
    if element is None or not element.compare(Customer.__table__.c.id):
        return None
    return inner


class SegmentSelect(Node):
    type_name = "segment-select"
    schema = SegmentSelectSchema

    def check_references(self, refs: References) -> list[Problem]:
        if "segment" in self.config:
            key = self.config["segment"]
            if key not in refs.segments:
                return [Problem("segment", f"unknown segment {key!r}")]
            return []
        return rules_problems(self.config["rules"], refs, "rules", frozenset({"invoice"}))

    def check_variables(self, provided: frozenset[str], refs: References) -> list[Problem]:
        if "rules" not in self.config:
            return []
        return [Problem("rules", WHERE[scope])
                for scope in sorted(scopes_read(self.config["rules"]) - provided)]

    def uses(self) -> set[tuple[str, str]]:
        if "segment" in self.config:
            return {("segment", self.config["segment"])}
        return {("segment", key) for key in rule_references(self.config["rules"])}

    def rules(self) -> Any:
        return {"segment": self.config["segment"]} if "segment" in self.config \
            else self.config["rules"]

    def execute(self, ctx: RunContext, pairs: FromClause | None) -> AnySelect:
        assert pairs is not None
        if (fired := over_customers(pairs)) is not None and \
                "invoice" not in scopes_read(self.rules()):
            return fired.where(compile_rules(self.rules(), ctx.run_date, ctx.catalog, None))
        source, keep = scoped(ctx, pairs, self.rules())
        return (select(pairs.c.customer_id, pairs.c.occurrence, pairs.c.invoice_id)
                .select_from(source).where(keep))
