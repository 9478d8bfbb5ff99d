"""Administration: /api/v1/settings (consent mode, sender defaults, credits; settings.manage),
users and tokens (users.manage)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import select

from engine import credits
from engine.access.roles import permissions_of, role_exists
from engine.db import write_transaction
from engine.errors import AlreadyExists, NotFound
from engine.models import User
from engine.users import create_token, create_user, set_role, unknown_role
from engine.workspace import set_setting, workspace_settings
from web.api import Blueprint
from web.api.schemas import (
    CreditsIn,
    CreditsOut,
    SettingsIO,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
    UserRoleIn,
)
from web.db import engine
from web.permissions import require_all

blp = Blueprint("admin", __name__, url_prefix="/api/v1",
                description="Workspace settings and credits, users and tokens")
USER_COLUMNS = (User.name, User.role, User.created_at)


@blp.route("/settings")
class Settings(MethodView):
    @blp.response(200, SettingsIO)
    def get(self) -> Any:
        with engine().connect() as conn:
            return workspace_settings(conn)

    @blp.arguments(SettingsIO)
    @blp.response(200, SettingsIO)
    def put(self, data: dict[str, Any]) -> Any:
        with write_transaction(engine()) as conn:
            for key, value in data.items():
                set_setting(conn, key, value)
            return workspace_settings(conn)


@blp.route("/settings/credits")
class Credits(MethodView):
    @blp.response(200, CreditsOut)
    def get(self) -> Any:
        with engine().connect() as conn:
            return credits.balances(conn)

    @blp.arguments(CreditsIn)
    @blp.response(200, CreditsOut)
    def post(self, data: dict[str, Any]) -> Any:
        with write_transaction(engine()) as conn:
            credits.add(conn, data["channel"], data["units"])
            return credits.balances(conn)


@blp.route("/users")
class Users(MethodView):
    @blp.response(200, UserOut(many=True))
    def get(self) -> Any:
        with engine().connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(*USER_COLUMNS).order_by(User.name))]

    @blp.arguments(UserIn)
    @blp.response(201, UserOut)
    def post(self, data: dict[str, Any]) -> Any:
        with write_transaction(engine()) as conn:
            if conn.execute(select(User.id).where(User.name == data["name"])).first():
                raise AlreadyExists(f"user {data['name']!r} already exists")
            _known_role(conn, data["role"])
            require_all(permissions_of(conn, data["role"]))
            create_user(conn, data["name"], data["role"], data["password"])
            return _user(conn, data["name"])


def _known_role(conn: Any, role: str) -> None:
    """A role named in a request body that does not exist is not found (as a token's user)."""
    if not role_exists(conn, role):
        raise NotFound(unknown_role(conn, role).message.replace("unknown role", "no role", 1))


def _user(conn: Any, name: str) -> dict[str, Any]:
    return dict(conn.execute(select(*USER_COLUMNS).where(User.name == name)).one()._mapping)


@blp.route("/users/<key>")
class UserItem(MethodView):
    @blp.arguments(UserRoleIn)
    @blp.response(200, UserOut)
    def patch(self, data: dict[str, Any], key: str) -> Any:
        """Give the user another role."""
        with write_transaction(engine()) as conn:
            if conn.execute(select(User.id).where(User.name == key)).first() is None:
                raise NotFound(f"no user {key!r}")
            _known_role(conn, data["role"])
            require_all(permissions_of(conn, data["role"]))
            set_role(conn, key, data["role"], where="$.role")
            return _user(conn, key)


@blp.route("/tokens")
class Tokens(MethodView):
    @blp.arguments(TokenIn)
    @blp.response(201, TokenOut)
    def post(self, data: dict[str, Any]) -> Any:
        with write_transaction(engine()) as conn:
            return {"token": create_token(conn, data["user"], data["name"])}
