"""What a blast asks for, validated: the data set (a segment or inline rules, as of a date),
the rows (all, or customers by external id), the message (a send-message node's config: a
template or inline channel/subject/body, send time, reply-to, sender) and the purpose."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from marshmallow import ValidationError as SchemaError
from marshmallow import fields, validate, validates_schema

from engine.errors import Problem, ValidationError
from engine.graph import KEY
from engine.limits import fits
from engine.models import Blast, Campaign, Customer
from engine.segments.dates import day_problem
from nodes.send_message import SendMessageSchema

MAX_LISTED = 100_000
# The send-message settings a blast takes (the rest of its body says what to send to whom).
MESSAGE_KEYS = ("template", "channel", "subject", "body", "transliterate", "reply_to",
                "sender", "send_at", "tracking")


def _day(value: date) -> None:
    if (why := day_problem(value)) is not None:
        raise SchemaError(why)


class BlastSchema(SendMessageSchema):
    """A blast: the send-message node's settings plus the data set, the rows and the purpose."""

    segment = fields.String(validate=KEY, metadata={"description": "a saved segment's key"})
    rules = fields.Dict(metadata={"description": "inline segment rules instead of a segment"})
    date = fields.Date(validate=_day, metadata={
        "description": "the data set as of this date (default today in the workspace's zone)"})
    all = fields.Boolean(load_default=False, metadata={"description": "every row of the data set"})
    customers = fields.List(fields.String(validate=fits(Customer.external_id, 1)),
                            validate=validate.Length(max=MAX_LISTED), metadata={
                                "description": "the chosen rows, by external id"})
    purpose = fields.String(load_default="marketing",
                            validate=validate.OneOf(("marketing", "service")), metadata={
                                "description": "marketing needs consent (unless the workspace "
                                               "ignores it)"})
    name = fields.String(validate=fits(Campaign.name, 1))
    client_token = fields.String(validate=fits(Blast.client_token, 1), metadata={
        "description": "idempotency key (or the Idempotency-Key header): the same key "
                       "creates the blast once"})

    @validates_schema
    def _blast(self, data: dict[str, Any], **_kw: Any) -> None:
        errors: dict[str, str] = {}
        if ("segment" in data) == ("rules" in data):
            errors["segment"] = "give either segment (a key) or inline rules, not both"
        if data["all"] and "customers" in data:
            errors["customers"] = "give customers or all, not both"
        elif not data["all"] and not data.get("customers"):
            errors["customers"] = ("empty selection: list the customers (external ids) to "
                                   "send to, or set all to send to every row")
        if data.get("send_at", {}).get("mode") == "at":
            errors["send_at"] = "a blast is sent now, after a delay or at a date and time " \
                                "(mode now, delay or datetime)"
        if errors:
            raise SchemaError(errors)


@dataclass(frozen=True)
class BlastRequest:
    source: dict[str, Any]  # {"segment": key} or inline rules
    as_of: date
    customers: tuple[str, ...] | None  # None: every row
    message: dict[str, Any]  # the send-message node's config (JSON)
    purpose: str
    name: str | None
    client_token: str | None
    by_key: bool = True  # the source names a saved segment (else inline rules)

    @property
    def source_path(self) -> str:
        return "$.segment" if self.by_key else "$.rules"

    def fingerprint(self) -> str:
        """SHA-256 of what is asked (without the idempotency key)."""
        doc = {"source": self.source, "as_of": self.as_of.isoformat(),
               "customers": self.customers, "message": self.message, "purpose": self.purpose,
               "name": self.name}
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def load_request(raw: Any, today: date, token: str | None = None) -> BlastRequest:
    """Validate a blast's body (the API's JSON, or what the CLI gathered); every problem is
    named by its path. `token`: an Idempotency-Key header, which a body's client_token must
    equal when both are given."""
    try:
        data = BlastSchema().load(raw)
    except SchemaError as exc:
        raise ValidationError.from_messages(exc.messages) from None
    given = data.get("client_token")
    if token is not None and given is not None and token != given:
        raise ValidationError([Problem("$.client_token", "differs from the Idempotency-Key "
                                                         "header; give one of them")])
    message = SendMessageSchema().dump({k: data[k] for k in MESSAGE_KEYS if k in data})
    listed = None
    if not data["all"]:
        listed = tuple(dict.fromkeys(data["customers"]))  # each once, in the order given
    by_key = "segment" in data
    return BlastRequest(source={"segment": data["segment"]} if by_key else data["rules"],
                        as_of=data.get("date") or today, customers=listed, message=message,
                        purpose=data["purpose"], name=data.get("name"),
                        client_token=token or given, by_key=by_key)
