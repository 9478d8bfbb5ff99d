"""Workspace settings stored in the `settings` table (consent mode, sender defaults, quiet
hours per channel, frequency caps)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from engine.models import Setting

# `sender` is the email sender; SMS go from `sms_sender`, else from the provider's own number.
DEFAULTS: dict[str, Any] = {"consent_mode": "require", "reply_to": None, "sender": None,
                            "sms_sender": None, "quiet_hours": {"email": None, "sms": None},
                            "frequency_caps": []}


def workspace_settings(conn: Connection) -> dict[str, Any]:
    stored: dict[str, Any] = dict(conn.execute(select(Setting.key, Setting.value)).all())
    return {**DEFAULTS, **stored}


def set_setting(conn: Connection, key: str, value: Any) -> None:
    if conn.execute(select(Setting.key).where(Setting.key == key)).first() is None:
        conn.execute(insert(Setting).values(key=key, value=value))
    else:
        conn.execute(update(Setting).where(Setting.key == key).values(value=value))
