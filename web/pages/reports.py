"""Report pages: messages per day by status (a chart) and by campaign, channel and status (a
table); bonus ledger movements with totals; a campaign's runs over time. Each reads the same
engine functions as /api/v1/reports and links to its CSV there."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import marshmallow as ma
from flask import Blueprint, current_app, render_template, request
from sqlalchemy import select

from engine.campaigns import campaign_today, get_by_key
from engine.errors import flatten_messages
from engine.models import Campaign
from engine.models.campaigns import CHANNELS
from engine.models.effects import LEDGER_KINDS, MESSAGE_STATUSES
from engine.reports import messages, points
from engine.reports.campaign_runs import series
from web.api.report_schemas import Dates, MessagesFilterArgs, PointsReportArgs
from web.api.reports import message_filter, points_filter
from web.db import engine

bp = Blueprint("report_pages", __name__)
TABLE_ROWS = 500  # groups shown in the messages table; the CSV has them all
POINTS_PAGE = 100
CHART_DAYS = 400  # longer spans chart only the days that have messages


def _load(schema: ma.Schema, defaults: dict[str, str] | None = None
          ) -> tuple[dict[str, Any] | None, dict[str, str], list[str]]:
    """The query's filters loaded by the API's schema (blank fields dropped), what to show in
    the form, and the problems, each naming its field."""
    given = {k: v for k, v in request.args.items() if v.strip()}
    shown = {**(defaults or {}), **given}
    try:
        return schema.load(shown, unknown=ma.EXCLUDE), shown, []
    except ma.ValidationError as exc:
        problems = flatten_messages(exc.messages, "")
        return None, shown, [f"{path.lstrip('.')}: {msg}" for path, msg in problems]


def _today() -> date:
    return campaign_today(current_app.config["NUDGEFLOW_SETTINGS"].timezone)


def _campaign_keys() -> list[str]:
    with engine().connect() as conn:
        return list(conn.execute(select(Campaign.key).order_by(Campaign.key)).scalars())


@bp.get("/reports")
def messages_page() -> Any:
    today = _today()
    args, shown, problems = _load(MessagesFilterArgs(), {
        "from": (today - timedelta(days=29)).isoformat(), "to": today.isoformat()})
    context: dict[str, Any] = {"shown": shown, "problems": problems, "campaigns":
                               _campaign_keys(), "channels": CHANNELS,
                               "statuses": MESSAGE_STATUSES, "limit": TABLE_ROWS}
    if args is None:
        return render_template("pages/report_messages.html", **context), 400
    f = message_filter(args)
    with engine().connect() as conn:
        table = messages.report(conn, f, messages.DIMENSIONS, TABLE_ROWS)
        daily = messages.report(conn, f, ("day", "status"), 100_000)["rows"]
    csv_query = {k: v for k, v in shown.items() if k != "by"}
    return render_template("pages/report_messages.html", report=table,
                           chart=_daily_chart(daily, f.since, f.until), csv_query=csv_query,
                           **context)


def _daily_chart(rows: list[dict[str, Any]], since: date | None,
                 until: date | None) -> dict[str, Any]:
    """Days and, per status that has messages, the count each day (0 on a day without)."""
    days = sorted({r["day"] for r in rows})
    if since and until and (until - since).days < CHART_DAYS:
        days = [since + timedelta(days=n) for n in range((until - since).days + 1)]
    index = {d: i for i, d in enumerate(days)}
    series: dict[str, list[int]] = {}
    for r in rows:
        series.setdefault(r["status"], [0] * len(days))[index[r["day"]]] += r["messages"]
    ordered = [s for s in MESSAGE_STATUSES if s in series]
    return {"labels": [d.isoformat() for d in days],
            "datasets": [{"label": s, "data": series[s]} for s in ordered]}


@bp.get("/reports/points")
def points_page() -> Any:
    args, shown, problems = _load(PointsReportArgs(), {"limit": str(POINTS_PAGE)})
    context: dict[str, Any] = {"shown": shown, "problems": problems,
                               "campaigns": _campaign_keys(), "kinds": LEDGER_KINDS}
    if args is None:
        return render_template("pages/report_points.html", **context), 400
    with engine().connect() as conn:
        found = points.page(conn, points_filter(args), args["limit"], args["after"])
    filters = {k: v for k, v in shown.items() if k not in ("after", "limit")}
    return render_template("pages/report_points.html", found=found, filters=filters,
                           **context)


@bp.get("/reports/campaigns/<key>")
def campaign_page(key: str) -> Any:
    args, shown, problems = _load(Dates())
    with engine().connect() as conn:
        campaign = get_by_key(conn, Campaign, (Campaign.key, Campaign.name), key)
        found = series(conn, key, args["since"], args["until"]) if args else None
    context = {"campaign": campaign, "shown": shown, "problems": problems, "found": found,
               "chart": _runs_chart(found["runs"]) if found else None}
    return render_template("pages/report_campaign.html", **context), 200 if args else 400


def _runs_chart(runs: list[dict[str, Any]]) -> dict[str, Any]:
    reasons = sorted({r for run in runs for r in run["skipped_by_reason"]})
    return {"labels": [r["date"].isoformat() for r in runs],
            "reached": [r["reached"] for r in runs],
            "sent": [r["sent"] for r in runs],
            "failed": [r["failed"] for r in runs],
            "skipped": [{"label": reason, "data": [run["skipped_by_reason"].get(reason, 0)
                                                   for run in runs]} for reason in reasons],
            "points_awarded": [r["points_awarded"] for r in runs],
            "points_expired": [r["points_expired"] for r in runs]}

