"""Template pages: the list and the editor (live preview for any customer, found by the
customers search, with SMS characters, parts and encoding)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from sqlalchemy import select

from engine.campaigns import get_by_key
from engine.models import Customer, Template
from web.db import engine
from web.permissions import can

bp = Blueprint("template_pages", __name__)
COLUMNS = (Template.key, Template.name, Template.channel, Template.subject, Template.body,
           Template.transliterate)


@bp.get("/templates")
def index() -> Any:
    with engine().connect() as conn:
        rows = conn.execute(select(*COLUMNS).order_by(Template.key)).all()
    return render_template("pages/templates.html", templates=rows)


@bp.get("/templates/new")
def new() -> Any:
    return _editor(None)


@bp.get("/templates/<key>")
def edit(key: str) -> Any:
    return _editor(key)


def _editor(key: str | None) -> Any:
    with engine().connect() as conn:
        template = get_by_key(conn, Template, COLUMNS, key) if key else None
        # The first few to start with; the preview searches the rest through the API.
        customers = [dict(r._mapping) for r in conn.execute(
            select(Customer.external_id, Customer.first_name, Customer.last_name)
            .order_by(Customer.id).limit(20))]
    boot = {"template": template, "customers": customers,
            "can_write": can("templates.edit")}
    return render_template("pages/template.html", boot=boot,
                           title=template["name"] or template["key"] if template else "New template")
