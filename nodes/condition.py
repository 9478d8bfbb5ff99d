"""`condition`: tests every pair reaching it against a segment or inline rules as of the run
date, and passes each on: on the `yes` output if its customer matches, else on `no`."""

from __future__ import annotations

from sqlalchemy import FromClause, case, select

from engine.sql import AnySelect
from nodes.base import RunContext
from nodes.segment_select import SegmentSelect, SegmentSelectSchema, scoped

OUTPUTS = ("yes", "no")


class ConditionSchema(SegmentSelectSchema):
    pass


class Condition(SegmentSelect):
    type_name = "condition"
    schema = ConditionSchema

    def outputs(self) -> tuple[str, ...]:
        return OUTPUTS

    def execute(self, ctx: RunContext, pairs: FromClause | None) -> AnySelect:
        assert pairs is not None
        source, keep = scoped(ctx, pairs, self.rules())
        branch = case((keep, "yes"), else_="no").label("branch")
        return (select(pairs.c.customer_id, pairs.c.occurrence, pairs.c.invoice_id, branch)
                .select_from(source))
