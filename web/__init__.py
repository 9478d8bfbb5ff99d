"""The Flask app factory: auth (sessions and bearer tokens, roles, CSRF), the JSON API under
/api/v1 with its OpenAPI document, the pages (campaign editor, segments, templates, customers,
runs, settings, users) and the public unsubscribe endpoint."""

from __future__ import annotations

from typing import Any

from flask import Flask

from engine.config import load_settings, secret_key
from engine.db import make_engine


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    settings = (config or {}).get("NUDGEFLOW_SETTINGS") or load_settings()
    app.config.update(
        SECRET_KEY=secret_key(settings), NUDGEFLOW_SETTINGS=settings,
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        API_TITLE="nudgeflow", API_VERSION="v1", OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1", OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={"components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}]},
    )
    app.config.update(config or {})
    app.extensions["nudgeflow_engine"] = make_engine(settings.database_url)

    from web import auth, errors, pages, unsubscribe
    from web.api import blueprints

    auth.init_app(app)
    errors.register(app)
    api = errors.NudgeflowApi(app)
    for blueprint in blueprints():
        api.register_blueprint(blueprint)
    app.register_blueprint(unsubscribe.bp)
    pages.init_app(app)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
