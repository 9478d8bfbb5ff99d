"""The Flask app factory: auth (sessions and bearer tokens, roles, CSRF), the JSON API under
/api/v1 with its OpenAPI document, the pages (campaign editor, segments, templates, customers,
runs, settings, users), the public unsubscribe endpoint, the providers' signed webhooks and the
operations endpoints (/healthz, /metrics)."""

from __future__ import annotations

from typing import Any

from flask import Flask

from engine.config import load_settings, secret_key
from engine.db import make_engine

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    settings = (config or {}).get("NUDGEFLOW_SETTINGS") or load_settings()
    app.config.update(
        SECRET_KEY=secret_key(settings), NUDGEFLOW_SETTINGS=settings,
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=settings.max_request_mb * 1024 * 1024,
        API_TITLE="nudgeflow", API_VERSION="v1", OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1", OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={"components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}]},
    )
    app.config.update(config or {})
    app.extensions["nudgeflow_engine"] = make_engine(settings.database_url)

    from web import auth, errors, inputs, ops, pages, unsubscribe, webhooks
    from web.api import blueprints, register_converters

    auth.init_app(app)
    inputs.init_app(app)
    errors.register(app)
    api = errors.NudgeflowApi(app)
    register_converters(app, api)
    for blueprint in blueprints():
        api.register_blueprint(blueprint)
    app.register_blueprint(unsubscribe.bp)
    app.register_blueprint(ops.bp)
    auth.csrf.exempt(webhooks.bp)  # signed by the provider, posted by no browser
    app.register_blueprint(webhooks.bp)
    pages.init_app(app)

    @app.after_request
    def _security_headers(response: Any) -> Any:
        # Scripts and styles only from our own files; no framing (clickjacking), no sniffing.
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app
