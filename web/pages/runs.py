"""The runs log: per-node counts, errors and the CSV of who each run affected."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from engine.lookup import list_runs
from web.db import engine
from web.pages.titles import node_titles

bp = Blueprint("run_pages", __name__)


@bp.get("/runs")
def index() -> Any:
    campaign = request.args.get("campaign") or None
    with engine().connect() as conn:
        rows = list_runs(conn, campaign, 200)
        titles = node_titles(conn, ((r["campaign"], r["version"]) for r in rows))
    return render_template("pages/runs.html", runs=rows, campaign=campaign, titles=titles)
