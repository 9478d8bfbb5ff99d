"""Test sends: a template rendered for a chosen customer and sent at once to an address a user
gives, through the configured channel. A test is recorded in `test_sends` only: no campaign,
no message, no credit, nothing in the customer's timeline.

Its provider message id is the negative of its `test_sends` id, so a provider event about it
(SendGrid's custom_args) can never be taken for a real message's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, insert, select, update

from engine.channels.base import Channel, Outcome, Outgoing
from engine.contacts import normalise_email, normalise_phone
from engine.db import write_transaction
from engine.errors import Problem, ValidationError
from engine.models import Customer, TestSend
from engine.templates import is_html
from engine.workspace import workspace_settings
from nodes.send_message import sender


def address(channel: str, to: str, region: str) -> str:
    """The address a test goes to, normalised; a 400 naming `to` when it is not one."""
    if channel == "email":
        email = normalise_email(to)
        if email.valid and email.value:
            return email.value
        raise ValidationError([Problem("$.to", f"expected an email address for an email "
                                               f"template, got {to!r}")])
    phone = normalise_phone(to, region)
    if phone.valid and phone.value:
        return phone.value
    raise ValidationError([Problem("$.to", f"expected a phone number (+27821234567) for an "
                                           f"SMS template, got {to!r}")])


def send_test(engine: Engine, channels: Mapping[str, Channel], template: Mapping[str, Any],
              rendered: Mapping[str, Any], customer: str, to: str, user: str | None
              ) -> dict[str, Any]:
    """Send `rendered` (a template's subject and body for `customer`) to `to` now, and record
    the test with what the provider said."""
    channel = template["channel"]
    with write_transaction(engine) as conn:
        settings = workspace_settings(conn)
        customer_id = conn.execute(select(Customer.id).where(Customer.external_id == customer)
                                   ).scalar_one_or_none()
        test_id = conn.execute(insert(TestSend).values(
            user_name=user, template_key=template.get("key"), customer_id=customer_id,
            channel=channel, address=to, subject=rendered.get("subject"),
            body=rendered["body"], status="failed", error="not answered yet",
        ).returning(TestSend.id)).scalar_one()
    outgoing = Outgoing(
        -test_id, channel, to, rendered["body"], rendered.get("subject"),
        channel == "email" and is_html(template["body"]),
        sender(None, channel, settings),
        settings.get("reply_to") if channel == "email" else None)
    outcome = _send(channels[channel], outgoing)
    result = {"status": "sent" if outcome.status == "sent" else "failed",
              "provider_id": outcome.provider_id, "error": outcome.error}
    with write_transaction(engine) as conn:
        conn.execute(update(TestSend).where(TestSend.id == test_id).values(**result))
    return {"id": test_id, "channel": channel, "to": to, "customer": customer,
            "subject": rendered.get("subject"), "body": rendered["body"], **result}


def _send(provider: Channel, outgoing: Outgoing) -> Outcome:
    """The provider's one outcome for one message (its send() generator run to its end)."""
    requests = provider.send([outgoing])
    try:
        for outcomes in requests:
            for o in outcomes:
                if o.message_id == outgoing.message_id:
                    return o
    except Exception as exc:  # a provider breaking its contract
        return Outcome(outgoing.message_id, "failed", error=f"provider error: {exc!r}"[:500])
    finally:
        requests.close()
    return Outcome(outgoing.message_id, "failed", error="no answer from the provider")
