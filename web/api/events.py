"""/api/v1/events: events from other systems, one object or a list, all or nothing."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from engine.importing import from_list
from engine.journeys.events import MAX_EVENTS, ingest
from engine.limits import fits
from engine.models import Customer
from web.api import Blueprint
from web.db import engine

blp = Blueprint("events", __name__, url_prefix="/api/v1",
                description="Events that trigger event campaigns")


class EventIn(ma.Schema):
    """One event; a list of up to 10,000 is stored all or nothing (any bad item: 400 naming
    its index, nothing stored)."""

    id = ma.fields.String(required=True, validate=ma.validate.Length(1, 100), metadata={
        "description": "the sender's idempotency key: an id already stored is a duplicate"})
    customer = ma.fields.String(required=True, validate=fits(Customer.external_id, 1),
                                metadata={"description": "the customer's external id"})
    name = ma.fields.String(required=True, validate=ma.validate.Length(1, 100))
    # Parsed by the engine, which insists on the offset (marshmallow would take a naive time).
    at = ma.fields.String(metadata={"format": "date-time",
                                    "description": "RFC 3339 with an offset; default now"})
    properties = ma.fields.Dict(keys=ma.fields.String())

    @ma.pre_load(pass_collection=True)
    def _one_or_many(self, data: Any, many: bool, **_kw: Any) -> Any:
        if not many:
            return data
        if isinstance(data, dict):
            return [data]
        if isinstance(data, list) and not 1 <= len(data) <= MAX_EVENTS:
            raise ma.ValidationError(f"expected 1 to {MAX_EVENTS:,} events, got {len(data):,}")
        return data


class EventsOut(ma.Schema):
    received = ma.fields.Integer(metadata={"description": "events in the request"})
    created = ma.fields.Integer(metadata={"description": "events stored now"})
    duplicates = ma.fields.Integer(metadata={
        "description": "events whose id was already stored (or given twice): not stored again"})


@blp.route("/events")
class Events(MethodView):
    @blp.arguments(EventIn(many=True))
    @blp.response(201, EventsOut, description="at least one event was stored")
    @blp.alt_response(200, schema=EventsOut, description="every event was a duplicate")
    def post(self, events: list[dict[str, Any]]) -> Any:
        """Store one event (an object) or a list of them; the same id twice is stored once."""
        result = ingest(engine(), from_list(events))
        return result.as_dict(), 201 if result.created else 200
