"""/api/v1/roles: the built-in roles and the custom roles admins add (users.manage)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from engine.access.permissions import PERMISSIONS
from engine.access.roles import (
    NAME_PATTERN,
    create_role,
    delete_role,
    describe,
    list_roles,
    update_role,
)
from engine.db import write_transaction
from web.api import Blueprint
from web.db import engine
from web.permissions import require_all

blp = Blueprint("roles", __name__, url_prefix="/api/v1/roles",
                description="Roles: named sets of permissions (viewer, marketer and admin are "
                            "built in and cannot be changed); a role users hold cannot be "
                            "deleted")
PERMISSION_LIST = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(list(PERMISSIONS))),
                                 required=True, validate=ma.validate.Length(min=1),
                                 metadata={"description": "permission names: "
                                                          + ", ".join(PERMISSIONS)})


class RoleIn(ma.Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Regexp(
        NAME_PATTERN, error="1-50 characters: lower-case letters, digits, '.', '_' or '-', "
                            "starting with a letter"))
    permissions = PERMISSION_LIST


class RolePermissionsIn(ma.Schema):
    permissions = PERMISSION_LIST


class RoleOut(ma.Schema):
    name = ma.fields.String()
    built_in = ma.fields.Boolean()
    permissions = ma.fields.List(ma.fields.String())
    users = ma.fields.Integer(metadata={"description": "how many users hold it"})


@blp.route("")
class Roles(MethodView):
    @blp.response(200, RoleOut(many=True))
    def get(self) -> Any:
        with engine().connect() as conn:
            return list_roles(conn)

    @blp.arguments(RoleIn)
    @blp.response(201, RoleOut)
    def post(self, data: dict[str, Any]) -> Any:
        require_all(data["permissions"])
        with write_transaction(engine()) as conn:
            return create_role(conn, data["name"], data["permissions"], where="$.permissions")


@blp.route("/<key>")
class RoleItem(MethodView):
    @blp.response(200, RoleOut)
    def get(self, key: str) -> Any:
        with engine().connect() as conn:
            return describe(conn, key)

    @blp.arguments(RolePermissionsIn)
    @blp.response(200, RoleOut)
    def put(self, data: dict[str, Any], key: str) -> Any:
        """Replace a custom role's permissions."""
        require_all(data["permissions"])
        with write_transaction(engine()) as conn:
            return update_role(conn, key, data["permissions"], where="$.permissions")

    @blp.response(204)
    def delete(self, key: str) -> None:
        with write_transaction(engine()) as conn:
            delete_role(conn, key)
