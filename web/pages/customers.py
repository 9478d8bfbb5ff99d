"""Customer pages: search, and the profile (details, consents, bonus balance with expiries,
invoices, messages with their rendered text, why a campaign did or did not reach the customer,
and the activity timeline with filters)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, current_app, render_template, request
from sqlalchemy import select

from engine.access.masking import masked, masked_activity, masked_explain
from engine.activity import customer_id, timeline
from engine.campaigns import campaign_today
from engine.executor import load_campaign_row
from engine.journeys.explain import explain
from engine.ledger import balance
from engine.lookup import customer_invoices, customer_messages, search_customers
from engine.models import Campaign, Customer
from engine.models.effects import ACTIVITY_KINDS
from web.db import engine
from web.permissions import sees_contacts

bp = Blueprint("customer_pages", __name__)
PER_PAGE = 50
TIMELINE_PAGE = 200


def _int_arg(name: str, default: int) -> int:
    value = request.args.get(name, type=int)
    return value if value is not None and 0 < value < 10**6 else default


def _date_arg(name: str) -> date | None:
    """A YYYY-MM-DD filter; anything else (the date inputs send nothing else) is no filter."""
    try:
        return date.fromisoformat(request.args.get(name) or "")
    except ValueError:
        return None


@bp.get("/customers")
def index() -> Any:
    q = (request.args.get("q") or "").strip() or None
    contacts = sees_contacts()
    with engine().connect() as conn:
        found = search_customers(conn, q, _int_arg("page", 1), PER_PAGE,
                                 current_app.config["NUDGEFLOW_SETTINGS"].default_region,
                                 contacts)
    if not contacts:
        found["items"] = [masked(c) for c in found["items"]]
    pages = max(1, -(-found["total"] // PER_PAGE))
    return render_template("pages/customers.html", q=q or "", found=found, pages=pages)


@bp.get("/customers/<external_id>")
def profile(external_id: str) -> Any:
    filters: dict[str, Any] = {"kind": [k for k in request.args.getlist("kind") if k in ACTIVITY_KINDS],
               "campaign": request.args.get("campaign") or None,
               "since": _date_arg("since"), "until": _date_arg("until")}
    with engine().connect() as conn:
        cid = customer_id(conn, external_id)
        person = dict(conn.execute(select(Customer.__table__).where(Customer.id == cid))
                      .one()._mapping)
        offset = _int_arg("offset", 0)
        events = timeline(conn, cid, filters["kind"] or None, TIMELINE_PAGE + 1,
                          campaign=filters["campaign"], since=filters["since"],
                          until=filters["until"], offset=offset, newest_first=True)
        campaigns = conn.execute(select(Campaign.key).order_by(Campaign.key)).scalars().all()
        explained = _explained(external_id, list(campaigns))
        messages = customer_messages(conn, cid)
        if not sees_contacts():
            person, messages = masked(person), [masked(m) for m in messages]
            events = [masked_activity(e) for e in events]
        return render_template(
            "pages/customer.html", customer=person, events=events[:TIMELINE_PAGE],
            older=len(events) > TIMELINE_PAGE, offset=offset, page_size=TIMELINE_PAGE,
            filters=filters,
            balance=balance(conn, cid, campaign_today(
                current_app.config["NUDGEFLOW_SETTINGS"].timezone)), messages=messages,
            invoices=customer_invoices(conn, cid, date.today()),
            kinds=ACTIVITY_KINDS, campaigns=campaigns, explained=explained,
            explain_key=request.args.get("explain") or "",
            explain_on=request.args.get("on") or "")


def _explained(external_id: str, campaigns: list[str]) -> dict[str, Any] | None:
    """The "why" panel: the explanation of the campaign and date asked for, if any."""
    key = request.args.get("explain")
    if key not in campaigns:
        return None
    on = _date_arg("on")
    with engine().connect() as conn:
        tz = load_campaign_row(conn, key).timezone
    found = explain(engine(), external_id, key, on or campaign_today(tz))
    return found if sees_contacts() else masked_explain(found)
