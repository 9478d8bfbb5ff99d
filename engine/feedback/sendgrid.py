"""SendGrid's signed Event Webhook: checking a call's signature and reading its events.

SendGrid signs the timestamp header followed by the raw body with ECDSA (P-256, SHA-256) and
sends the signature (base64 DER) and the timestamp in X-Twilio-Email-Event-Webhook-Signature
and X-Twilio-Email-Event-Webhook-Timestamp. The key is the one SendGrid shows under Mail
Settings, Signed Event Webhook. Our message id travels in the custom_args of each mail
(engine.channels.sendgrid) and comes back as `nudgeflow_message_id` on every event."""

from __future__ import annotations

import binascii
import hashlib
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader

from engine.errors import NudgeflowError
from engine.feedback.events import Event

PROVIDER = "sendgrid"
SIGNATURE = EventWebhookHeader.SIGNATURE
TIMESTAMP = EventWebhookHeader.TIMESTAMP
MAX_AGE = timedelta(minutes=10)  # older timestamps are refused: a captured call replayed
MAX_SKEW = timedelta(minutes=1)  # a sender clock this far ahead of ours is still believed
KINDS = {"delivered": "delivered", "bounce": "bounced", "dropped": "dropped",
         "deferred": "deferred", "open": "opened", "click": "clicked",
         "spamreport": "complained", "unsubscribe": "unsubscribed",
         "group_unsubscribe": "unsubscribed"}
# Drop reasons that say the address itself is no good (not a spam filter, not a bad header).
INVALID_DROPS = ("invalid", "bounced address")
OPT_OUT_DROPS = ("unsubscribed address", "spam reporting address")


def _invalid_drop(reason: str) -> bool:
    return reason in INVALID_DROPS or "invalid address" in reason or "invalid email" in reason


class BadSignature(NudgeflowError):
    """A call that must change nothing; `status` says how to answer it (401 unsigned, 403
    wrongly signed or stale)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def verify(key: str, body: bytes, signature: str | None, timestamp: str | None,
           now: datetime) -> datetime:
    """Check a call's signature and the age of its timestamp; its time (naive UTC) if good,
    else raise BadSignature."""
    if not signature or not timestamp:
        raise BadSignature(401, f"unsigned: send {SIGNATURE} and {TIMESTAMP}")
    try:
        at = datetime.fromtimestamp(int(timestamp.strip()), UTC).replace(tzinfo=None)
    except (ValueError, OverflowError, OSError):
        raise BadSignature(403, f"{TIMESTAMP}: expected Unix seconds, got {timestamp[:40]!r}") \
            from None
    try:
        good = _verifier(key).verify_signature(body.decode("utf-8"), signature, timestamp)
    except (ValueError, UnicodeDecodeError, binascii.Error):  # not base64, not DER, not UTF-8
        good = False
    if not good:
        raise BadSignature(403, "the signature does not match the body and timestamp")
    if at < now - MAX_AGE:
        raise BadSignature(403, f"stale: signed at {at:%Y-%m-%d %H:%M:%S} UTC, more than "
                                f"{MAX_AGE.seconds // 60} minutes ago")
    if at > now + MAX_SKEW:
        raise BadSignature(403, f"signed at {at:%Y-%m-%d %H:%M:%S} UTC, in the future")
    return at


@lru_cache(maxsize=4)
def _verifier(key: str) -> EventWebhook:
    """The key, read once (engine.config checked it at start-up)."""
    return EventWebhook(key)


def call_id(signature: str) -> str:
    """A signed call's id: a replay carries the same signature."""
    return hashlib.sha256(signature.strip().encode()).hexdigest()


def parse(document: Any, now: datetime) -> list[Event]:
    """The events of a webhook body (a JSON array of objects); raise NudgeflowError naming the
    first entry that is not an event."""
    if not isinstance(document, list):
        raise NudgeflowError("expected a JSON array of SendGrid events")
    out = []
    for i, item in enumerate(document):
        if not isinstance(item, dict) or not isinstance(item.get("event"), str):
            raise NudgeflowError(f"event {i}: expected an object with an \"event\" name")
        out.append(_event(item, now))
    return out


def _event(item: dict[str, Any], now: datetime) -> Event:
    name = item["event"]
    kind = KINDS.get(name, name[:30])
    reason = str(item.get("reason") or item.get("response") or "")[:500] or None
    drop = (reason or "").lower() if kind == "dropped" else ""
    # sg_event_id is unique per event; without one (very old payloads), the event's content.
    event_id = str(item.get("sg_event_id") or "") or "sha256:" + hashlib.sha256(
        repr(sorted(item.items())).encode()).hexdigest()
    return Event(
        PROVIDER, event_id[:200], kind, _time(item.get("timestamp"), now),
        message_id=_our_id(item.get("nudgeflow_message_id")),
        address=str(item["email"]).strip().lower() if item.get("email") else None,
        reason=reason,
        invalid_address=(kind == "bounced" and item.get("type") == "bounce")
        or (kind == "dropped" and _invalid_drop(drop)),
        opt_out=kind in ("complained", "unsubscribed") or drop in OPT_OUT_DROPS,
        payload=item)


def _our_id(value: Any) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None


def _time(value: Any, now: datetime) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC).replace(tzinfo=None)
    except (TypeError, ValueError, OverflowError, OSError):
        return now
