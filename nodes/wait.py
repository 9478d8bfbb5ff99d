"""`wait`: a pair that reaches it in the run of date D continues to its children in the run of
D + days. Parked pairs are rows of journey_waits under the exactly-once key, so a re-run parks
nothing twice; each run releases those due by its date (a missed day's in its catch-up),
marking them, so no run releases a pair twice, and a re-run of that date passes the same ones
on again (their effects then exist already). Where the campaign has exit rules, a due pair
whose customer matches them leaves the journey instead, with a `journey_exited` activity."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from marshmallow import Schema, fields, validate
from sqlalchemy import (
    Date,
    FromClause,
    Integer,
    String,
    and_,
    cast,
    func,
    literal,
    or_,
    select,
    update,
)

from engine.models import Activity, Customer, Invoice, JourneyWait
from engine.segments import Scope, compile_rules
from engine.segments.rules import scopes_read
from engine.sql import AnySelect, insert_new, json_object, rowcount
from nodes.base import Node, RunContext

W = JourneyWait.__table__.c


class WaitSchema(Schema):
    days = fields.Integer(required=True, strict=True, validate=validate.Range(1, 365))


class Wait(Node):
    type_name = "wait"
    schema = WaitSchema

    def execute(self, ctx: RunContext, pairs: FromClause | None) -> AnySelect:
        assert pairs is not None
        mine = and_(W.campaign_id == ctx.campaign.id, W.node_id == self.id)
        if ctx.only_customer is not None:
            mine = and_(mine, W.customer_id == ctx.only_customer)
        due = and_(mine, W.status == "waiting", W.release_on <= ctx.run_date)
        ended_today = and_(mine, W.ended_on == ctx.run_date)
        exits = self._exit_rule(ctx)
        if ctx.dry_run:
            parked = ctx.conn.execute(select(func.count()).select_from(pairs)).scalar_one()
            ctx.count(self.id, "parked", int(parked))
            staying = due if exits is None else and_(due, ~exits)
            if exits is not None:
                exited = ctx.conn.execute(_counted(and_(due, exits))).scalar_one()
                ctx.count(self.id, "exited", int(exited))
            leaving = or_(staying, and_(ended_today, W.status == "released"))
            ctx.count(self.id, "released", int(ctx.conn.execute(_counted(leaving)).scalar_one()))
            return _pairs(leaving)
        release_on = ctx.run_date + timedelta(days=self.config["days"])
        parked = insert_new(ctx.conn, JourneyWait.__table__, select(  # type: ignore[arg-type]
            literal(ctx.campaign.id, Integer).label("campaign_id"),
            literal(self.id, String).label("node_id"),
            pairs.c.customer_id, pairs.c.occurrence, pairs.c.invoice_id,
            literal(ctx.run_date, Date).label("parked_on"),
            literal(release_on, Date).label("release_on"),
            literal("waiting").label("status"),
            literal(ctx.run_id, Integer).label("parked_run_id"),
        ))
        ctx.count(self.id, "parked", parked)
        ended = {"ended_on": ctx.run_date, "ended_run_id": ctx.run_id}
        if exits is not None:
            exited = rowcount(ctx.conn, update(JourneyWait).where(
                W.id.in_(select(W.id).where(due, exits))).values(status="exited", **ended))
            ctx.count(self.id, "exited", exited)
            self._record_exits(ctx)
        released = rowcount(ctx.conn, update(JourneyWait).where(due).values(
            status="released", **ended))
        ctx.count(self.id, "released", released)
        return _pairs(and_(ended_today, W.status == "released"))

    def _exit_rule(self, ctx: RunContext) -> Any:
        """The campaign's exit rules over a journey_waits row (its customer and, in an
        invoice_due campaign, its invoice) as a correlated EXISTS; None without exit rules."""
        if ctx.exit_when is None:
            return None
        query, scope = select(Customer.id).where(Customer.id == W.customer_id), None
        if "invoice" in scopes_read(ctx.exit_when):
            invoice = Invoice.__table__.alias("exit_invoice")
            query = query.outerjoin(invoice, invoice.c.id == W.invoice_id)
            scope = Scope(invoice=invoice)
        return query.where(compile_rules(ctx.exit_when, ctx.run_date, ctx.catalog, scope)).exists()

    def _record_exits(self, ctx: RunContext) -> None:
        summary = f"{ctx.campaign.name}: left the journey at the end of a wait (exit rules matched)"
        insert_new(ctx.conn, Activity.__table__, select(  # type: ignore[arg-type]
            W.customer_id,
            literal(ctx.now).label("at"),
            literal("journey_exited").label("kind"),
            W.campaign_id, W.node_id, W.occurrence, W.ended_run_id.label("run_id"),
            literal(summary).label("summary"),
            json_object(ctx.conn, reason=cast(literal("exit_when"), String),
                        campaign=cast(literal(ctx.campaign.key), String),
                        waited_since=cast(W.parked_on, String)).label("details"),
        ).where(W.campaign_id == ctx.campaign.id, W.node_id == self.id,
                W.status == "exited", W.ended_on == ctx.run_date))


def _counted(where: Any) -> Any:
    return select(func.count()).select_from(JourneyWait).where(where)


def _pairs(where: Any) -> AnySelect:
    return select(W.customer_id, W.occurrence, W.invoice_id).where(where)
