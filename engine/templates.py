"""Message templates: their schema and a sandboxed Jinja2 syntax check at save time."""

from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from engine.graph import KEY

ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def syntax_problem(source: str) -> str | None:
    """The syntax error of a template, with its line number, or None."""
    try:
        ENV.parse(source)
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    return None


class TemplateSchema(Schema):
    key = fields.String(required=True, validate=KEY)
    name = fields.String(validate=validate.Length(min=1, max=200))
    channel = fields.String(required=True, validate=validate.OneOf(("email", "sms")))
    subject = fields.String(load_default=None, validate=validate.Length(max=998))
    body = fields.String(required=True, validate=validate.Length(min=1))
    transliterate = fields.Boolean(load_default=False)

    @validates_schema
    def _check(self, data: dict[str, Any], **_kw: Any) -> None:
        if data.get("channel") == "email" and not data.get("subject"):
            raise ValidationError("required for an email template", "subject")
        for name in ("subject", "body"):
            if data.get(name) and (problem := syntax_problem(data[name])):
                raise ValidationError(problem, name)
