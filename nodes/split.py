"""`split`: sends each pair on one of its branches, chosen by a stable hash of (campaign key,
node id, customer external_id): a customer is in the same branch in every run and every
preview, and the branches get their percents of the customers."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import FromClause, String, case, literal, select

from engine.db import bucket_of
from engine.models import Customer
from engine.sql import AnySelect, bucket
from nodes.base import Node, RunContext

BRANCH_NAME = validate.Regexp(r"^[a-z0-9][a-z0-9_-]{0,31}$",
                              error="expected lower-case letters, digits, - and _ (at most 32)")


class BranchSchema(Schema):
    name = fields.String(required=True, validate=BRANCH_NAME)
    percent = fields.Integer(required=True, strict=True, validate=validate.Range(1, 99))


class SplitSchema(Schema):
    branches = fields.List(fields.Nested(BranchSchema), required=True,
                           validate=validate.Length(2, 10, error="between 2 and 10 branches"))

    @validates_schema
    def _sum(self, data: dict[str, Any], **_kw: Any) -> None:
        names = [b["name"] for b in data["branches"]]
        if len(set(names)) != len(names):
            raise ValidationError("branch names must differ", "branches")
        total = sum(b["percent"] for b in data["branches"])
        if total != 100:
            raise ValidationError(f"the percents must add up to 100 (they add up to {total})",
                                  "branches")


def hash_text(campaign: str, node_id: str, external_id: str) -> str:
    return f"{campaign}:{node_id}:{external_id}"


def branch_of(branches: list[dict[str, Any]], campaign: str, node_id: str,
              external_id: str) -> str:
    """The branch a customer takes, computed as the SQL does (for tests and explanations)."""
    n = bucket_of(hash_text(campaign, node_id, external_id))
    assert n is not None
    upper = 0
    for b in branches:
        upper += b["percent"]
        if n < upper:
            return str(b["name"])
    raise AssertionError("percents add up to 100")


class Split(Node):
    type_name = "split"
    schema = SplitSchema

    def outputs(self) -> tuple[str, ...]:
        return tuple(b["name"] for b in self.config.get("branches", []))

    def execute(self, ctx: RunContext, pairs: FromClause | None) -> AnySelect:
        assert pairs is not None
        prefix = hash_text(ctx.campaign.key, self.id, "")
        n = bucket(ctx.conn, literal(prefix, String) + Customer.external_id)
        whens, upper = [], 0
        branches = self.config["branches"]
        for b in branches[:-1]:
            upper += b["percent"]
            whens.append((n < upper, b["name"]))
        branch = case(*whens, else_=branches[-1]["name"]).label("branch")
        return (select(pairs.c.customer_id, pairs.c.occurrence, pairs.c.invoice_id, branch)
                .join(Customer, Customer.id == pairs.c.customer_id))
