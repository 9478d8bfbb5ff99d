from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, event, insert
from sqlalchemy.orm import Mapped, mapped_column

from engine.access.permissions import BUILT_IN, ordered
from engine.models.base import Base, utcnow

ROLES = tuple(BUILT_IN)  # the built-in roles; admins add custom ones (engine.access.roles)


class Role(Base):
    """A named set of permissions (engine.access.permissions). Built-in roles (viewer, marketer,
    admin) take theirs from the code; custom roles from `permissions`."""

    __tablename__ = "roles"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    permissions: Mapped[list[str]] = mapped_column(type_=Base.type_annotation_map[dict[str, Any]])
    built_in: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


def built_in_rows() -> list[dict[str, Any]]:
    return [{"name": name, "permissions": ordered(perms), "built_in": True, "created_at": utcnow()}
            for name, perms in BUILT_IN.items()]


@event.listens_for(Role.__table__, "after_create")
def _built_in_roles(target: Any, connection: Any, **_kw: Any) -> None:
    """A schema made from the models (tests) has the built-in roles, as a migrated one does."""
    connection.execute(insert(target), built_in_rows())


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    # A role in use cannot be deleted (RESTRICT).
    role: Mapped[str] = mapped_column(ForeignKey("roles.name", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # SHA-256 of the token; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)


class Setting(Base):
    """Workspace settings (consent mode, sender defaults, channel credits), one JSON per key."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(type_=Base.type_annotation_map[dict[str, Any]])
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class ChannelCredit(Base):
    """Prepaid units per channel (one per email, one per SMS part). A channel without a row is
    not metered."""

    __tablename__ = "channel_credits"

    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    balance: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (CheckConstraint("balance >= 0", name="balance_not_negative"),)


class LoginFailure(Base):
    """A failed login, kept for the failed-login window: every web process counts the same
    attempts."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_login_failures_name_address_at", "name", "address", "at"),)
