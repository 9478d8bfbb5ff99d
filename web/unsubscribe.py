"""GET and POST /u/TOKEN: public, signed, single-purpose unsubscribe (RFC 8058 one-click POST)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from engine.db import write_transaction
from engine.unsubscribe import BadToken, customer_exists, opt_out, read_token

bp = Blueprint("unsubscribe", __name__)
CHANNEL_NAMES = {"email": "email", "sms": "text messages"}


@bp.route("/u/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> tuple[str, int]:
    try:
        customer_id, channel, campaign_id = read_token(current_app.config["SECRET_KEY"], token)
    except BadToken:
        return render_template("unsubscribe.html", ok=False), 400
    engine = current_app.extensions["nudgeflow_engine"]
    with write_transaction(engine) as conn:
        if not customer_exists(conn, customer_id) or channel not in CHANNEL_NAMES:
            return render_template("unsubscribe.html", ok=False), 404
        opt_out(conn, customer_id, channel, campaign_id)
    return render_template("unsubscribe.html", ok=True, channel=CHANNEL_NAMES[channel]), 200
