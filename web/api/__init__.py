"""The JSON API under /api/v1, built with flask-smorest on the engine's marshmallow schemas."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Flask
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from webargs.flaskparser import FlaskParser
from werkzeug.routing import BaseConverter


class Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400


class Blueprint(SmorestBlueprint):
    """Our blueprints answer invalid input with 400 and the common error shape."""

    ARGUMENTS_PARSER = Parser()


class ExternalIdConverter(BaseConverter):
    """An external id in a path (`<ext:external_id>`): no slash, and no whitespace at either
    end, which imports strip (`/customers/%20C1` would otherwise upsert C1). Anything else is
    no such customer: 404."""

    regex = r"[^\s/](?:[^/]*[^\s/])?"


def register_converters(app: Flask, api: Api) -> None:
    app.url_map.converters["ext"] = ExternalIdConverter

    def schema(_converter: Any) -> dict[str, str]:
        return {"type": "string", "pattern": f"^{ExternalIdConverter.regex}$"}

    api.register_converter(ExternalIdConverter, schema)
    api.ma_plugin.converter.add_attribute_function(nullable_nested)


def nullable_nested(_converter: Any, field: Any, ret: dict[str, Any], **_kw: Any
                    ) -> dict[str, Any]:
    """A nullable Nested is "the schema or null", not apispec's "the schema or any object"."""
    any_of = ret.get("anyOf")
    if isinstance(field, ma.fields.Nested) and field.allow_none and any_of and len(any_of) == 2:
        del ret["anyOf"]
        return {"allOf": any_of[:1], "nullable": True}
    return {}


def blueprints() -> list[Blueprint]:
    from web.api import (
        admin,
        blasts,
        campaigns,
        column_sets,
        customers,
        events,
        messages,
        records,
        reports,
        roles,
        runs,
        segments,
        templates,
    )

    return [campaigns.blp, segments.blp, templates.blp, customers.blp, records.blp, runs.blp,
            messages.blp, events.blp, column_sets.blp, blasts.blp, reports.blp, admin.blp,
            roles.blp]
