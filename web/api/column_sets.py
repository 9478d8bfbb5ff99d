"""/api/v1/column-sets: data set columns saved under a name, shared by every user."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_login import current_user

from engine.datasets import column_sets
from engine.db import write_transaction
from web.api import Blueprint
from web.api.schemas import UtcDateTime
from web.db import engine

blp = Blueprint("column_sets", __name__, url_prefix="/api/v1/column-sets",
                description="Column sets: a data set's columns saved under a name")


class ColumnSetIn(ma.Schema):
    columns = ma.fields.List(ma.fields.String(), required=True,
                             validate=ma.validate.Length(1, 100), metadata={
        "description": "column names as a data set takes them (customer fields, "
                       "attributes.NAME, derived fields)"})


class ColumnSetOut(ma.Schema):
    name = ma.fields.String()
    columns = ma.fields.List(ma.fields.String())
    saved_by = ma.fields.String(allow_none=True)
    updated_at = UtcDateTime()


@blp.route("")
class ColumnSets(MethodView):
    @blp.response(200, ColumnSetOut(many=True))
    def get(self) -> Any:
        """Every saved column set, by name."""
        with engine().connect() as conn:
            return column_sets.listing(conn)


@blp.route("/<name>")
class OneColumnSet(MethodView):
    @blp.response(200, ColumnSetOut)
    def get(self, name: str) -> Any:
        with engine().connect() as conn:
            return {"name": name, "columns": column_sets.columns_of(conn, name)}

    @blp.arguments(ColumnSetIn)
    @blp.response(200, ColumnSetOut)
    @blp.alt_response(201, schema=ColumnSetOut, description="a new column set")
    def put(self, data: dict[str, Any], name: str) -> Any:
        """Save the columns under this name, replacing what it held."""
        with write_transaction(engine()) as conn:
            created = column_sets.save(conn, name, data["columns"], current_user.name)
        with engine().connect() as conn:
            saved = next(s for s in column_sets.listing(conn) if s["name"] == name.strip())
        return saved, 201 if created else 200

    @blp.response(204)
    def delete(self, name: str) -> None:
        with write_transaction(engine()) as conn:
            column_sets.remove(conn, name)
