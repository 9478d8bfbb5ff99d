"""Customer and invoice upserts over HTTP: one record, or up to 10,000 all-or-nothing."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView

from engine.importing import from_list, upsert_customers, upsert_invoices
from web.api import Blueprint
from web.api.schemas import ImportOut, RecordIn, Records
from web.db import engine

blp = Blueprint("records", __name__, url_prefix="/api/v1",
                description="Customer and invoice upserts (the import file format as JSON)")


def _region() -> str:
    return str(current_app.config["NUDGEFLOW_SETTINGS"].default_region)


@blp.route("/customers/bulk")
class CustomersBulk(MethodView):
    @blp.arguments(Records)
    @blp.response(200, ImportOut)
    def post(self, data: dict[str, Any]) -> Any:
        return upsert_customers(engine(), from_list(data["records"]), _region(),
                                source="API").as_dict()


@blp.route("/customers/<ext:external_id>", endpoint="customer_upsert")
class CustomerUpsert(MethodView):
    @blp.arguments(RecordIn)
    @blp.response(200, ImportOut)
    def put(self, data: dict[str, Any], external_id: str) -> Any:
        record = {**data, "external_id": external_id}
        return upsert_customers(engine(), from_list([record]), _region(), source="API").as_dict()


@blp.route("/invoices/bulk")
class InvoicesBulk(MethodView):
    @blp.arguments(Records)
    @blp.response(200, ImportOut)
    def post(self, data: dict[str, Any]) -> Any:
        return upsert_invoices(engine(), from_list(data["records"])).as_dict()


@blp.route("/invoices/<ext:external_id>")
class InvoiceUpsert(MethodView):
    @blp.arguments(RecordIn)
    @blp.response(200, ImportOut)
    def put(self, data: dict[str, Any], external_id: str) -> Any:
        record = {**data, "external_id": external_id}
        return upsert_invoices(engine(), from_list([record])).as_dict()
