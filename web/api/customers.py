"""/api/v1/customers: search, profile, activity timeline, detailed bonus balance, messages."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask.views import MethodView
from sqlalchemy import func, or_, select

from engine.activity import customer_id, timeline
from engine.ledger import balance
from engine.models import Campaign, Customer, Message
from web.api import Blueprint
from web.api.schemas import (
    ActivityArgs,
    ActivityOut,
    BalanceOut,
    CustomerOut,
    CustomerPage,
    DateArgs,
    MessageOut,
    SearchArgs,
)
from web.db import engine

blp = Blueprint("customers", __name__, url_prefix="/api/v1/customers",
                description="Customers, what they were sent and awarded")
BRIEF = (Customer.external_id, Customer.first_name, Customer.last_name, Customer.email,
         Customer.phone)


@blp.route("")
class Customers(MethodView):
    @blp.arguments(SearchArgs, location="query")
    @blp.response(200, CustomerPage)
    def get(self, args: dict[str, Any]) -> Any:
        where = []
        if args["q"]:
            needle = f"%{args['q'].lower()}%"
            where.append(or_(*(func.lower(c).like(needle) for c in BRIEF)))
        with engine().connect() as conn:
            total = conn.execute(select(func.count()).select_from(Customer).where(*where)
                                 ).scalar_one()
            rows = conn.execute(select(*BRIEF).where(*where).order_by(Customer.id)
                                .limit(args["per_page"])
                                .offset((args["page"] - 1) * args["per_page"])).all()
        return {"page": args["page"], "per_page": args["per_page"], "total": total,
                "items": [dict(r._mapping) for r in rows]}


@blp.route("/<external_id>")
class CustomerItem(MethodView):
    @blp.response(200, CustomerOut)
    def get(self, external_id: str) -> Any:
        with engine().connect() as conn:
            cid = customer_id(conn, external_id)
            return dict(conn.execute(select(Customer.__table__).where(Customer.id == cid))
                        .one()._mapping)


@blp.route("/<external_id>/activity")
class Activity(MethodView):
    @blp.arguments(ActivityArgs, location="query")
    @blp.response(200, ActivityOut(many=True))
    def get(self, args: dict[str, Any], external_id: str) -> Any:
        with engine().connect() as conn:
            return timeline(conn, customer_id(conn, external_id), args["kind"], args["limit"],
                            campaign=args["campaign"], since=args["since"],
                            until=args["until"], offset=args["offset"])


@blp.route("/<external_id>/balance")
class Balance(MethodView):
    @blp.arguments(DateArgs, location="query")
    @blp.response(200, BalanceOut)
    def get(self, args: dict[str, Any], external_id: str) -> Any:
        with engine().connect() as conn:
            return balance(conn, customer_id(conn, external_id), args["date"] or date.today())


@blp.route("/<external_id>/messages")
class Messages(MethodView):
    @blp.response(200, MessageOut(many=True))
    def get(self, external_id: str) -> Any:
        with engine().connect() as conn:
            cid = customer_id(conn, external_id)
            rows = conn.execute(
                select(Message.id, Campaign.key.label("campaign"), Message.node_id,
                       Message.occurrence, Message.channel, Message.address, Message.status,
                       Message.skip_reason, Message.subject, Message.body, Message.send_after,
                       Message.sent_at, Message.attempts, Message.last_error)
                .join(Campaign, Campaign.id == Message.campaign_id)
                .where(Message.customer_id == cid).order_by(Message.id)).all()
        return [dict(r._mapping) for r in rows]
