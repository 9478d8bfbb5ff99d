"""Signing webhook calls as the providers do, and the world the webhook tests post about."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from engine.config import Settings
from engine.models import Activity, Customer, Message, MessageEvent
from tests.conftest import Db

PUBLIC_URL = "https://nf.example"
TWILIO_TOKEN = "twilio-auth-token"


class SendGridSigner:
    """A key pair as SendGrid holds it: `public` is what its settings page shows (base64 DER
    SubjectPublicKeyInfo); `sign` signs timestamp + body with ECDSA P-256 / SHA-256."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.public = base64.b64encode(der).decode()

    def headers(self, body: bytes, at: float | None = None) -> dict[str, str]:
        timestamp = str(int(time.time() if at is None else at))
        signature = self.private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
                "Content-Type": "application/json"}


def body_of(events: list[dict[str, Any]]) -> bytes:
    return json.dumps(events).encode()


def twilio_headers(path: str, form: dict[str, str], token: str = TWILIO_TOKEN) -> dict[str, str]:
    """X-Twilio-Signature as Twilio computes it for a POST to PUBLIC_URL + path."""
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(
        PUBLIC_URL + path, form)}


@contextmanager
def webhook_app(db: Db, **settings: Any) -> Iterator[Flask]:
    from web import create_app

    app = create_app({"NUDGEFLOW_SETTINGS": Settings(
        database_url=db.url, secret_key="k", public_url=PUBLIC_URL, **settings),
        "TESTING": True})
    try:
        yield app
    finally:
        app.extensions["nudgeflow_engine"].dispose()


def snapshot(db: Db) -> dict[str, Any]:
    """Everything a webhook may change: events, messages' delivery state, customers' flags,
    activities."""
    with db.engine.connect() as conn:
        return {
            "events": conn.execute(select(func.count()).select_from(MessageEvent)
                                   .where(MessageEvent.provider != "sendgrid:call")).scalar(),
            "messages": conn.execute(select(Message.id, Message.delivery_status,
                                            Message.delivered_at, Message.opened_at,
                                            Message.clicked_at).order_by(Message.id)).all(),
            "customers": conn.execute(select(Customer.id, Customer.email_valid,
                                             Customer.email_opt_out, Customer.sms_opt_out)
                                      .order_by(Customer.id)).all(),
            "activities": conn.execute(select(func.count()).select_from(Activity)).scalar(),
        }
