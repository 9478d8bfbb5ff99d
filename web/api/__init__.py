"""The JSON API under /api/v1, built with flask-smorest on the engine's marshmallow schemas."""

from __future__ import annotations

from flask_smorest import Blueprint as SmorestBlueprint
from webargs.flaskparser import FlaskParser


class Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400


class Blueprint(SmorestBlueprint):
    """Our blueprints answer invalid input with 400 and the common error shape."""

    ARGUMENTS_PARSER = Parser()


def blueprints() -> list[Blueprint]:
    from web.api import admin, campaigns, customers, messages, records, runs, segments, templates

    return [campaigns.blp, segments.blp, templates.blp, customers.blp, records.blp, runs.blp,
            messages.blp, admin.blp]
