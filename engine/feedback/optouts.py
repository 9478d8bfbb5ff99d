"""Opt-outs and opt-ins the providers report (a spam report, an unsubscribe, an SMS reply of
STOP or START), each written with its activity only when it changes the customer."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, update

from engine.models import Activity, Customer
from engine.unsubscribe import OPT_OUT_COLUMN

CHANNEL_NAMES = {"email": "email", "sms": "text messages"}


def set_opt_out(conn: Connection, customers: Collection[int], channel: str, opted_out: bool,
                now: datetime, why: str, details: Mapping[int, dict[str, Any]] | None = None,
                ) -> list[int]:
    """Opt the customers out of (or back into) the channel; returns those it changed, each
    logged `opted_out` (or `opted_in`) with `why` and its `details` (keyed by customer)."""
    if not customers:
        return []
    column = getattr(Customer, OPT_OUT_COLUMN[channel])
    changed = list(conn.execute(
        update(Customer).where(Customer.id.in_(sorted(customers)), column.is_(not opted_out))
        .values({column: opted_out}).returning(Customer.id)).scalars())
    if changed:
        kind = "opted_out" if opted_out else "opted_in"
        words = "Opted out of" if opted_out else "Opted back in to"
        conn.execute(insert(Activity), [
            {"customer_id": cid, "at": now, "kind": kind,
             "message_id": (details or {}).get(cid, {}).get("message_id"),
             "summary": f"{words} {CHANNEL_NAMES[channel]}: {why}",
             "details": {"channel": channel, "reason": why, **(details or {}).get(cid, {})}}
            for cid in sorted(changed)])
    return changed
