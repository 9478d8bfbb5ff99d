"""Segment pages: the list and the rule builder (rows, and/or groups, a live count)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from flask_login import current_user
from sqlalchemy import select

from engine.campaigns import get_by_key
from engine.models import Segment
from engine.segments.fields import FIELDS, TYPE_OPS
from web.db import engine

bp = Blueprint("segment_pages", __name__)
COLUMNS = (Segment.key, Segment.name, Segment.rules)


@bp.get("/segments")
def index() -> Any:
    with engine().connect() as conn:
        rows = conn.execute(select(*COLUMNS).order_by(Segment.key)).all()
    return render_template("pages/segments.html", segments=rows)


@bp.get("/segments/new")
def new() -> Any:
    return _builder(None)


@bp.get("/segments/<key>")
def edit(key: str) -> Any:
    return _builder(key)


def _builder(key: str | None) -> Any:
    with engine().connect() as conn:
        segment = get_by_key(conn, Segment, COLUMNS, key) if key else None
        others = conn.execute(select(Segment.key).where(Segment.key != (key or ""))
                              .order_by(Segment.key)).scalars().all()
    boot = {"segment": segment, "segments": others,
            "fields": [{"name": f.name, "type": f.type} for f in FIELDS.values()],
            "ops": {t: sorted(ops) for t, ops in TYPE_OPS.items()},
            "can_write": current_user.can("marketer")}
    return render_template("pages/segment.html", boot=boot,
                           title=segment["name"] if segment else "New segment")
