"""Admin pages: workspace settings with credits, users with their API tokens, and roles."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from sqlalchemy import select

from engine import credits
from engine.access.permissions import PERMISSIONS
from engine.access.roles import list_roles
from engine.models import User
from engine.workspace import workspace_settings
from web.db import engine

bp = Blueprint("admin_pages", __name__)


@bp.get("/settings")
def settings() -> Any:
    with engine().connect() as conn:
        return render_template("pages/settings.html", settings=workspace_settings(conn),
                               credits=credits.balances(conn))


@bp.get("/users")
def users() -> Any:
    with engine().connect() as conn:
        rows = conn.execute(select(User.name, User.role, User.created_at).order_by(User.name)).all()
        roles = list_roles(conn)
    return render_template("pages/users.html", users=rows, roles=roles)


@bp.get("/roles")
def roles() -> Any:
    with engine().connect() as conn:
        found = list_roles(conn)
    return render_template("pages/roles.html", roles=found, permissions=PERMISSIONS)
