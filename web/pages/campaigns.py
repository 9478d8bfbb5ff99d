"""Campaign pages: the list (status, version, last run and its counts) and the graph editor."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from sqlalchemy import select

from engine.executor import campaign_today, load_campaign_row
from engine.graph import KEY_PATTERN
from engine.lookup import campaigns_overview
from engine.models import Segment, Template
from nodes.triggers import DATE_FIELDS, WEEKDAYS
from web.db import engine
from web.pages.titles import node_titles
from web.permissions import can

bp = Blueprint("campaign_pages", __name__)
CAMPAIGN_FIELDS = ("key", "name", "status", "purpose", "timezone", "version", "graph")


@bp.get("/campaigns")
def index() -> Any:
    with engine().connect() as conn:
        rows = campaigns_overview(conn)
        # Titles from the current version: the last run's nodes are almost always the same.
        titles = node_titles(conn, ((r["key"], r["version"]) for r in rows if r["counts"]))
    return render_template("pages/campaigns.html", campaigns=rows, titles=titles)


@bp.get("/campaigns/new")
def new() -> Any:
    return _editor(None)


@bp.get("/campaigns/<key>/edit")
def edit(key: str) -> Any:
    return _editor(key)


def _editor(key: str | None) -> Any:
    with engine().connect() as conn:
        campaign = None
        if key is not None:
            row = load_campaign_row(conn, key)._mapping
            campaign = {f: row[f] for f in CAMPAIGN_FIELDS}
        segments = [dict(r._mapping) for r in conn.execute(
            select(Segment.key, Segment.name).order_by(Segment.key))]
        templates = [dict(r._mapping) for r in conn.execute(
            select(Template.key, Template.name, Template.channel).order_by(Template.key))]
    boot = {"campaign": campaign, "segments": segments, "templates": templates,
            "date_fields": DATE_FIELDS, "weekdays": WEEKDAYS, "key_pattern": KEY_PATTERN,
            "today": campaign_today(campaign["timezone"] if campaign else "UTC").isoformat(),
            "can_write": can("campaigns.edit"), "can_run": can("campaigns.run"),
            "can_edit_senders": can("senders.edit")}
    title = campaign["name"] if campaign else "New campaign"
    return render_template("pages/editor.html", boot=boot, title=title)
