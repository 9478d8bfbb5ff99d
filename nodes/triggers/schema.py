"""The trigger's config: `kind` and the keys each kind takes."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from engine.limits import fits
from engine.models import Event
from nodes.triggers.date import DATE_FIELDS, REPEATS, date_field
from nodes.triggers.schedule import WEEKDAYS

KINDS = ("date", "invoice_due", "schedule", "manual", "event")
# No default day: a weekly schedule that fell back to Monday would run on a day nobody chose.
PICK_DAYS = 'required when every is week: pick the days it runs on, e.g. ["mon", "thu"]'
# The keys only one kind reads: given to another kind, they would be silently ignored.
ONLY_FOR = {"repeat": "date", "name": "event", "where": "event"}


class TriggerSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    field = fields.String(validate=date_field)
    offset_days = fields.Integer(strict=True, load_default=0,
                                 validate=validate.Range(-366, 366))
    repeat = fields.String(validate=validate.OneOf(REPEATS), metadata={
        "description": "date trigger: yearly (the anniversary, default) or once (the date "
                       "itself)"})
    every = fields.String(validate=validate.OneOf(("day", "week", "month")))
    weekdays = fields.List(fields.String(validate=validate.OneOf(WEEKDAYS)),
                           validate=validate.Length(min=1, error=PICK_DAYS))
    day_of_month = fields.Integer(strict=True, validate=validate.Range(1, 31))
    name = fields.String(validate=fits(Event.name, min_length=1), metadata={
        "description": "event trigger: the events' name"})
    where = fields.Dict(metadata={"description": "event trigger: segment rules the customer "
                                                 "(and the event) must match"})

    @validates_schema
    def _per_kind(self, data: dict[str, Any], **_kw: Any) -> None:
        """Every key missing or out of place for the kind, not just the first."""
        kind = data.get("kind")
        errors: dict[str, str] = {key: f"only for a {owner} trigger"
                                  for key, owner in ONLY_FOR.items()
                                  if key in data and kind != owner}
        if kind == "date" and "field" not in data:
            errors["field"] = f"required for a date trigger ({', '.join(DATE_FIELDS)})"
        if kind == "event" and "name" not in data:
            errors["name"] = "required for an event trigger (the events' name)"
        if kind == "schedule":
            every = data.get("every")
            if every is None:
                errors["every"] = "required for a schedule trigger (day, week or month)"
            elif every == "week" and "weekdays" not in data:
                errors["weekdays"] = PICK_DAYS
            elif every == "month" and "day_of_month" not in data:
                errors["day_of_month"] = "required when every is month (1-31; 31 = last day)"
        if errors:
            raise ValidationError({key: [message] for key, message in errors.items()})
