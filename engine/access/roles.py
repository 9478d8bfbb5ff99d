"""Roles: the built-in viewer, marketer and admin, and custom roles admins add.

A custom role is a name and a set of permissions (engine.access.permissions). Built-in roles
cannot be changed or deleted; a role that a user holds cannot be deleted (users.role refers to
roles.name, RESTRICT).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from engine.access.permissions import BUILT_IN, PERMISSIONS, ordered
from engine.errors import AlreadyExists, InUse, NotFound, Problem, ValidationError
from engine.models import Role, User
from engine.models.auth import built_in_rows

NAME_PATTERN = "^[a-z][a-z0-9_.-]{0,49}$"
NAME = re.compile(NAME_PATTERN.strip("^$"))


def parse_permissions(text: str | Iterable[str]) -> list[str]:
    """"a,b" or a list, stripped, duplicates dropped, in input order."""
    names = text.split(",") if isinstance(text, str) else list(text)
    out: list[str] = []
    for name in (n.strip() if isinstance(n, str) else n for n in names):
        if name not in out:
            out.append(name)
    return out


def _problems(permissions: list[Any], where: str) -> list[Problem]:
    if not permissions or permissions == [""]:
        return [Problem(where, f"name at least one permission ({', '.join(PERMISSIONS)})")]
    return [Problem(where, f"unknown permission {p!r} (expected one of "
                           f"{', '.join(PERMISSIONS)})")
            for p in permissions if p not in PERMISSIONS]


def effective(role: str, stored: Any) -> frozenset[str]:
    """A role's permissions from its stored list: the code's for a built-in role, and only
    names this release knows for a custom one."""
    if role in BUILT_IN:
        return BUILT_IN[role]
    return frozenset(p for p in stored or () if p in PERMISSIONS)


def permissions_of(conn: Connection, role: str) -> frozenset[str]:
    """A role's permissions (none for an unknown role)."""
    return effective(role, conn.execute(select(Role.permissions).where(Role.name == role))
                     .scalar_one_or_none())


def role_exists(conn: Connection, role: str) -> bool:
    return conn.execute(select(Role.name).where(Role.name == role)).first() is not None


def describe(conn: Connection, name: str) -> dict[str, Any]:
    """One role: name, built_in, permissions and how many users hold it; NotFound if none."""
    found = [r for r in list_roles(conn, name) if r["name"] == name]
    if not found:
        raise NotFound(f"no role {name!r}")
    return found[0]


def list_roles(conn: Connection, only: str | None = None) -> list[dict[str, Any]]:
    """Every role (built-in first, then custom by name) with its permissions and user count."""
    held = {r[0]: r[1] for r in conn.execute(select(User.role, func.count()).group_by(User.role))}
    stmt = select(Role.name, Role.built_in, Role.permissions, Role.created_at)
    if only is not None:
        stmt = stmt.where(Role.name == only)
    rows = conn.execute(stmt.order_by(Role.built_in.desc(), Role.name)).all()
    return [{"name": r.name, "built_in": bool(r.built_in),
             "permissions": ordered(effective(r.name, r.permissions)), "users": int(held.get(r.name, 0)),
             "created_at": r.created_at} for r in rows]


def create_role(conn: Connection, name: str, permissions: str | Iterable[str],
                where: str = "permissions") -> dict[str, Any]:
    perms = parse_permissions(permissions)
    problems = _problems(perms, where)
    if not isinstance(name, str) or not NAME.fullmatch(name):
        problems.insert(0, Problem("name", "1-50 characters: lower-case letters, digits, "
                                           "'.', '_' or '-', starting with a letter"))
    if problems:
        raise ValidationError(problems, title="cannot create role")
    if role_exists(conn, name):
        raise AlreadyExists(f"role {name!r} already exists")
    conn.execute(insert(Role).values(name=name, permissions=ordered(perms), built_in=False))
    return describe(conn, name)


def _custom(conn: Connection, name: str, action: str) -> None:
    if not role_exists(conn, name):
        raise NotFound(f"no role {name!r}")
    if name in BUILT_IN:
        raise ValidationError([Problem("name", f"role {name!r} is built in: it cannot be "
                                               f"{action}")], title=f"cannot {action[:-1]} role")


def update_role(conn: Connection, name: str, permissions: str | Iterable[str],
                where: str = "permissions") -> dict[str, Any]:
    _custom(conn, name, "changed")
    perms = parse_permissions(permissions)
    if problems := _problems(perms, where):
        raise ValidationError(problems, title="cannot change role")
    conn.execute(update(Role).where(Role.name == name).values(permissions=ordered(perms)))
    return describe(conn, name)


def delete_role(conn: Connection, name: str) -> None:
    _custom(conn, name, "deleted")
    users = conn.execute(select(User.name).where(User.role == name).order_by(User.name)
                         ).scalars().all()
    if users:
        raise InUse(f"role {name!r} is held by {len(users)} user(s): {', '.join(users[:10])}; "
                    "give them another role first")
    conn.execute(delete(Role).where(Role.name == name))


def sync_built_in(conn: Connection) -> None:
    """Write the built-in roles' rows as this release defines them (after a migration)."""
    for row in built_in_rows():
        if role_exists(conn, row["name"]):
            conn.execute(update(Role).where(Role.name == row["name"])
                         .values(permissions=row["permissions"], built_in=True))
        else:
            conn.execute(insert(Role).values(**row))
