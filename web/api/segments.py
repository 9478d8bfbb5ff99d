"""/api/v1/segments: CRUD and preview (count and sample) of rules not yet saved."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask.views import MethodView
from sqlalchemy import select

from engine import datasets, segments
from engine.access.masking import masked, sql_mask_email, sql_mask_phone
from engine.campaigns import SegmentSchema, delete_by_key, get_by_key, require_key, save_segment
from engine.db import write_transaction
from engine.models import Customer, Segment
from web.api import Blueprint
from web.api.csvstream import CSV_DOC, XLSX_DOC, stream_csv, stream_dataset
from web.api.schemas import (
    DatasetArgs,
    DatasetFileArgs,
    DatasetOut,
    DateArgs,
    PreviewIn,
    PreviewOut,
    SegmentOut,
)
from web.db import engine
from web.permissions import sees_contacts

blp = Blueprint("segments", __name__, url_prefix="/api/v1/segments",
                description="Segments: rules over customers, evaluated as of a date")
COLUMNS = (Segment.key, Segment.name, Segment.rules)


def _one(key: str) -> dict[str, Any]:
    with engine().connect() as conn:
        return get_by_key(conn, Segment, COLUMNS, key)


def _save(data: dict[str, Any]) -> dict[str, Any]:
    with write_transaction(engine()) as conn:
        catalog = segments.load_catalog(conn)
        catalog.pop(data["key"], None)
        segments.validate_rules(data["rules"], catalog, key=data["key"], path="$.rules")
        save_segment(conn, data)
    return _one(data["key"])


@blp.route("")
class Segments(MethodView):
    @blp.response(200, SegmentOut(many=True))
    def get(self) -> Any:
        with engine().connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(*COLUMNS).order_by(Segment.key))]

    @blp.arguments(SegmentSchema)
    @blp.response(201, SegmentOut)
    def post(self, data: dict[str, Any]) -> Any:
        return _save(data)


@blp.route("/preview")
class Preview(MethodView):
    @blp.arguments(PreviewIn)
    @blp.response(200, PreviewOut)
    def post(self, args: dict[str, Any]) -> Any:
        day = args["date"] or date.today()
        with engine().connect() as conn:
            catalog = segments.load_catalog(conn)
            segments.validate_rules(args["rules"], catalog, path="$.rules")
            sample = segments.sample(conn, args["rules"], day, args["limit"], catalog)
            return {"as_of": day.isoformat(),
                    "count": segments.count(conn, args["rules"], day, catalog),
                    "sample": sample if sees_contacts() else [masked(s) for s in sample]}


@blp.route("/<key>")
class SegmentItem(MethodView):
    @blp.response(200, SegmentOut)
    def get(self, key: str) -> Any:
        return _one(key)

    @blp.arguments(SegmentSchema)
    @blp.response(200, SegmentOut)
    def put(self, data: dict[str, Any], key: str) -> Any:
        _one(key)
        require_key(key, data["key"])
        return _save(data)

    @blp.response(204)
    def delete(self, key: str) -> None:
        with write_transaction(engine()) as conn:
            delete_by_key(conn, Segment, key)


@blp.route("/<key>/export.csv")
class Export(MethodView):
    @blp.arguments(DateArgs, location="query")
    @blp.doc(**CSV_DOC)
    def get(self, args: dict[str, Any], key: str) -> Any:
        """The segment's customers as of a date, streamed as CSV."""
        _one(key)
        with engine().connect() as conn:
            catalog = segments.load_catalog(conn)
        columns: list[Any] = list(segments.SAMPLE_COLUMNS[1:])
        if not sees_contacts():
            columns[-2:] = [sql_mask_email(Customer.__table__.c.email).label("email"),
                            sql_mask_phone(Customer.__table__.c.phone).label("phone")]
        stmt = (select(*columns)
                .where(segments.compile_rules({"segment": key}, args["date"] or date.today(),
                                              catalog))
                .order_by(Customer.id))
        return stream_csv(["external_id", "first_name", "last_name", "email", "phone"], stmt,
                          f"segment-{key}.csv")


def _dataset(key: str, args: dict[str, Any]) -> datasets.DataSet:
    with engine().connect() as conn:
        return datasets.for_segment(conn, key, args["columns"], args["date"] or date.today(),
                                    args["sort"], masked=not sees_contacts())


@blp.route("/<key>/dataset")
class Dataset(MethodView):
    @blp.arguments(DatasetArgs, location="query")
    @blp.response(200, DatasetOut)
    def get(self, args: dict[str, Any], key: str) -> Any:
        """The segment's members with the chosen columns as of a date, a page at a time in
        external_id order or by `sort` (keyset: pass `next` as `after`)."""
        ds = _dataset(key, args)
        with engine().connect() as conn:
            return datasets.page(conn, ds, args["after"], args["limit"])


@blp.route("/<key>/dataset.csv")
class DatasetCsv(MethodView):
    @blp.arguments(DatasetFileArgs, location="query")
    @blp.doc(**CSV_DOC)
    def get(self, args: dict[str, Any], key: str) -> Any:
        """The whole data set as CSV, streamed."""
        return stream_dataset(_dataset(key, args), "csv", f"dataset-{key}.csv")


@blp.route("/<key>/dataset.xlsx")
class DatasetXlsx(MethodView):
    @blp.arguments(DatasetFileArgs, location="query")
    @blp.doc(**XLSX_DOC)
    def get(self, args: dict[str, Any], key: str) -> Any:
        """The whole data set as an XLSX workbook."""
        return stream_dataset(_dataset(key, args), "xlsx", f"dataset-{key}.xlsx")
