"""`award-bonus`: an accrual of points with an expiry, and a `bonus_awarded` activity.

With `activates_after_days` N the points are pending for N days (booked on the run date D,
available from D+N: Loymax's non-activated balance); their lifetime counts from activation,
so they expire on D+N+lifetime_days.
"""

from __future__ import annotations

from datetime import timedelta

from marshmallow import Schema, fields, validate
from sqlalchemy import Date, FromClause, Integer, String, cast, literal, select

from engine.limits import INT32_MAX, fits
from engine.models import Activity, BonusLedger
from engine.sql import AnySelect, added_since, insert_new, json_object, last_id
from nodes.base import Node, RunContext


class AwardBonusSchema(Schema):
    amount = fields.Integer(required=True, strict=True,
                            validate=validate.Range(min=1, max=INT32_MAX))
    lifetime_days = fields.Integer(strict=True, allow_none=True, load_default=None,
                                   validate=validate.Range(min=1, max=36600))
    # No default: configs saved before it existed stay as they were.
    activates_after_days = fields.Integer(strict=True, allow_none=True,
                                          validate=validate.Range(min=0, max=36600))
    legal_entity = fields.String(load_default=None, validate=fits(BonusLedger.legal_entity))
    description = fields.String(load_default=None, validate=fits(BonusLedger.description))


class AwardBonus(Node):
    type_name = "award-bonus"
    schema = AwardBonusSchema

    def execute(self, ctx: RunContext, pairs: FromClause | None) -> AnySelect:
        assert pairs is not None
        passed = select(pairs.c.customer_id, pairs.c.occurrence, pairs.c.invoice_id)
        if ctx.dry_run:
            return passed
        cfg = self.config
        lifetime = cfg["lifetime_days"]
        delay = cfg.get("activates_after_days") or 0
        activates = ctx.run_date + timedelta(days=delay) if delay else None
        expires = (activates or ctx.run_date) + timedelta(days=lifetime) if lifetime else None
        campaign = ctx.campaign
        before = last_id(ctx.conn, BonusLedger.__table__)
        awarded = insert_new(ctx.conn, BonusLedger.__table__, select(  # type: ignore[arg-type]
            pairs.c.customer_id,
            literal("accrual").label("kind"),
            literal(cfg["amount"], Integer).label("amount"),
            literal(ctx.run_date, Date).label("booked_on"),
            literal(activates, Date).label("activates_on"),
            literal(expires, Date).label("expires_at"),
            literal(cfg["legal_entity"], String).label("legal_entity"),
            literal(cfg["description"], String).label("description"),
            literal(campaign.id, Integer).label("campaign_id"),
            literal(self.id, String).label("node_id"),
            pairs.c.occurrence,
            literal(ctx.run_id, Integer).label("run_id"),
        ))
        ctx.count(self.id, "awarded", awarded)
        until = f", available from {activates.isoformat()}" if activates else ""
        until += f", valid until {expires.isoformat()}" if expires else ""
        summary = f"Awarded {cfg['amount']} points: {cfg['description'] or campaign.name}{until}"
        insert_new(ctx.conn, Activity.__table__, select(  # type: ignore[arg-type]
            BonusLedger.customer_id,
            literal(ctx.now).label("at"),
            literal("bonus_awarded").label("kind"),
            BonusLedger.campaign_id, BonusLedger.node_id, BonusLedger.occurrence,
            BonusLedger.run_id,
            BonusLedger.id.label("ledger_id"),
            literal(summary).label("summary"),
            json_object(ctx.conn, amount=BonusLedger.amount,
                        expires_at=cast(BonusLedger.expires_at, String),
                        activates_on=cast(BonusLedger.activates_on, String),
                        legal_entity=BonusLedger.legal_entity,
                        campaign=cast(literal(campaign.key), String)).label("details"),
        ).where(added_since(BonusLedger.__table__, before, ctx.run_id)))
        return passed
