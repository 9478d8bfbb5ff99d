"""Signed, single-purpose unsubscribe tokens and the opt-out they perform."""

from __future__ import annotations

from datetime import datetime

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Connection, insert, select, update

from engine.errors import NudgeflowError
from engine.models import Activity, Customer
from engine.models.base import utcnow

SALT = "nudgeflow-unsubscribe"
OPT_OUT_COLUMN = {"email": "email_opt_out", "sms": "sms_opt_out"}


class BadToken(NudgeflowError):
    pass


def make_token(secret: str, customer_id: int, channel: str, campaign_id: int | None) -> str:
    return URLSafeSerializer(secret, salt=SALT).dumps(
        {"c": customer_id, "ch": channel, "k": campaign_id})


def read_token(secret: str, token: str) -> tuple[int, str, int | None]:
    try:
        data = URLSafeSerializer(secret, salt=SALT).loads(token)
        return int(data["c"]), str(data["ch"]), data.get("k")
    except (BadSignature, KeyError, TypeError, ValueError):
        raise BadToken("this unsubscribe link is not valid") from None


def opt_out(conn: Connection, customer_id: int, channel: str, campaign_id: int | None,
            now: datetime | None = None) -> bool:
    """Opt the customer out of the channel; True if this changed anything (then logged)."""
    column = getattr(Customer, OPT_OUT_COLUMN[channel])
    changed = conn.execute(update(Customer).where(Customer.id == customer_id, column.is_(False))
                           .values({column: True}).execution_options(preserve_rowcount=True))
    if not changed.rowcount:
        return False
    conn.execute(insert(Activity).values(
        customer_id=customer_id, at=now or utcnow(), kind="unsubscribed",
        campaign_id=campaign_id, summary=f"Unsubscribed from {channel} by link",
        details={"channel": channel}))
    return True


def customer_exists(conn: Connection, customer_id: int) -> bool:
    return conn.execute(select(Customer.id).where(Customer.id == customer_id)).first() is not None
