"""Twilio's webhooks: status callbacks of the SMS we sent, and replies to our number.

Both are signed with the account's auth token (X-Twilio-Signature, checked by the twilio
library's RequestValidator over the URL Twilio called and the form it posted). The status
callback URL names our message (`?message=<id>`, engine.channels.twilio), and the signature
covers the query, so a callback cannot be pointed at another message."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from twilio.request_validator import RequestValidator

from engine.feedback.events import Event

PROVIDER = "twilio"
SIGNATURE = "X-Twilio-Signature"
STATUS_PATH = "/webhooks/twilio/status"
KINDS = {"delivered": "delivered", "undelivered": "undelivered", "failed": "failed"}
# Twilio's own opt-out and opt-in keywords (Advanced Opt-Out defaults).
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def signed(auth_token: str, url: str, form: Mapping[str, str], signature: str | None) -> bool:
    """Whether Twilio signed this call: `url` as Twilio called it (our public URL, the path
    and the query)."""
    if not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(form), signature))


def status_event(form: Mapping[str, str], message: str | None, now: datetime) -> Event:
    """A status callback as an event, stored once per message and status."""
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    code = form.get("ErrorCode") or None
    return Event(PROVIDER, f"{sid}:{status}"[:200], KINDS.get(status, status[:30] or "unknown"),
                 now, message_id=_our_id(message), address=form.get("To") or None,
                 reason=f"Twilio error {code}" if code else None,
                 payload={k: form[k] for k in sorted(form)})


def keyword(body: str | None) -> str | None:
    """`stop` or `start` when a reply is one of the opt-out or opt-in words alone (any case,
    around spaces and punctuation), else None."""
    word = re.sub(r"[\s.!?,;:'\"]+", " ", (body or "")).strip().upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    return None


def _our_id(value: str | None) -> int | None:
    if value is None or not value.isdigit():
        return None
    number = int(value)
    return number if 0 < number < 2**63 else None
