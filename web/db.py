"""The app's database engine (made once by create_app)."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import Engine


def engine() -> Engine:
    return current_app.extensions["nudgeflow_engine"]  # type: ignore[no-any-return]
