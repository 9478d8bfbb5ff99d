"""`recipients`: keeps the pairs whose customer was chosen for the campaign by name, in
`blast_recipients` (a blast of selected data set rows, engine/blasts). A campaign nobody chose
customers for keeps nobody."""

from __future__ import annotations

from marshmallow import Schema
from sqlalchemy import FromClause, select

from engine.models import BlastRecipient
from engine.sql import AnySelect
from nodes.base import Node, RunContext


class RecipientsSchema(Schema):
    """No settings: the list is kept with the campaign, not in its graph."""


class Recipients(Node):
    type_name = "recipients"
    schema = RecipientsSchema

    def execute(self, ctx: RunContext, pairs: FromClause | None) -> AnySelect:
        assert pairs is not None
        chosen = select(BlastRecipient.customer_id).where(
            BlastRecipient.campaign_id == ctx.campaign.id)
        return (select(pairs.c.customer_id, pairs.c.occurrence, pairs.c.invoice_id)
                .where(pairs.c.customer_id.in_(chosen)))
