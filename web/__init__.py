"""The Flask app factory. Blueprints: the public unsubscribe endpoint (more areas follow)."""

from __future__ import annotations

from typing import Any

from flask import Flask

from engine.config import load_settings, secret_key
from engine.db import make_engine


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    settings = (config or {}).get("NUDGEFLOW_SETTINGS") or load_settings()
    app.config.update(SECRET_KEY=secret_key(settings), NUDGEFLOW_SETTINGS=settings)
    app.config.update(config or {})
    app.extensions["nudgeflow_engine"] = make_engine(settings.database_url)

    from web import unsubscribe

    app.register_blueprint(unsubscribe.bp)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
