"""Blast pages: the list, newest first, and one blast with its counts, its messages by status
and the STOP button. Blasts are made on a data set's page (web/pages/segments.py)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from engine import blasts
from web.db import engine

bp = Blueprint("blast_pages", __name__)


@bp.get("/blasts")
def index() -> Any:
    with engine().connect() as conn:
        rows = blasts.list_blasts(conn, 200)
    return render_template("pages/blasts.html", blasts=rows)


@bp.get("/blasts/<int(max=2147483647):blast_id>")
def show(blast_id: int) -> Any:
    with engine().connect() as conn:
        blast = blasts.describe(conn, blast_id)
    return render_template("pages/blast.html", blast=blast, title=blast["name"])
