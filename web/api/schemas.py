"""Response and query schemas of the API (request bodies reuse the engine's schemas)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import marshmallow as ma

from engine.contacts import SMS_SENDER, SMS_SENDER_RULE
from engine.limits import INT32_MAX, fits
from engine.messaging.caps import CapSchema
from engine.messaging.quiet_hours import QuietHoursSchema
from engine.models import ApiToken, User
from engine.segments.dates import DAY_RANGE, day_problem
from engine.templates import TemplateSchema
from engine.users import MIN_PASSWORD


class UtcDateTime(ma.fields.DateTime):
    """Our timestamps are stored as naive UTC; they go out as RFC 3339 with the offset."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any,
                   **kwargs: Any) -> Any:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return super()._serialize(value, attr, obj, **kwargs)


class QueryInt(ma.fields.Integer):
    """A whole number in a query string, where every value arrives as text: "2" is 2, while
    "2.5", "two" or "" are not whole numbers. Out of [minimum, maximum] is a 400 naming the
    parameter. (A plain strict Integer refuses every query string: they are never ints.)"""

    def __init__(self, minimum: int, maximum: int, default: int, **kwargs: Any) -> None:
        super().__init__(strict=True, load_default=default,
                         validate=ma.validate.Range(minimum, maximum), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value):
            try:
                value = int(value)
            except ValueError:  # more digits than Python converts: left as text, so invalid
                pass
        return super()._deserialize(value, attr, data, **kwargs)


class Paging(ma.Schema):
    """`limit` rows from `offset` on, in the list's fixed order."""

    limit = QueryInt(1, 1000, 100, metadata={"description": "rows per answer"})
    offset = QueryInt(0, 10**7, 0, metadata={"description": "rows to skip"})


class DeliveryCounts(ma.Schema):
    sent = ma.fields.Integer()
    delivered = ma.fields.Integer()
    bounced = ma.fields.Integer(metadata={
        "description": "not delivered for good: bounced, dropped, undelivered, failed"})
    opened = ma.fields.Integer()
    clicked = ma.fields.Integer()


DELIVERY_DOC = "what became of the messages sent, as the providers reported it"


class CampaignSummary(ma.Schema):
    key = ma.fields.String()
    name = ma.fields.String()
    status = ma.fields.String()
    purpose = ma.fields.String()
    timezone = ma.fields.String()
    version = ma.fields.Integer()
    delivery = ma.fields.Nested(DeliveryCounts, metadata={
        "description": f"{DELIVERY_DOC} (all the campaign's runs; in the list only)"})


class CampaignOut(CampaignSummary):
    graph = ma.fields.Dict()


class VersionOut(ma.Schema):
    version = ma.fields.Integer()
    saved_at = UtcDateTime()
    saved_by = ma.fields.String(allow_none=True)
    graph = ma.fields.Dict()


def _in_range(day: date) -> None:
    if (why := day_problem(day)) is not None:
        raise ma.ValidationError(why)


def day_field() -> ma.fields.Date:
    """A run or as-of date, within the dates a run can compute with."""
    return ma.fields.Date(load_default=None, validate=_in_range, metadata={
        "description": f"default: today; {DAY_RANGE}",
        # The same range for clients that read the document (years 1900 to 2999).
        "pattern": r"^(19[0-9]{2}|2[0-9]{3})-[0-9]{2}-[0-9]{2}$"})


class DateArgs(ma.Schema):
    date = day_field()


class RunOut(ma.Schema):
    campaign = ma.fields.String()
    date = ma.fields.String()
    status = ma.fields.String()
    version = ma.fields.Integer()
    dry_run = ma.fields.Boolean()
    counts = ma.fields.Dict()
    timings = ma.fields.Dict()
    error = ma.fields.String(allow_none=True)
    seconds = ma.fields.Float()
    attempt = ma.fields.Integer(metadata={
        "description": "Which attempt at this campaign and date this was (0: a preview)."})
    sample = ma.fields.List(ma.fields.Dict())


class Valid(ma.Schema):
    valid = ma.fields.Boolean()


class SegmentOut(ma.Schema):
    key = ma.fields.String()
    name = ma.fields.String()
    rules = ma.fields.Dict()


class PreviewIn(ma.Schema):
    rules = ma.fields.Dict(required=True)
    date = day_field()
    limit = ma.fields.Integer(strict=True, load_default=10, validate=ma.validate.Range(0, 100))


class CustomerBrief(ma.Schema):
    external_id = ma.fields.String()
    first_name = ma.fields.String(allow_none=True)
    last_name = ma.fields.String(allow_none=True)
    email = ma.fields.String(allow_none=True)
    phone = ma.fields.String(allow_none=True)


class PreviewOut(ma.Schema):
    as_of = ma.fields.String()
    count = ma.fields.Integer()
    sample = ma.fields.List(ma.fields.Nested(CustomerBrief))


class TemplateOut(ma.Schema):
    key = ma.fields.String()
    name = ma.fields.String()
    channel = ma.fields.String()
    subject = ma.fields.String(allow_none=True)
    body = ma.fields.String()
    transliterate = ma.fields.Boolean()


class SearchArgs(ma.Schema):
    q = ma.fields.String(load_default=None, metadata={
        "description": "part of an external id, a name (first and last in either order), an "
                       "email or a phone; or a phone as written locally (082 123 4567)"})
    page = QueryInt(1, 10**6, 1, metadata={"description": "from 1"})
    per_page = QueryInt(1, 500, 50)


class CustomerOut(CustomerBrief):
    email_valid = ma.fields.Boolean()
    phone_valid = ma.fields.Boolean()
    gender = ma.fields.String(allow_none=True)
    birth_date = ma.fields.Date(allow_none=True)
    registered_at = ma.fields.Date(allow_none=True)
    branch = ma.fields.String(allow_none=True)
    region = ma.fields.String(allow_none=True)
    status = ma.fields.String(allow_none=True)
    email_opt_out = ma.fields.Boolean()
    sms_opt_out = ma.fields.Boolean()
    marketing_consent = ma.fields.Boolean()
    timezone = ma.fields.String(allow_none=True, metadata={
        "description": "IANA time zone; quiet hours are read in it (else the campaign's)"})
    attributes = ma.fields.Dict()


class CustomerPage(ma.Schema):
    page = ma.fields.Integer()
    per_page = ma.fields.Integer()
    total = ma.fields.Integer()
    items = ma.fields.List(ma.fields.Nested(CustomerBrief))


class ExplainArgs(ma.Schema):
    campaign = ma.fields.String(required=True, metadata={"description": "campaign key"})
    date = day_field()


class ExplainNode(ma.Schema):
    id = ma.fields.String()
    type = ma.fields.String()
    title = ma.fields.String(allow_none=True)
    reached = ma.fields.Boolean()
    passed = ma.fields.Boolean()
    branch = ma.fields.String(allow_none=True)
    waiting_until = ma.fields.String(allow_none=True)
    reason = ma.fields.String()
    detail = ma.fields.Raw(allow_none=True)
    effects = ma.fields.List(ma.fields.Dict())
    occurrences = ma.fields.List(ma.fields.String())


class ExplainOut(ma.Schema):
    customer = ma.fields.String()
    campaign = ma.fields.String()
    date = ma.fields.String()
    version = ma.fields.Integer()
    nodes = ma.fields.List(ma.fields.Nested(ExplainNode))


class ActivityArgs(Paging):
    kind = ma.fields.List(ma.fields.String(), load_default=None)
    campaign = ma.fields.String(load_default=None)
    since = ma.fields.Date(load_default=None)
    until = ma.fields.Date(load_default=None)


class RenderIn(ma.Schema):
    customer = ma.fields.String(required=True, metadata={"description": "external id"})


class DraftRenderIn(RenderIn):
    template = ma.fields.Nested(TemplateSchema, required=True)


class TestSendIn(RenderIn):
    to = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=320), metadata={
        "description": "the email address or phone number the test goes to"})


class DraftTestSendIn(TestSendIn):
    template = ma.fields.Nested(TemplateSchema, required=True)


class TestSendOut(ma.Schema):
    id = ma.fields.Integer()
    status = ma.fields.String(metadata={"description": "sent or failed (what the provider said)"})
    channel = ma.fields.String()
    to = ma.fields.String()
    customer = ma.fields.String()
    subject = ma.fields.String(allow_none=True)
    body = ma.fields.String()
    provider_id = ma.fields.String(allow_none=True)
    error = ma.fields.String(allow_none=True)


class RenderOut(ma.Schema):
    subject = ma.fields.String(allow_none=True)
    body = ma.fields.String()
    sms_encoding = ma.fields.String(allow_none=True)
    sms_parts = ma.fields.Integer(allow_none=True)
    characters = ma.fields.Integer()


class ActivityOut(ma.Schema):
    at = ma.fields.String()
    kind = ma.fields.String()
    campaign = ma.fields.String(allow_none=True)
    node_id = ma.fields.String(allow_none=True)
    occurrence = ma.fields.String(allow_none=True)
    summary = ma.fields.String()
    details = ma.fields.Dict()


class LedgerEntryOut(ma.Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String(metadata={"description": "accrual, adjustment, redemption, expiry"})
    amount = ma.fields.Integer(metadata={"description": "signed"})
    booked_on = ma.fields.String()
    activates_on = ma.fields.String(allow_none=True, metadata={
        "description": "a credit is pending until this date (null: from booked_on)"})
    expires_at = ma.fields.String(allow_none=True)
    legal_entity = ma.fields.String(allow_none=True)
    description = ma.fields.String(allow_none=True)
    reference = ma.fields.String(allow_none=True)
    created_by = ma.fields.String(allow_none=True)
    redeemed = ma.fields.Integer(allow_none=True, metadata={
        "description": "credits: points redemptions took from it"})
    remaining = ma.fields.Integer(allow_none=True, metadata={
        "description": "credits: points left to redeem (0 once expired)"})
    status = ma.fields.String(metadata={
        "description": "credits: pending, available, partly redeemed, redeemed or expired; "
                       "other movements: their kind"})


class BalanceOut(ma.Schema):
    as_of = ma.fields.String()
    available = ma.fields.Integer(metadata={"description": "points that may be redeemed"})
    pending = ma.fields.Integer(metadata={"description": "awarded, not yet active"})
    expiring_30 = ma.fields.Integer(metadata={
        "description": "of the available and pending points, those that expire within 30 "
                       "days"})
    expired = ma.fields.Integer()
    redeemed = ma.fields.Integer()
    entries = ma.fields.List(ma.fields.Nested(LedgerEntryOut))


class TakeOut(ma.Schema):
    credit = ma.fields.Integer(metadata={"description": "the credit's ledger id"})
    amount = ma.fields.Integer()
    expires_at = ma.fields.String(allow_none=True)
    description = ma.fields.String(allow_none=True)


class MovementOut(ma.Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String(metadata={"description": "adjustment (added) or redemption"})
    amount = ma.fields.Integer()
    booked_on = ma.fields.String()
    expires_at = ma.fields.String(allow_none=True)
    legal_entity = ma.fields.String(allow_none=True)
    description = ma.fields.String(allow_none=True)
    reference = ma.fields.String(allow_none=True)
    created_by = ma.fields.String(allow_none=True)
    took = ma.fields.List(ma.fields.Nested(TakeOut), metadata={
        "description": "a redemption: the points it took from each credit, those expiring "
                       "first first"})


class PointsOut(ma.Schema):
    movement = ma.fields.Nested(MovementOut)
    replayed = ma.fields.Boolean(metadata={
        "description": "true: the reference was booked before; nothing new was written"})
    balance = ma.fields.Nested(BalanceOut)


class IdempotencyHeader(ma.Schema):
    idempotency_key = ma.fields.String(data_key="Idempotency-Key", load_default=None,
                                       validate=ma.validate.Length(1, 100), metadata={
        "description": "books the request once: a retry with the same key returns the first "
                       "movement (the body's `reference` does the same)"})


class MessageOut(ma.Schema):
    id = ma.fields.Integer()
    campaign = ma.fields.String()
    customer = ma.fields.String(metadata={"description": "the customer's external id"})
    node_id = ma.fields.String()
    occurrence = ma.fields.String()
    channel = ma.fields.String()
    address = ma.fields.String(allow_none=True)
    status = ma.fields.String()
    skip_reason = ma.fields.String(allow_none=True)
    subject = ma.fields.String(allow_none=True)
    body = ma.fields.String(allow_none=True)
    sms_parts = ma.fields.Integer(allow_none=True, metadata={"description": "SMS parts charged"})
    sms_encoding = ma.fields.String(allow_none=True, metadata={"description": "gsm7 or ucs2"})
    send_after = UtcDateTime()
    sent_at = UtcDateTime(allow_none=True)
    attempts = ma.fields.Integer()
    last_error = ma.fields.String(allow_none=True)
    delivery_status = ma.fields.String(allow_none=True, metadata={
        "description": "as the provider reported it: deferred, delivered, bounced, dropped, "
                       "complained, undelivered, failed"})
    delivered_at = UtcDateTime(allow_none=True)
    opened_at = UtcDateTime(allow_none=True, metadata={"description": "the first open"})
    clicked_at = UtcDateTime(allow_none=True, metadata={"description": "the first click"})


class RunsArgs(Paging):
    campaign = ma.fields.String(load_default=None)


class RunAttempt(ma.Schema):
    attempt = ma.fields.Integer()
    version = ma.fields.Integer()
    status = ma.fields.String()
    started_at = ma.fields.String()
    finished_at = ma.fields.String()
    counts = ma.fields.Dict(metadata={"description": "This attempt's own figures, per node."})
    error = ma.fields.String(allow_none=True)
    folded = ma.fields.Integer(metadata={
        "description": "Present when this entry stands for several alike attempts (an event "
                       "campaign run each minute new events arrive): how many; `counts` add "
                       "up their effects."})
    first_started_at = ma.fields.String(metadata={
        "description": "With `folded`: when the first of those attempts began."})


class RunRow(ma.Schema):
    id = ma.fields.Integer()
    campaign = ma.fields.String()
    run_date = ma.fields.Date()
    version = ma.fields.Integer()
    status = ma.fields.String(metadata={
        "description": "running, completed, failed (the latest attempt's), or skipped (a date "
                       "beyond the catch-up window; `error` says why)"})
    counts = ma.fields.Dict(metadata={
        "description": "Per node: new effects (created, awarded) added up over the attempts, "
                       "the other figures the latest attempt's."})
    attempts = ma.fields.List(ma.fields.Nested(RunAttempt), metadata={
        "description": "Every attempt at this campaign and date, oldest first."})
    timings = ma.fields.Dict(allow_none=True)
    error = ma.fields.String(allow_none=True)
    started_at = UtcDateTime()
    finished_at = UtcDateTime(allow_none=True)
    delivery = ma.fields.Nested(DeliveryCounts, metadata={"description": DELIVERY_DOC})


class MessagesArgs(Paging):
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(
        ("queued", "sending", "sent", "failed", "held", "cancelled", "skipped")))
    campaign = ma.fields.String(load_default=None)


class CancelIn(ma.Schema):
    campaign = ma.fields.String(required=True)
    run_id = ma.fields.Integer(strict=True, load_default=None,
                               validate=ma.validate.Range(1, INT32_MAX))


class Count(ma.Schema):
    count = ma.fields.Integer()


class CancelOut(Count):
    on_their_way = ma.fields.Integer(metadata={
        "description": "messages a dispatcher already holds: they end as the provider answers"})


class QuietHoursDefaults(ma.Schema):
    email = ma.fields.Nested(QuietHoursSchema, allow_none=True, load_default=None)
    sms = ma.fields.Nested(QuietHoursSchema, allow_none=True, load_default=None)


class SettingsIO(ma.Schema):
    consent_mode = ma.fields.String(validate=ma.validate.OneOf(("require", "ignore")))
    reply_to = ma.fields.Email(allow_none=True)
    sender = ma.fields.Email(allow_none=True, metadata={"description": "email sender"})
    sms_sender = ma.fields.String(allow_none=True, validate=ma.validate.Regexp(
        SMS_SENDER, error=SMS_SENDER_RULE), metadata={
            "description": "SMS sender (default: NUDGEFLOW_TWILIO_FROM)"})
    quiet_hours = ma.fields.Nested(QuietHoursDefaults, metadata={
        "description": "Per channel, the daily window in which no message goes out, read in "
                       "the customer's time zone (else the campaign's); null = none"})
    frequency_caps = ma.fields.List(ma.fields.Nested(CapSchema), metadata={
        "description": "At most `max` messages of a channel (and purpose) per customer in "
                       "`days` days; over it `skip` or `delay`"})


class CreditsIn(ma.Schema):
    channel = ma.fields.String(required=True, validate=ma.validate.OneOf(("email", "sms")))
    units = ma.fields.Integer(required=True, strict=True, validate=ma.validate.Range(1, 10**9))


class CreditsOut(ma.Schema):
    email = ma.fields.Integer(allow_none=True)
    sms = ma.fields.Integer(allow_none=True)


class UserIn(ma.Schema):
    name = ma.fields.String(required=True, validate=fits(User.name, min_length=1))
    role = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=50),
                            metadata={"description": "viewer, marketer, admin or a custom role"})
    password = ma.fields.String(required=True, load_only=True,
                                validate=ma.validate.Length(min=MIN_PASSWORD))


class UserOut(ma.Schema):
    name = ma.fields.String()
    role = ma.fields.String()
    created_at = UtcDateTime()


class UserRoleIn(ma.Schema):
    role = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=50))


class TokenIn(ma.Schema):
    user = ma.fields.String(required=True)
    name = ma.fields.String(load_default=None, validate=fits(ApiToken.name))


class TokenOut(ma.Schema):
    token = ma.fields.String()


class ImportOut(ma.Schema):
    kind = ma.fields.String()
    rows = ma.fields.Integer()
    inserted = ma.fields.Integer()
    updated = ma.fields.Integer()
    unchanged = ma.fields.Integer(metadata={"description": "existing rows the records would "
                                                           "not change: not written"})
    warnings = ma.fields.Dict()


class RecordIn(ma.Schema):
    """One record as a JSON object with the import file's columns (external_id from the
    path); a column the file format does not know goes to `attributes`."""

    class Meta:
        unknown = ma.INCLUDE


class Records(ma.Schema):
    """A JSON array of records, as in the import files (at most 10,000)."""

    records = ma.fields.List(ma.fields.Dict(), required=True,
                             validate=ma.validate.Length(min=1, max=10_000))


class DatasetFileArgs(ma.Schema):
    columns = ma.fields.String(required=True, metadata={
        "description": "comma-separated columns: customer fields, attributes.NAME, derived fields"})
    date = day_field()
    sort = ma.fields.String(load_default=None, validate=ma.validate.Length(1, 100), metadata={
        "description": "order: FIELD or -FIELD (descending), empty values last, ties by "
                       "external_id; default external_id"})


class DatasetArgs(DatasetFileArgs):
    limit = QueryInt(1, 1000, 100, metadata={"description": "rows per answer"})
    after = ma.fields.String(load_default=None, validate=ma.validate.Length(1, 1000), metadata={
        "description": "the `next` of the previous answer (with the same sort)"})


class DatasetOut(ma.Schema):
    columns = ma.fields.List(ma.fields.String())
    as_of = ma.fields.String()
    sort = ma.fields.String(metadata={"description": "the order of the rows"})
    total = ma.fields.Integer(metadata={"description": "members as of the date"})
    items = ma.fields.List(ma.fields.Dict(), metadata={"description": "rows, by column name"})
    next = ma.fields.String(allow_none=True, metadata={
        "description": "pass as `after` for the next page; null on the last"})
