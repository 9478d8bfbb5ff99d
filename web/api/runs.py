"""/api/v1/runs: the runs log with per-node counts."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import select

from engine.errors import NotFound
from engine.models import Campaign, Run
from web.api import Blueprint
from web.api.schemas import RunRow, RunsArgs
from web.db import engine

blp = Blueprint("runs", __name__, url_prefix="/api/v1/runs", description="The runs log")
COLUMNS = (Run.id, Campaign.key.label("campaign"), Run.run_date, Run.version, Run.status,
           Run.counts, Run.timings, Run.error, Run.started_at, Run.finished_at)


@blp.route("")
class Runs(MethodView):
    @blp.arguments(RunsArgs, location="query")
    @blp.response(200, RunRow(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        stmt = (select(*COLUMNS).join(Campaign, Campaign.id == Run.campaign_id)
                .order_by(Run.run_date.desc(), Run.id.desc()).limit(args["limit"]))
        if args["campaign"]:
            stmt = stmt.where(Campaign.key == args["campaign"])
        with engine().connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]


@blp.route("/<int:run_id>")
class RunItem(MethodView):
    @blp.response(200, RunRow)
    def get(self, run_id: int) -> Any:
        with engine().connect() as conn:
            row = conn.execute(select(*COLUMNS).join(Campaign, Campaign.id == Run.campaign_id)
                               .where(Run.id == run_id)).first()
        if row is None:
            raise NotFound(f"no run {run_id}")
        return dict(row._mapping)
