"""/api/v1/blasts: send a template to a data set's rows once (all, or those chosen), preview
it, read blasts with their counts, and stop one (cancel its queued and held messages)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app, request
from flask.views import MethodView
from flask_login import current_user

from engine import blasts
from engine.campaigns import campaign_today
from engine.cancel import cancel_messages
from web.api import Blueprint
from web.api.schemas import CancelOut, Paging, UtcDateTime
from web.db import engine

blp = Blueprint("blasts", __name__, url_prefix="/api/v1/blasts",
                description="One-off sends to a data set's rows, each a run of its own")
IDEMPOTENCY = {"parameters": [{
    "in": "header", "name": "Idempotency-Key", "required": False,
    "schema": {"type": "string", "maxLength": 100},
    "description": "the same key (or body client_token) makes the blast once: a repeat "
                   "answers 200 with the blast it made; another request under it, 409"}]}


class BlastCounts(ma.Schema):
    recipients = ma.fields.Integer(metadata={
        "description": "rows that reached the send: chosen and in the data set"})
    queued = ma.fields.Integer()
    skipped = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), metadata={
        "description": "by reason: opted_out, no_marketing_consent, no_address, "
                       "invalid_address"})


class BlastPreviewOut(ma.Schema):
    dry_run = ma.fields.Boolean()
    date = ma.fields.String()
    selection = ma.fields.String(metadata={"description": "all or list"})
    requested = ma.fields.Integer(metadata={"description": "rows asked for"})
    not_members = ma.fields.List(ma.fields.String(), metadata={
        "description": "listed customers outside the data set as of the date: not sent"})
    counts = ma.fields.Nested(BlastCounts)


class BlastRun(ma.Schema):
    id = ma.fields.Integer(allow_none=True)
    status = ma.fields.String(allow_none=True)
    error = ma.fields.String(allow_none=True)


class BlastOut(BlastPreviewOut):
    id = ma.fields.Integer()
    key = ma.fields.String(metadata={"description": "its campaign key: messages, runs and "
                                                    "activities name the blast by it"})
    name = ma.fields.String()
    purpose = ma.fields.String()
    segment = ma.fields.String(allow_none=True)
    rules = ma.fields.Dict(allow_none=True)
    template = ma.fields.String(allow_none=True)
    channel = ma.fields.String(allow_none=True)
    send_at = ma.fields.Dict()
    created_by = ma.fields.String(allow_none=True)
    created_at = UtcDateTime()
    run = ma.fields.Nested(BlastRun)
    messages = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), metadata={
        "description": "the blast's messages by status, now"})


def _load() -> blasts.BlastRequest:
    tz = current_app.config["NUDGEFLOW_SETTINGS"].timezone
    return blasts.load_request(request.get_json(), campaign_today(tz),
                               request.headers.get("Idempotency-Key") or None)


def _tz() -> str:
    return str(current_app.config["NUDGEFLOW_SETTINGS"].timezone)


@blp.route("")
class Blasts(MethodView):
    @blp.arguments(Paging, location="query")
    @blp.response(200, BlastOut(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """Newest first."""
        with engine().connect() as conn:
            return blasts.list_blasts(conn, args["limit"], args["offset"])

    @blp.arguments(blasts.BlastSchema)
    @blp.response(201, BlastOut)
    @blp.alt_response(200, schema=BlastOut, description="made before under this key")
    @blp.alt_response(409, description="the key was used for another blast")
    @blp.doc(**IDEMPOTENCY)
    def post(self, _body: Any) -> Any:
        """Make the blast and queue its messages (201), once per idempotency key."""
        made, new = blasts.create(engine(), _load(), _tz(), created_by=current_user.name)
        return made, 201 if new else 200


@blp.route("/preview")
class Preview(MethodView):
    @blp.arguments(blasts.BlastSchema)
    @blp.response(200, BlastPreviewOut)
    def post(self, _body: Any) -> Any:
        """What the blast would do (rows, queued, skipped by reason); writes nothing."""
        preview, _ = blasts.create(engine(), _load(), _tz(), dry_run=True)
        return preview


@blp.route("/<int(max=2147483647):blast_id>")
class BlastItem(MethodView):
    @blp.response(200, BlastOut)
    def get(self, blast_id: int) -> Any:
        with engine().connect() as conn:
            return blasts.describe(conn, blast_id)


@blp.route("/<int(max=2147483647):blast_id>/stop")
class Stop(MethodView):
    @blp.response(200, CancelOut)
    def post(self, blast_id: int) -> Any:
        """Cancel the blast's queued and held messages (STOP); those a dispatcher already
        holds (`on_their_way`) end as the provider answers."""
        with engine().connect() as conn:
            key = blasts.describe(conn, blast_id)["key"]
        done = cancel_messages(engine(), key)
        return {"count": done.cancelled, "on_their_way": done.on_their_way}

