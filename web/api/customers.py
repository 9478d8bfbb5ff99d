"""/api/v1/customers: search, profile, activity timeline, detailed bonus balance, points
booked by hand, messages. Email addresses and phone numbers are masked for users without
contacts.view."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_login import current_user
from sqlalchemy import select

from engine.access.masking import masked, masked_activity, masked_explain
from engine.activity import customer_id, timeline
from engine.campaigns import campaign_today
from engine.db import write_transaction
from engine.errors import Problem, ValidationError
from engine.executor import load_campaign_row
from engine.journeys.explain import explain
from engine.lookup import customer_messages, search_customers
from engine.models import Customer
from engine.points import PointsSchema, adjust, balance
from web.api import Blueprint
from web.api.schemas import (
    ActivityArgs,
    ActivityOut,
    BalanceOut,
    CustomerOut,
    CustomerPage,
    DateArgs,
    ExplainArgs,
    ExplainOut,
    IdempotencyHeader,
    MessageOut,
    Paging,
    PointsOut,
    SearchArgs,
)
from web.db import engine
from web.permissions import sees_contacts

blp = Blueprint("customers", __name__, url_prefix="/api/v1/customers",
                description="Customers, what they were sent and awarded")


@blp.route("")
class Customers(MethodView):
    @blp.arguments(SearchArgs, location="query")
    @blp.response(200, CustomerPage)
    def get(self, args: dict[str, Any]) -> Any:
        contacts = sees_contacts()
        with engine().connect() as conn:
            found = search_customers(conn, args["q"], args["page"], args["per_page"],
                                     current_app.config["NUDGEFLOW_SETTINGS"].default_region,
                                     contacts)
        return found if contacts else {**found, "items": [masked(c) for c in found["items"]]}


@blp.route("/<ext:external_id>")
class CustomerItem(MethodView):
    @blp.response(200, CustomerOut)
    def get(self, external_id: str) -> Any:
        with engine().connect() as conn:
            cid = customer_id(conn, external_id)
            row = dict(conn.execute(select(Customer.__table__).where(Customer.id == cid))
                       .one()._mapping)
        return row if sees_contacts() else masked(row)


@blp.route("/<ext:external_id>/activity")
class Activity(MethodView):
    @blp.arguments(ActivityArgs, location="query")
    @blp.response(200, ActivityOut(many=True))
    def get(self, args: dict[str, Any], external_id: str) -> Any:
        with engine().connect() as conn:
            found = timeline(conn, customer_id(conn, external_id), args["kind"], args["limit"],
                             campaign=args["campaign"], since=args["since"],
                             until=args["until"], offset=args["offset"])
        return found if sees_contacts() else [masked_activity(a) for a in found]


@blp.route("/<ext:external_id>/explain")
class Explain(MethodView):
    @blp.arguments(ExplainArgs, location="query")
    @blp.response(200, ExplainOut)
    def get(self, args: dict[str, Any], external_id: str) -> Any:
        """What a campaign does, or would do, for this customer on a date, node by node:
        reached, passed, the branch or the wait, why, and the effects. Writes nothing."""
        with engine().connect() as conn:
            customer_id(conn, external_id)  # 404 for an unknown customer first
            tz = load_campaign_row(conn, args["campaign"]).timezone
        found = explain(engine(), external_id, args["campaign"],
                        args["date"] or campaign_today(tz))
        return found if sees_contacts() else masked_explain(found)


@blp.route("/<ext:external_id>/balance")
class Balance(MethodView):
    @blp.arguments(DateArgs, location="query")
    @blp.response(200, BalanceOut)
    def get(self, args: dict[str, Any], external_id: str) -> Any:
        with engine().connect() as conn:
            return balance(conn, customer_id(conn, external_id), args["date"] or campaign_today(
                current_app.config["NUDGEFLOW_SETTINGS"].timezone))


@blp.route("/<ext:external_id>/points")
class Points(MethodView):
    @blp.arguments(IdempotencyHeader, location="headers")
    @blp.arguments(PointsSchema)
    @blp.response(201, PointsOut, description="booked")
    @blp.alt_response(200, schema=PointsOut, description="the reference (or Idempotency-Key) "
                      "was booked before: the first movement, nothing new")
    @blp.alt_response(409, description="insufficient_points: a redemption asks for more than "
                      "is available (nothing written); idempotency_conflict: the reference "
                      "was used for another movement")
    def post(self, headers: dict[str, Any], body: dict[str, Any], external_id: str) -> Any:
        """Add points (amount > 0, an `adjustment`, optionally expiring) or redeem them
        (amount < 0, a `redemption` taking from the points that expire first, never more than
        are available; pending points cannot be redeemed). Books on today's date in the
        workspace's time zone, writes the activity, returns the movement and the new
        balance."""
        key = headers.get("idempotency_key")
        if key is not None and body.get("reference") not in (None, key):
            raise ValidationError([Problem("$.reference", "differs from the Idempotency-Key "
                                                          "header; send one or the same")])
        body["reference"] = body.get("reference") or key
        today = campaign_today(current_app.config["NUDGEFLOW_SETTINGS"].timezone)
        with write_transaction(engine()) as conn:
            cid = customer_id(conn, external_id)
            booked = adjust(conn, cid, body, today, current_user.name)
            after = balance(conn, cid, today)
        return ({"movement": booked.movement, "replayed": booked.replayed, "balance": after},
                200 if booked.replayed else 201)


@blp.route("/<ext:external_id>/messages")
class Messages(MethodView):
    @blp.arguments(Paging, location="query")
    @blp.response(200, MessageOut(many=True))
    def get(self, args: dict[str, Any], external_id: str) -> Any:
        """Oldest first."""
        with engine().connect() as conn:
            found = customer_messages(conn, customer_id(conn, external_id), args["limit"],
                                      args["offset"])
        return found if sees_contacts() else [masked(m) for m in found]
