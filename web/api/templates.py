"""/api/v1/templates: CRUD; a template is checked (syntax, variables, sandbox) on save."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import select

from engine.campaigns import delete_by_key, save_template
from engine.db import write_transaction
from engine.errors import NotFound, Problem, ValidationError
from engine.models import Template
from engine.templates import TemplateSchema
from web.api import Blueprint
from web.api.schemas import TemplateOut
from web.db import engine

blp = Blueprint("templates", __name__, url_prefix="/api/v1/templates",
                description="Message templates (sandboxed Jinja2)")
COLUMNS = (Template.key, Template.name, Template.channel, Template.subject, Template.body,
           Template.transliterate)


def _one(key: str) -> dict[str, Any]:
    with engine().connect() as conn:
        row = conn.execute(select(*COLUMNS).where(Template.key == key)).first()
    if row is None:
        raise NotFound(f"no template {key!r}")
    return dict(row._mapping)


@blp.route("")
class Templates(MethodView):
    @blp.response(200, TemplateOut(many=True))
    def get(self) -> Any:
        with engine().connect() as conn:
            return [dict(r._mapping)
                    for r in conn.execute(select(*COLUMNS).order_by(Template.key))]

    @blp.arguments(TemplateSchema)
    @blp.response(201, TemplateOut)
    def post(self, data: dict[str, Any]) -> Any:
        with write_transaction(engine()) as conn:
            save_template(conn, data)
        return _one(data["key"])


@blp.route("/<key>")
class TemplateItem(MethodView):
    @blp.response(200, TemplateOut)
    def get(self, key: str) -> Any:
        return _one(key)

    @blp.arguments(TemplateSchema)
    @blp.response(200, TemplateOut)
    def put(self, data: dict[str, Any], key: str) -> Any:
        _one(key)
        if data["key"] != key:
            raise ValidationError([Problem("$.key", f"expected {key!r} (the key in the URL)")])
        with write_transaction(engine()) as conn:
            save_template(conn, data)
        return _one(key)

    @blp.response(204)
    def delete(self, key: str) -> None:
        with write_transaction(engine()) as conn:
            delete_by_key(conn, Template, key)
