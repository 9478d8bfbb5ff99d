"""The outbox page: messages by status and campaign, and the STOP button for a campaign."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from sqlalchemy import select

from engine.access.masking import masked
from engine.lookup import messages_query
from engine.models import Campaign, Message
from engine.models.effects import MESSAGE_STATUSES
from web.db import engine
from web.permissions import sees_contacts

bp = Blueprint("message_pages", __name__)
LIMIT = 200


@bp.get("/messages")
def index() -> Any:
    status = request.args.get("status") if request.args.get("status") in MESSAGE_STATUSES else None
    campaign = request.args.get("campaign") or None
    stmt = messages_query().order_by(Message.id.desc()).limit(LIMIT)
    if status:
        stmt = stmt.where(Message.status == status)
    if campaign:
        stmt = stmt.where(Campaign.key == campaign)
    with engine().connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(stmt)]
        if not sees_contacts():
            rows = [masked(r) for r in rows]
        campaigns = conn.execute(select(Campaign.key).order_by(Campaign.key)).scalars().all()
    return render_template("pages/messages.html", messages=rows, status=status,
                           campaign=campaign, statuses=MESSAGE_STATUSES, campaigns=campaigns,
                           limit=LIMIT)
