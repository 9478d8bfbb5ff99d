"""SendGrid v3 mail/send through the official `sendgrid` library.

Messages with the same body, sender, reply-to and tracking share one request, one personalization each
(its own recipient, subject, headers and custom_args carrying our message id, so a delivery can
be traced back to the outbox row)."""

from __future__ import annotations

import json
from collections.abc import Generator, Sequence
from http.client import HTTPException
from typing import Any

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from engine.channels.base import Channel, Outcome, Outgoing
from engine.channels.file import DEFAULT_SENDER

SENDGRID_HOST = "https://api.sendgrid.com"


def _error_text(exc: HTTPError) -> str:
    body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body)
    try:
        errors = json.loads(body).get("errors", [])
        detail = "; ".join(e.get("message", "") for e in errors if isinstance(e, dict))
    except (ValueError, AttributeError):
        detail = body[:200]
    return f"SendGrid {exc.status_code}: {detail}".rstrip(": ")


class SendGridChannel(Channel):
    max_batch = 1000

    def __init__(self, api_key: str, host: str | None = None, timeout: float = 10.0) -> None:
        self.api = SendGridAPIClient(api_key=api_key, host=host or SENDGRID_HOST)
        self.api.client.timeout = timeout

    def payload(self, group: Sequence[Outgoing]) -> dict[str, Any]:
        first = group[0]
        personalizations = []
        for m in group:
            p: dict[str, Any] = {"to": [{"email": m.to}], "subject": m.subject or "",
                                 "custom_args": {"nudgeflow_message_id": str(m.message_id)}}
            if m.headers:
                p["headers"] = dict(m.headers)
            personalizations.append(p)
        body: dict[str, Any] = {
            "personalizations": personalizations,
            "from": {"email": first.sender or DEFAULT_SENDER},
            "content": [{"type": "text/html" if first.html else "text/plain",
                         "value": first.body}],
        }
        if first.reply_to:
            body["reply_to"] = {"email": first.reply_to}
        # Said either way, so the account's own default never tracks what a node did not ask.
        body["tracking_settings"] = {
            "open_tracking": {"enable": "opens" in first.tracking},
            "click_tracking": {"enable": "clicks" in first.tracking,
                               "enable_text": "clicks" in first.tracking}}
        return body

    def send(self, batch: Sequence[Outgoing]) -> Generator[list[Outcome], None, None]:
        groups: dict[tuple[Any, ...], list[Outgoing]] = {}
        for m in batch:
            groups.setdefault((m.body, m.html, m.sender, m.reply_to, m.tracking),
                              []).append(m)
        for group in groups.values():
            yield self._post(group)

    def _post(self, group: Sequence[Outgoing]) -> list[Outcome]:
        try:
            response = self.api.client.mail.send.post(request_body=self.payload(group))
        except HTTPError as exc:
            status = "retry" if exc.status_code == 429 or exc.status_code >= 500 else "failed"
            return [Outcome(m.message_id, status, error=_error_text(exc)) for m in group]
        except (OSError, HTTPException, ValueError) as exc:
            # Timeouts, refused or reset connections (URLError is an OSError), and answers
            # that are not HTTP or end early (a bad status line, a truncated body).
            reason = getattr(exc, "reason", None) or exc or type(exc).__name__
            return [Outcome(m.message_id, "retry", error=f"SendGrid unreachable or garbled "
                                                         f"answer: {reason!r}"[:500])
                    for m in group]
        provider_id = response.headers.get("X-Message-Id") if response.headers else None
        return [Outcome(m.message_id, "sent", provider_id=provider_id) for m in group]
