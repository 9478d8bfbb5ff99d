"""Query and answer schemas of the reports API (/api/v1/reports)."""

from __future__ import annotations

from datetime import date
from typing import Any

import marshmallow as ma

from engine.models.campaigns import CHANNELS
from engine.models.effects import LEDGER_KINDS, MESSAGE_STATUSES
from engine.reports.messages import DIMENSIONS
from engine.reports.points import CURSOR_PATTERN, parse_cursor
from engine.segments.dates import DAY_RANGE, day_problem
from web.api.schemas import QueryInt

TEXT = ma.validate.Length(1, 200)


def _in_range(day: date) -> None:
    if (why := day_problem(day)) is not None:
        raise ma.ValidationError(why)


def _day(key: str, what: str) -> ma.fields.Date:
    return ma.fields.Date(load_default=None, data_key=key, validate=_in_range, metadata={
        "description": f"{what} (YYYY-MM-DD, {DAY_RANGE}); default: no limit",
        "pattern": r"^(19[0-9]{2}|2[0-9]{3})-[0-9]{2}-[0-9]{2}$"})


class Dates(ma.Schema):
    since = _day("from", "the first day")
    until = _day("to", "the last day")

    @ma.validates_schema
    def _ordered(self, data: dict[str, Any], **_kw: Any) -> None:
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise ma.ValidationError(f"must be on or after `from` ({data['since']})", "to")


class Dimensions(ma.fields.String):
    """`by`: comma-separated dimensions, in any order."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        names = [n.strip() for n in text.split(",")]
        wrong = [n for n in names if n not in DIMENSIONS]
        if wrong or not names:
            raise ma.ValidationError(f"expected some of {', '.join(DIMENSIONS)} separated by "
                                     f"commas; unknown: {', '.join(map(repr, wrong))}")
        return tuple(d for d in DIMENSIONS if d in names)


class MessagesFilterArgs(Dates):
    campaign = ma.fields.String(load_default=None, validate=TEXT,
                                metadata={"description": "campaign key"})
    channel = ma.fields.String(load_default=None, validate=ma.validate.OneOf(CHANNELS))
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(MESSAGE_STATUSES))
    by = Dimensions(load_default=DIMENSIONS, metadata={
        "description": f"the groups, some of {','.join(DIMENSIONS)} (default: all of them)",
        "pattern": f"^({'|'.join(DIMENSIONS)})(,({'|'.join(DIMENSIONS)}))*$"})


class MessagesReportArgs(MessagesFilterArgs):
    limit = QueryInt(1, 1000, 1000, metadata={"description": "groups per answer"})
    offset = QueryInt(0, 10**7, 0, metadata={"description": "groups to skip"})


class Figures(ma.Schema):
    messages = ma.fields.Integer()
    sms_parts = ma.fields.Integer(metadata={"description": "SMS parts of the sent messages"})
    credits = ma.fields.Integer(metadata={
        "description": "units the sent messages cost: one per email, one per SMS part"})


class MessageGroup(Figures):
    day = ma.fields.Date(metadata={"description": "in the workspace's time zone: the day a "
                                                  "sent message was sent, another created"})
    campaign = ma.fields.String()
    channel = ma.fields.String()
    status = ma.fields.String()


class MessageTotals(Figures):
    by_status = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(Figures))


class MessagesReportOut(ma.Schema):
    by = ma.fields.List(ma.fields.String())
    timezone = ma.fields.String(metadata={"description": "NUDGEFLOW_TIMEZONE, of the days"})
    since = ma.fields.Date(allow_none=True, attribute="from", data_key="from")
    until = ma.fields.Date(allow_none=True, attribute="to", data_key="to")
    total_rows = ma.fields.Integer(metadata={"description": "groups in the whole report"})
    rows = ma.fields.List(ma.fields.Nested(MessageGroup))
    totals = ma.fields.Nested(MessageTotals, metadata={
        "description": "every message of the filter, not just this page's groups"})


class Cursor(ma.fields.String):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            return parse_cursor(super()._deserialize(value, attr, data, **kwargs))
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None


class PointsFilterArgs(Dates):
    description = ma.fields.String(load_default=None, validate=TEXT, metadata={
        "description": "text the description contains, in any case"})
    legal_entity = ma.fields.String(load_default=None, validate=ma.validate.Length(1, 100),
                                    metadata={"description": "the whole name, in any case"})
    campaign = ma.fields.String(load_default=None, validate=TEXT,
                                metadata={"description": "campaign key"})
    customer = ma.fields.String(load_default=None, validate=TEXT,
                                metadata={"description": "the customer's external id"})
    kind = ma.fields.String(load_default=None, validate=ma.validate.OneOf(LEDGER_KINDS))


class PointsReportArgs(PointsFilterArgs):
    limit = QueryInt(1, 1000, 100, metadata={"description": "rows per answer"})
    after = Cursor(load_default=None, metadata={
        "description": "the `next` of the previous answer: the rows after it",
        "pattern": CURSOR_PATTERN})


class LedgerRow(ma.Schema):
    id = ma.fields.Integer()
    booked_on = ma.fields.Date()
    kind = ma.fields.String()
    amount = ma.fields.Integer(metadata={"description": "signed points"})
    expires_at = ma.fields.Date(allow_none=True)
    legal_entity = ma.fields.String(allow_none=True)
    description = ma.fields.String(allow_none=True)
    campaign = ma.fields.String(allow_none=True, metadata={"description": "campaign key"})
    customer = ma.fields.String(metadata={"description": "the customer's external id"})


class KindTotal(ma.Schema):
    rows = ma.fields.Integer()
    points = ma.fields.Integer()


class PointsTotals(ma.Schema):
    kinds = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(KindTotal),
                           metadata={"description": "accrual, expiry, redemption, adjustment"})
    rows = ma.fields.Integer()
    net = ma.fields.Integer(metadata={"description": "the points of every row, added up"})


class PointsReportOut(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(LedgerRow))
    next = ma.fields.String(allow_none=True, metadata={
        "description": "pass as `after` for the next page; null on the last"})
    totals = ma.fields.Nested(PointsTotals, metadata={
        "description": "every row of the filter, not just this page's"})


class RunFigures(ma.Schema):
    run_id = ma.fields.Integer()
    date = ma.fields.Date()
    status = ma.fields.String()
    reached = ma.fields.Integer(allow_none=True, metadata={
        "description": "pairs the trigger passed on (null when the run has no such figure)"})
    messages = ma.fields.Integer(metadata={"description": "messages the run created"})
    sent = ma.fields.Integer()
    failed = ma.fields.Integer()
    skipped = ma.fields.Integer()
    skipped_by_reason = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    points_awarded = ma.fields.Integer()
    points_expired = ma.fields.Integer(metadata={
        "description": "of the points awarded, how many have expired since"})


class CampaignRunsOut(ma.Schema):
    campaign = ma.fields.String()
    name = ma.fields.String()
    since = ma.fields.Date(allow_none=True, attribute="from", data_key="from")
    until = ma.fields.Date(allow_none=True, attribute="to", data_key="to")
    runs = ma.fields.List(ma.fields.Nested(RunFigures))
