"""POST /webhooks/sendgrid, /webhooks/twilio/status and /webhooks/twilio/inbound: what the
providers report after they accepted a message, and replies to our number.

No login: each call is authenticated by the provider's signature instead (web.auth lists these
endpoints as public), and a call that is unsigned, wrongly signed, stale or replayed is answered
before anything is read or written. A webhook whose key is not configured answers 503."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import Connection, delete, select

from engine.config import Settings
from engine.contacts import normalise_phone
from engine.db import write_transaction
from engine.errors import Problem
from engine.feedback import sendgrid, twilio
from engine.feedback.events import Event
from engine.feedback.optouts import set_opt_out
from engine.feedback.record import record
from engine.limits import strict_loads, value_problems
from engine.models import Customer, MessageEvent
from engine.models.base import utcnow
from engine.sql import skipping_duplicates
from web.errors import error_response

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
ENDPOINTS = frozenset({"webhooks.sendgrid_events", "webhooks.twilio_status",
                       "webhooks.twilio_inbound"})
CALLS = "sendgrid:call"  # message_events rows naming the signed calls seen (replays refused)


def _settings() -> Settings:
    return current_app.config["NUDGEFLOW_SETTINGS"]  # type: ignore[no-any-return]


def _engine() -> Any:
    return current_app.extensions["nudgeflow_engine"]


def _not_configured(name: str) -> tuple[Any, int]:
    return error_response(503, "not_configured",
                          f"this webhook is off: set {name} to accept signed calls")


@bp.post("/sendgrid")
def sendgrid_events() -> Any:
    key = _settings().sendgrid_webhook_key
    if not key:
        return _not_configured("NUDGEFLOW_SENDGRID_WEBHOOK_KEY")
    body = request.get_data(cache=True)
    signature = request.headers.get(sendgrid.SIGNATURE)
    now = utcnow()
    try:
        signed_at = sendgrid.verify(key, body, signature,
                                    request.headers.get(sendgrid.TIMESTAMP), now)
    except sendgrid.BadSignature as exc:
        return error_response(exc.status, "unauthorized" if exc.status == 401 else "forbidden",
                              str(exc))
    assert signature is not None
    try:
        document = strict_loads(body)
    except ValueError as exc:
        return _invalid([Problem("$", f"the body is not valid JSON: {exc}")])
    if problems := value_problems(document):
        return _invalid(problems)
    events = sendgrid.parse(document, now)  # NudgeflowError: 400 naming the entry
    with write_transaction(_engine()) as conn:
        if _replayed(conn, sendgrid.call_id(signature), signed_at, now):
            return error_response(409, "replayed", "this signed call was already received")
        result = record(conn, "email", events, now)
    return jsonify(result.as_dict())


def _invalid(problems: list[Problem]) -> tuple[Any, int]:
    """What web.inputs answers for values we cannot store, once the call is known signed."""
    return error_response(400, "invalid_input", "the request is not valid",
                          [{"path": p.where, "message": p.message} for p in problems])


def _replayed(conn: Connection, call: str, signed_at: Any, now: Any) -> bool:
    """Note the call as seen; True if it was seen before. Calls older than the accepted age
    are forgotten: they are refused as stale anyway."""
    conn.execute(delete(MessageEvent).where(
        MessageEvent.provider == CALLS, MessageEvent.at < now - 2 * sendgrid.MAX_AGE))
    stmt = skipping_duplicates(conn, MessageEvent.__table__).values(
        provider=CALLS, event_id=call, kind="call", at=signed_at, payload={},
        received_at=now)
    return not conn.execute(stmt.returning(MessageEvent.id)).first()


def _twilio_refusal() -> tuple[Any, int] | None:
    """None if Twilio signed this call for the URL it called (our public URL, path, query)."""
    token = _settings().twilio_auth_token
    if not token:
        return _not_configured("NUDGEFLOW_TWILIO_AUTH_TOKEN")
    signature = request.headers.get(twilio.SIGNATURE)
    if not signature:
        return error_response(401, "unauthorized", f"unsigned: send {twilio.SIGNATURE}")
    query = request.query_string.decode("latin-1")
    url = _settings().public_url + request.path + (f"?{query}" if query else "")
    if not twilio.signed(token, url, request.form.to_dict(), signature):
        return error_response(403, "forbidden", f"the signature does not match {url} "
                                                f"(NUDGEFLOW_PUBLIC_URL) and the form")
    from web.inputs import request_problems  # web.inputs imports this module

    if problems := request_problems():
        return _invalid(problems)
    return None


@bp.post("/twilio/status")
def twilio_status() -> Any:
    if (refused := _twilio_refusal()) is not None:
        return refused
    now = utcnow()
    event = twilio.status_event(request.form.to_dict(), request.args.get("message"), now)
    with write_transaction(_engine()) as conn:
        result = record(conn, "sms", [event], now)
    return jsonify(result.as_dict())


@bp.post("/twilio/inbound")
def twilio_inbound() -> Any:
    if (refused := _twilio_refusal()) is not None:
        return refused
    now = utcnow()
    form = request.form.to_dict()
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    word = twilio.keyword(form.get("Body"))
    event = Event(twilio.PROVIDER, f"{sid}:inbound", word or "reply", now, payload=form)
    with write_transaction(_engine()) as conn:
        # A reply is acted on once: Twilio's retry, or a replayed call, changes nothing.
        first = record(conn, "sms", [event], now).new
        if first and word and sid:
            _opt(conn, form.get("From"), word, now)
    return twilio.EMPTY_TWIML, 200, {"Content-Type": "text/xml; charset=utf-8"}


def _opt(conn: Connection, sender: str | None, word: str, now: Any) -> None:
    phone = normalise_phone(sender, _settings().default_region)
    if not phone.valid or not phone.value:
        return
    customers = list(conn.execute(select(Customer.id).where(Customer.phone == phone.value))
                     .scalars())
    said = "STOP" if word == "stop" else "START"
    why = f"replied {said} to a text message"
    set_opt_out(conn, customers, "sms", word == "stop", now, why,
                {cid: {"provider": "twilio", "from": phone.value} for cid in customers})
