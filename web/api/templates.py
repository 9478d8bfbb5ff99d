"""/api/v1/templates: CRUD; a template is checked (syntax, variables, sandbox) on save."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_login import current_user
from sqlalchemy import select

from engine import sms
from engine.activity import customer_id
from engine.campaigns import (
    check_campaigns_using,
    delete_by_key,
    get_by_key,
    require_key,
    save_template,
)
from engine.channels import channels_for
from engine.db import write_transaction
from engine.errors import Problem, ValidationError
from engine.message_context import preview_context
from engine.messaging.test_sends import address, send_test
from engine.models import Template
from engine.templates import TemplateSchema, is_html, render, render_error
from web.api import Blueprint
from web.api.schemas import (
    DraftRenderIn,
    DraftTestSendIn,
    RenderIn,
    RenderOut,
    TemplateOut,
    TestSendIn,
    TestSendOut,
)
from web.db import engine

blp = Blueprint("templates", __name__, url_prefix="/api/v1/templates",
                description="Message templates (sandboxed Jinja2)")
COLUMNS = (Template.key, Template.name, Template.channel, Template.subject, Template.body,
           Template.transliterate)


def _one(key: str) -> dict[str, Any]:
    with engine().connect() as conn:
        return get_by_key(conn, Template, COLUMNS, key)


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
            check_campaigns_using(conn, {data["key"]: "$"})
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
        require_key(key, data["key"])
        with write_transaction(engine()) as conn:
            save_template(conn, data)
            check_campaigns_using(conn, {data["key"]: "$"})
        return _one(key)

    @blp.response(204)
    def delete(self, key: str) -> None:
        with write_transaction(engine()) as conn:
            delete_by_key(conn, Template, key)


def _render_for(template: dict[str, Any], external_id: str) -> dict[str, Any]:
    """Render a template for one customer, with SMS encoding and parts."""
    settings = current_app.config["NUDGEFLOW_SETTINGS"]
    with engine().connect() as conn:
        ctx = preview_context(conn, customer_id(conn, external_id), date.today(),
                              f"{settings.public_url}/u/preview")
    html = template["channel"] == "email" and is_html(template["body"])
    try:
        body = render(template["body"], ctx, html=html)
        subject = render(template["subject"], ctx) if template["subject"] else None
        out: dict[str, Any] = {"subject": subject, "body": body, "sms_encoding": None,
                               "sms_parts": None, "characters": len(body)}
        if template["channel"] == "sms":
            text = sms.prepare(body, template["transliterate"])
            out |= {"body": text.text, "sms_encoding": text.encoding,
                    "sms_parts": text.parts, "characters": len(text.text)}
    except Exception as exc:  # what this customer's data makes the template raise
        raise ValidationError([Problem("$.customer", f"cannot render for this customer: "
                                                     f"{render_error(exc)}")]) from None
    return out


@blp.route("/preview")
class DraftPreview(MethodView):
    @blp.arguments(DraftRenderIn)
    @blp.response(200, RenderOut)
    def post(self, args: dict[str, Any]) -> Any:
        """Check and render a template not saved yet (the editor's live preview)."""
        return _render_for(args["template"], args["customer"])


@blp.route("/<key>/preview")
class Preview(MethodView):
    @blp.arguments(RenderIn)
    @blp.response(200, RenderOut)
    def post(self, args: dict[str, Any], key: str) -> Any:
        """Render for a chosen customer, with SMS encoding and parts."""
        return _render_for(_one(key), args["customer"])


def _test_send(template: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    settings = current_app.config["NUDGEFLOW_SETTINGS"]
    to = address(template["channel"], args["to"], settings.default_region)
    rendered = _render_for(template, args["customer"])
    return send_test(engine(), channels_for(settings), template, rendered, args["customer"],
                     to, current_user.name)


@blp.route("/test-send")
class DraftTestSend(MethodView):
    @blp.arguments(DraftTestSendIn)
    @blp.response(201, TestSendOut)
    def post(self, args: dict[str, Any]) -> Any:
        """Send a template not saved yet, rendered for a customer, to an address now (a test:
        no campaign, no credit, not in the customer's timeline)."""
        return _test_send(args["template"], args)


@blp.route("/<key>/test-send")
class TestSend(MethodView):
    @blp.arguments(TestSendIn)
    @blp.response(201, TestSendOut)
    def post(self, args: dict[str, Any], key: str) -> Any:
        """Send this template, rendered for a customer, to an address now (a test: no
        campaign, no credit, not in the customer's timeline); the answer says what the provider
        did."""
        return _test_send(_one(key), args)
