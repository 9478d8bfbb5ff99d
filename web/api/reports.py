"""/api/v1/reports: messages by day, campaign, channel and status; bonus ledger movements
with totals; a campaign's runs over time. The CSV variants stream the whole report."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView

from engine.reports import campaign_runs, messages, points
from web.api import Blueprint
from web.api.csvstream import CSV_DOC, stream_csv
from web.api.report_schemas import (
    CampaignRunsOut,
    Dates,
    MessagesFilterArgs,
    MessagesReportArgs,
    MessagesReportOut,
    PointsFilterArgs,
    PointsReportArgs,
    PointsReportOut,
)
from web.db import engine

blp = Blueprint("reports", __name__, url_prefix="/api/v1/reports",
                description="Reports: messages, points, campaign runs")


def message_filter(args: dict[str, Any]) -> messages.MessageFilter:
    return messages.MessageFilter(
        timezone=current_app.config["NUDGEFLOW_SETTINGS"].timezone, since=args["since"],
        until=args["until"], campaign=args["campaign"], channel=args["channel"],
        status=args["status"])


def points_filter(args: dict[str, Any]) -> points.PointsFilter:
    return points.PointsFilter(**{k: args[k] for k in (
        "description", "legal_entity", "campaign", "customer", "kind", "since", "until")})


@blp.route("/messages")
class MessagesReport(MethodView):
    @blp.arguments(MessagesReportArgs, location="query")
    @blp.response(200, MessagesReportOut)
    def get(self, args: dict[str, Any]) -> Any:
        """Messages by day (in the workspace's time zone), campaign, channel and status, with
        SMS parts and credits used; `limit` groups from `offset` on, totals over all."""
        with engine().connect() as conn:
            return messages.report(conn, message_filter(args), args["by"], args["limit"],
                                   args["offset"])


@blp.route("/messages.csv")
class MessagesReportCsv(MethodView):
    @blp.arguments(MessagesFilterArgs, location="query")
    @blp.doc(**CSV_DOC)
    def get(self, args: dict[str, Any]) -> Any:
        """The messages report, every group, as CSV."""
        by = args["by"]
        with engine().connect() as conn:
            stmt = messages.statement(conn, message_filter(args), by)
        return stream_csv([*by, *messages.FIGURES], stmt, "messages-report.csv")


@blp.route("/points")
class PointsReport(MethodView):
    @blp.arguments(PointsReportArgs, location="query")
    @blp.response(200, PointsReportOut)
    def get(self, args: dict[str, Any]) -> Any:
        """Bonus ledger movements, latest booking first, a page at a time, with the totals
        per kind of the whole filter. Customers by external id only."""
        with engine().connect() as conn:
            return points.page(conn, points_filter(args), args["limit"], args["after"])


@blp.route("/points.csv")
class PointsReportCsv(MethodView):
    @blp.arguments(PointsFilterArgs, location="query")
    @blp.doc(**CSV_DOC)
    def get(self, args: dict[str, Any]) -> Any:
        """Every ledger movement of the filter as CSV, latest booking first."""
        return stream_csv(points.COLUMNS, points.statement(points_filter(args)),
                          "points-report.csv")


@blp.route("/campaigns/<key>/runs")
class CampaignRunsReport(MethodView):
    @blp.arguments(Dates, location="query")
    @blp.response(200, CampaignRunsOut)
    def get(self, args: dict[str, Any], key: str) -> Any:
        """A campaign's runs over time (run dates `from` to `to`), oldest first: reached,
        messages sent, failed and skipped by reason, points awarded and expired since."""
        with engine().connect() as conn:
            return campaign_runs.series(conn, key, args["since"], args["until"])
