"""Operations endpoints: /healthz for load balancers (no login, no customer data) and /metrics
for Prometheus (the API token of a user with settings.manage, or NUDGEFLOW_METRICS_TOKEN)."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import Blueprint, Response, current_app, request
from flask_login import current_user
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError

from engine import health
from engine.metrics import exposition
from web.errors import error_response

bp = Blueprint("ops", __name__)
log = logging.getLogger("nudgeflow.web")


def _engine() -> Any:
    return current_app.extensions["nudgeflow_engine"]


@bp.get("/healthz")
def healthz() -> Any:
    """200 with the send queue when the database answers, else 503 with the reason."""
    try:
        with _engine().connect() as conn:
            health.ping(conn)
            queue = health.queue(conn)
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        log.warning("healthz: the database did not answer: %s",
                    (str(reason).strip().splitlines() or [""])[0][:500])
        # The kind of failure only: the driver's message names hosts, ports and paths.
        return {"status": "error", "database": f"unavailable ({type(reason).__name__})"}, 503
    return {"status": "ok", "database": "ok", "queue": queue.as_dict()}


def _scraper_allowed() -> Any | None:
    """None if the caller may read the metrics, else the 401 or 403 answer."""
    expected = current_app.config["NUDGEFLOW_SETTINGS"].metrics_token
    header = request.headers.get("Authorization", "")
    given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    if expected and given and hmac.compare_digest(given.encode(), expected.encode()):
        return None
    if not current_user.is_authenticated:
        return error_response(401, "unauthorized", "send Authorization: Bearer <token> (an "
                              "API token with settings.manage or NUDGEFLOW_METRICS_TOKEN)")
    if not current_user.can("settings.manage"):
        return error_response(403, "forbidden", "this needs the settings.manage permission; "
                              f"your role {current_user.role} does not have it",
                              [{"path": "permission", "message": "settings.manage"}])
    return None


@bp.get("/metrics")
def metrics() -> Any:
    """The Prometheus text exposition."""
    refused = _scraper_allowed()
    if refused is not None:
        return refused
    return Response(exposition(_engine()), mimetype=None,
                    headers={"Content-Type": CONTENT_TYPE_LATEST})
