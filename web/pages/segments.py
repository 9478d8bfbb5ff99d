"""Segment pages: the list and the rule builder (rows, and/or groups, a live count)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from flask import Blueprint, render_template, request
from sqlalchemy import select

from engine import datasets
from engine.campaigns import get_by_key
from engine.datasets import column_sets
from engine.errors import NotFound, ValidationError
from engine.models import Segment, Template
from engine.segments.fields import FIELDS, TYPE_OPS
from web.db import engine
from web.permissions import can, sees_contacts

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
            "can_write": can("campaigns.edit")}
    return render_template("pages/segment.html", boot=boot,
                           title=segment["name"] if segment else "New segment")


DEFAULT_COLUMNS = ("external_id", "first_name", "last_name", "days_past_due", "next_due_date",
                   "owed_next_30", "paid_ratio")
PAGE_ROWS = 50


@bp.get("/segments/<key>/dataset")
def dataset(key: str) -> Any:
    """A segment's data set: columns picked as checkboxes (plus attributes by name), a page of
    rows at a time in external_id order or sorted by a column (its header toggles up, down),
    and links to the whole as CSV and XLSX in the same order."""
    chosen = request.args.getlist("column") or list(DEFAULT_COLUMNS)
    extra = [f"attributes.{n.strip()}" for n in request.args.get("attributes", "").split(",")
             if n.strip()]
    chosen_set = request.args.get("set") or None
    problem = None
    if chosen_set is not None:
        try:
            with engine().connect() as conn:
                chosen = column_sets.columns_of(conn, chosen_set)
            extra = [c for c in chosen if c not in datasets.COLUMNS]
        except NotFound as exc:
            problem = str(exc)
    try:
        day = date.fromisoformat(request.args.get("date") or date.today().isoformat())
    except ValueError:
        day = date.today()
    picked = [c for c in datasets.COLUMNS if c in chosen]
    columns = [*picked, *extra]
    sort = request.args.get("sort") or None
    page = None
    with engine().connect() as conn:
        segment = get_by_key(conn, Segment, COLUMNS, key)
        sets = column_sets.listing(conn)
        templates = [dict(r._mapping) for r in conn.execute(
            select(Template.key, Template.name, Template.channel).order_by(Template.key))]
        try:
            ds = datasets.for_segment(conn, key, columns, day, sort,
                                      masked=not sees_contacts())
            page = datasets.page(conn, ds, request.args.get("after") or None, PAGE_ROWS)
        except ValidationError as exc:
            problem = "; ".join(p.message for p in exc.problems)
    query = {"columns": ",".join(columns), "date": day.isoformat(),
             **({"sort": sort} if sort and not problem else {})}
    attributes = ",".join(c.split(".", 1)[1] for c in extra)
    keep = {"column": picked, "attributes": attributes, "date": day.isoformat()}
    boot = {"segment": key, "date": day.isoformat(), "total": page["total"] if page else 0,
            "templates": templates,
            # One per page shown: a second click, or a retried request, makes the blast once.
            "client_token": uuid.uuid4().hex}
    return render_template("pages/dataset.html", segment=segment, all_columns=datasets.COLUMNS,
                           picked=picked, attributes=attributes, sets=sets,
                           chosen_set=chosen_set, columns=columns,
                           day=day, page=page, problem=problem, query=query, keep=keep, boot=boot,
                           can_send=can("datasets.send") and bool(
                               page and page["total"]),
                           sortable=set(datasets.COLUMNS), title=f"{segment['name']}: data set")
