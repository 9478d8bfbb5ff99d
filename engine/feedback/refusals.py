"""What a provider's refusal of one message says about its recipient, acted on in the
transaction that records the refusal: a number that replied STOP to the sender (Twilio 21610)
is opted out of text messages; a number that does not exist or is not a mobile (21211, 21614)
is marked invalid, so campaigns skip it with "no valid address" instead of paying to fail
again. Each change is logged on the customer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, update

from engine.feedback.optouts import set_opt_out
from engine.models import Activity, Customer

OPTED_OUT, BAD_ADDRESS = "opted_out", "bad_address"


@dataclass(frozen=True)
class Refusal:
    customer_id: int
    message_id: int
    channel: str
    address: str
    kind: str  # OPTED_OUT or BAD_ADDRESS
    error: str


def apply(conn: Connection, refusals: Sequence[Refusal], now: datetime) -> None:
    for channel in ("email", "sms"):
        stops = {r.customer_id: r for r in refusals if r.kind == OPTED_OUT and r.channel == channel}
        if stops:
            set_opt_out(conn, stops, channel, True, now, "the provider refused the message: "
                        "the recipient asked the sender to stop",
                        {cid: {"message_id": r.message_id, "error": r.error}
                         for cid, r in stops.items()})
    for r in refusals:
        if r.kind != BAD_ADDRESS:
            continue
        field = "phone" if r.channel == "sms" else "email"
        valid = getattr(Customer, f"{field}_valid")
        # Only while the customer still has the refused address: a number changed since is
        # not the one the provider refused.
        changed = conn.execute(update(Customer).where(
            Customer.id == r.customer_id, getattr(Customer, field) == r.address, valid.is_(True))
            .values({valid: False}).execution_options(preserve_rowcount=True)).rowcount
        if changed:
            conn.execute(insert(Activity).values(
                customer_id=r.customer_id, at=now, kind="profile_changed",
                message_id=r.message_id,
                summary=f"Profile changed (provider): {field} {r.address} marked invalid",
                details={"source": "provider", "error": r.error,
                         "fields": {f"{field}_valid": {"old": True, "new": False}}}))
