"""/api/v1/runs: the runs log with per-node counts."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import Date, Integer, String, literal, select, union_all

from engine.errors import NotFound
from engine.lookup import list_runs, runs_query, with_delivery
from engine.models import BonusLedger, Customer, Message, Run
from web.api import Blueprint
from web.api.csvstream import CSV_DOC, stream_csv
from web.api.schemas import RunRow, RunsArgs
from web.db import engine

blp = Blueprint("runs", __name__, url_prefix="/api/v1/runs", description="The runs log")


@blp.route("")
class Runs(MethodView):
    @blp.arguments(RunsArgs, location="query")
    @blp.response(200, RunRow(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        with engine().connect() as conn:
            return list_runs(conn, args["campaign"], args["limit"], args["offset"])


@blp.route("/<int(max=2147483647):run_id>")
class RunItem(MethodView):
    @blp.response(200, RunRow)
    def get(self, run_id: int) -> Any:
        with engine().connect() as conn:
            row = conn.execute(runs_query().where(Run.id == run_id)).first()
            if row is None:
                raise NotFound(f"no run {run_id}")
            return with_delivery(conn, "run", [dict(row._mapping)])[0]


EXPORT_COLUMNS = ("external_id", "first_name", "last_name", "node_id", "occurrence", "effect",
                  "channel", "status", "skip_reason", "points", "expires_at")


@blp.route("/<int(max=2147483647):run_id>/export.csv")
class RunExport(MethodView):
    @blp.doc(**CSV_DOC)
    def get(self, run_id: int) -> Any:
        """Who a run affected, streamed as CSV (memory stays flat for any size)."""
        with engine().connect() as conn:
            if conn.execute(select(Run.id).where(Run.id == run_id)).first() is None:
                raise NotFound(f"no run {run_id}")
        messages = (select(Customer.external_id, Customer.first_name, Customer.last_name,
                           Message.node_id, Message.occurrence, literal("message"),
                           Message.channel, Message.status, Message.skip_reason,
                           literal(None, Integer), literal(None, Date))
                    .join(Customer, Customer.id == Message.customer_id)
                    .where(Message.run_id == run_id))
        awards = (select(Customer.external_id, Customer.first_name, Customer.last_name,
                         BonusLedger.node_id, BonusLedger.occurrence, literal("bonus"),
                         literal(None, String), literal("awarded"), literal(None, String),
                         BonusLedger.amount, BonusLedger.expires_at)
                  .join(Customer, Customer.id == BonusLedger.customer_id)
                  .where(BonusLedger.run_id == run_id, BonusLedger.kind == "accrual"))
        return stream_csv(EXPORT_COLUMNS, union_all(messages, awards), f"run-{run_id}.csv")
