"""SMS through the official `twilio` library (its api.base_url can point at a local server)."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from http.client import HTTPException

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from engine.channels.base import Channel, Outcome, Outgoing
from engine.feedback.refusals import BAD_ADDRESS, OPTED_OUT

# Twilio's error codes (twilio.com/docs/api/errors) that say something about the recipient;
# every other 4xx fails the message as before. Codes that say our account or sender is wrong
# are retried with backoff (a fixed setting lets the queue go on), not failed at once.
RECIPIENT = {21610: OPTED_OUT,   # the number replied STOP to this sender
             21211: BAD_ADDRESS,  # invalid 'To' number
             21614: BAD_ADDRESS}  # 'To' is not a mobile number
OUR_SIDE = {20003,  # authentication failed
            20005,  # account not active
            20429,  # too many requests
            21212, 21606, 21659}  # the 'From' number is not ours or cannot send


class TwilioChannel(Channel):
    def __init__(self, account_sid: str, auth_token: str, sender: str,
                 base_url: str | None = None, timeout: float = 10.0,
                 status_callback: str | None = None) -> None:
        """status_callback: the URL of our status webhook, when Twilio can reach it; each
        message's callback names the message (`?message=<id>`)."""
        self.client = Client(account_sid, auth_token,
                             http_client=TwilioHttpClient(timeout=timeout))
        if base_url:
            self.client.api.base_url = base_url.rstrip("/")
        self.sender = sender
        self.status_callback = status_callback

    def send(self, batch: Sequence[Outgoing]) -> Generator[list[Outcome], None, None]:
        for m in batch:  # one request per message
            yield [self._one(m)]

    def _one(self, m: Outgoing) -> Outcome:
        try:
            extra = ({"status_callback": f"{self.status_callback}?message={m.message_id}"}
                     if self.status_callback else {})
            sent = self.client.messages.create(to=m.to, from_=m.sender or self.sender,
                                               body=m.body, **extra)
        except TwilioRestException as exc:
            code = exc.code if isinstance(exc.code, int) else None
            retry = exc.status == 429 or exc.status >= 500 or code in OUR_SIDE
            text = str(exc.msg).removeprefix("Unable to create record: ")  # the library's words
            error = f"Twilio {exc.status}" + (f" error {code}" if code else "") + f": {text}"
            return Outcome(m.message_id, "retry" if retry else "failed", error=error[:500],
                           refusal=None if retry else RECIPIENT.get(code or 0))
        except (requests.RequestException, TwilioException, HTTPException, OSError,
                ValueError) as exc:
            # Unreachable, timed out, or an answer that is not the JSON Twilio sends.
            return Outcome(m.message_id, "retry",
                           error=f"Twilio unreachable or garbled answer: {exc!r}"[:500])
        return Outcome(m.message_id, "sent", provider_id=sent.sid)
