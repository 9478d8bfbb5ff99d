"""Users (each holds a role: viewer, marketer, admin or a custom one, engine.access.roles) and
API tokens (stored as SHA-256, shown once)."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Connection, insert, select, update
from werkzeug.security import generate_password_hash

from engine.access.roles import role_exists
from engine.errors import NotFound, Problem, ValidationError
from engine.limits import column_problems
from engine.models import ApiToken, Role, User

MIN_PASSWORD = 10


def create_user(conn: Connection, name: str, role: str, password: str) -> int:
    problems = []
    if not role_exists(conn, role):
        problems.append(unknown_role(conn, role))
    if len(password) < MIN_PASSWORD:
        problems.append(Problem("password", f"at least {MIN_PASSWORD} characters"))
    problems += [Problem("NAME", m) for _, m in column_problems(User.__table__, {"name": name})]
    if conn.execute(select(User.id).where(User.name == name)).first() is not None:
        problems.append(Problem("NAME", f"user {name!r} already exists"))
    if problems:
        raise ValidationError(problems, title="cannot create user")
    key = conn.execute(insert(User).values(
        name=name, role=role, password_hash=generate_password_hash(password))
    ).inserted_primary_key
    assert key is not None
    return int(key[0])


def unknown_role(conn: Connection, role: str, where: str = "--role") -> Problem:
    roles = conn.execute(select(Role.name).order_by(Role.built_in.desc(), Role.name)).scalars()
    return Problem(where, f"unknown role {role!r} (expected one of {', '.join(roles)})")


def set_role(conn: Connection, name: str, role: str, where: str = "ROLE") -> None:
    """Give an existing user another role."""
    if conn.execute(select(User.id).where(User.name == name)).first() is None:
        raise NotFound(f"no user {name!r}")
    if not role_exists(conn, role):
        raise ValidationError([unknown_role(conn, role, where)], title="cannot change user")
    conn.execute(update(User).where(User.name == name).values(role=role))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(conn: Connection, user_name: str, label: str | None = None) -> str:
    """A new bearer token for the user; only its hash is stored."""
    user_id = conn.execute(select(User.id).where(User.name == user_name)).scalar_one_or_none()
    if user_id is None:
        raise NotFound(f"no user {user_name!r}")
    if too_long := column_problems(ApiToken.__table__, {"name": label}):
        raise ValidationError([Problem("--name", m) for _, m in too_long],
                              title="cannot create token")
    token = "nf_" + secrets.token_urlsafe(32)
    conn.execute(insert(ApiToken).values(user_id=user_id, token_hash=hash_token(token),
                                         name=label))
    return token


def ensure_user(conn: Connection, name: str, role: str, password: str) -> None:
    """Create the user, or give an existing one this role and password (the demo's admin)."""
    if conn.execute(select(User.id).where(User.name == name)).first() is None:
        create_user(conn, name, role, password)
        return
    conn.execute(update(User).where(User.name == name).values(
        role=role, password_hash=generate_password_hash(password)))
