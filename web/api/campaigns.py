"""/api/v1/campaigns: list, read, create, update (each save a version), validate, versions,
activate, pause, archive, preview for a date and run for a date."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import request
from flask.views import MethodView
from flask_login import current_user
from sqlalchemy import select

from engine import campaigns as store
from engine.access.changes import campaign_save_needs
from engine.db import write_transaction
from engine.errors import NotFound
from engine.executor import campaign_today, load_campaign_row, run
from engine.graph import CampaignSchema
from engine.lookup import with_delivery
from engine.models import Campaign, CampaignVersion
from web.api import Blueprint
from web.api.schemas import CampaignOut, CampaignSummary, DateArgs, RunOut, Valid, VersionOut
from web.db import engine
from web.permissions import require_all

blp = Blueprint("campaigns", __name__, url_prefix="/api/v1/campaigns",
                description="Campaign graphs, their versions and runs")


def _save(key: str | None = None) -> dict[str, Any]:
    """Save the request's campaign document; a change of status or of a sender or reply-to
    also needs campaigns.run or senders.edit (checked before the transaction commits)."""
    with write_transaction(engine()) as conn:
        doc = request.get_json()
        before = conn.execute(select(Campaign.status, Campaign.graph).where(
            Campaign.key == (key if key is not None else doc.get("key")))).first()
        clean = store.save_document(conn, doc, key=key, saved_by=current_user.name)
        require_all(campaign_save_needs(before, clean))
    return _campaign(clean["key"])


def _campaign(key: str) -> dict[str, Any]:
    with engine().connect() as conn:
        return dict(load_campaign_row(conn, key)._mapping)


@blp.route("")
class Campaigns(MethodView):
    @blp.response(200, CampaignSummary(many=True))
    def get(self) -> Any:
        with engine().connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                select(Campaign.id, Campaign.key, Campaign.name, Campaign.status,
                       Campaign.purpose, Campaign.timezone, Campaign.version)
                .where(Campaign.kind == "campaign").order_by(Campaign.key))]
            return with_delivery(conn, "campaign", rows)

    @blp.arguments(CampaignSchema)
    @blp.response(201, CampaignOut)
    def post(self, _doc: Any) -> Any:
        return _save()


@blp.route("/validate")
class Validate(MethodView):
    @blp.arguments(CampaignSchema)
    @blp.response(200, Valid)
    def post(self, _doc: Any) -> Any:
        from engine.graph import load_campaign

        with engine().connect() as conn:
            load_campaign(request.get_json(), store.references(conn))
        return {"valid": True}


@blp.route("/<key>")
class CampaignItem(MethodView):
    @blp.response(200, CampaignOut)
    def get(self, key: str) -> Any:
        return _campaign(key)

    @blp.arguments(CampaignSchema)
    @blp.response(200, CampaignOut)
    def put(self, _doc: Any, key: str) -> Any:
        _campaign(key)
        return _save(key)


@blp.route("/<key>/versions")
class Versions(MethodView):
    @blp.response(200, VersionOut(many=True))
    def get(self, key: str) -> Any:
        campaign = _campaign(key)
        with engine().connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(CampaignVersion.version, CampaignVersion.saved_at,
                       CampaignVersion.saved_by, CampaignVersion.graph)
                .where(CampaignVersion.campaign_id == campaign["id"])
                .order_by(CampaignVersion.version))]


@blp.route("/<key>/versions/<int(max=2147483647):version>")
class Version(MethodView):
    @blp.response(200, VersionOut)
    def get(self, key: str, version: int) -> Any:
        campaign = _campaign(key)
        with engine().connect() as conn:
            row = conn.execute(select(CampaignVersion.version, CampaignVersion.saved_at,
                                      CampaignVersion.saved_by, CampaignVersion.graph)
                               .where(CampaignVersion.campaign_id == campaign["id"],
                                      CampaignVersion.version == version)).first()
        if row is None:
            raise NotFound(f"campaign {key!r} has no version {version}")
        return dict(row._mapping)


def _status_route(action: str, status: str) -> None:
    class StatusChange(MethodView):
        @blp.response(200, CampaignSummary)
        def post(self, key: str) -> Any:
            with write_transaction(engine()) as conn:
                store.set_status(conn, key, status)
            return _campaign(key)

    StatusChange.__name__ = f"Campaign{action.title()}"
    blp.route(f"/<key>/{action}")(StatusChange)


for _action, _status in (("activate", "active"), ("pause", "paused"), ("archive", "archived")):
    _status_route(_action, _status)


def _day(args: dict[str, Any], key: str) -> date:
    return args.get("date") or campaign_today(_campaign(key)["timezone"])


@blp.route("/<key>/preview")
class Preview(MethodView):
    @blp.arguments(DateArgs)
    @blp.response(200, RunOut)
    def post(self, args: dict[str, Any], key: str) -> Any:
        return run(engine(), key, _day(args, key), dry_run=True, manual=True).as_dict()


@blp.route("/<key>/run")
class RunNow(MethodView):
    @blp.arguments(DateArgs)
    @blp.response(200, RunOut)
    def post(self, args: dict[str, Any], key: str) -> Any:
        return run(engine(), key, _day(args, key), manual=True).as_dict()
