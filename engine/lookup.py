"""Read queries shared by the API and the pages: customer search, a customer's messages,
the runs log and the campaigns overview."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, or_, select

from engine.contacts import normalise_phone
from engine.delivery import delivery_counts
from engine.models import Campaign, Customer, Invoice, Message, Run
from engine.sql import AnySelect

BRIEF = (Customer.external_id, Customer.first_name, Customer.last_name, Customer.email,
         Customer.phone)
MESSAGE_COLUMNS = (Message.id, Campaign.key.label("campaign"),
                   Customer.external_id.label("customer"), Message.node_id,
                   Message.occurrence, Message.channel, Message.address, Message.status,
                   Message.skip_reason, Message.subject, Message.body, Message.sms_parts,
                   Message.sms_encoding, Message.send_after,
                   Message.sent_at, Message.attempts, Message.last_error,
                   Message.delivery_status, Message.delivered_at, Message.opened_at,
                   Message.clicked_at)
# The order a node's run figures are shown in (pages, editor and CLI); others follow by name.
FIGURE_ORDER = ("passed", "yes", "no", "parked", "released", "exited", "awarded", "queued",
                "created", "skipped")
RUN_COLUMNS = (Run.id, Campaign.key.label("campaign"), Run.run_date, Run.version, Run.status,
               Run.counts, Run.attempts, Run.timings, Run.error, Run.started_at,
               Run.finished_at)


def search_customers(conn: Connection, q: str | None, page: int, per_page: int,
                     region: str, contacts: bool = True) -> dict[str, Any]:
    """One page of customers whose id, name (first and last, in either order), email or phone
    contains `q` (any case), or whose phone is `q` written as `region` would (082 123 4567).
    Without `contacts` (a user who may not see them) email and phone are not searched."""
    where = []
    if q:
        q = " ".join(q.split())
        needle = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        first, last = func.coalesce(Customer.first_name, ""), func.coalesce(Customer.last_name, "")
        texts = (*(BRIEF if contacts else BRIEF[:3]), first + " " + last, last + " " + first)
        found: list[ColumnElement[bool]] = [func.lower(c).like(needle, escape="\\")
                                            for c in texts]
        phone = normalise_phone(q, region)
        if phone.valid and contacts:
            found.append(Customer.phone == phone.value)
        where.append(or_(*found))
    total = conn.execute(select(func.count()).select_from(Customer).where(*where)).scalar_one()
    rows = conn.execute(select(*BRIEF).where(*where).order_by(Customer.id)
                        .limit(per_page).offset((page - 1) * per_page)).all()
    return {"page": page, "per_page": per_page, "total": total,
            "items": [dict(r._mapping) for r in rows]}


def customer_invoices(conn: Connection, cid: int, today: date) -> list[dict[str, Any]]:
    """A customer's invoices, latest due first, with their imported attributes and the days
    past due of each unpaid one (paid after today counts as unpaid, as in segments)."""
    rows = conn.execute(select(Invoice.external_id, Invoice.amount, Invoice.currency,
                               Invoice.due_date, Invoice.paid_at, Invoice.attributes)
                        .where(Invoice.customer_id == cid)
                        .order_by(Invoice.due_date.desc(), Invoice.id.desc()))
    return [{**r._mapping, "days_past_due": (today - r.due_date).days
             if (r.paid_at is None or r.paid_at > today) and r.due_date < today else None}
            for r in rows]


def messages_query() -> AnySelect:
    return (select(*MESSAGE_COLUMNS).join(Campaign, Campaign.id == Message.campaign_id)
            .join(Customer, Customer.id == Message.customer_id))


def customer_messages(conn: Connection, cid: int, limit: int | None = None,
                      offset: int = 0) -> list[dict[str, Any]]:
    """One customer's messages, oldest first (`limit` of them from `offset` on)."""
    rows = conn.execute(messages_query().where(Message.customer_id == cid).order_by(Message.id)
                        .limit(limit).offset(offset))
    return [dict(r._mapping) for r in rows]


def runs_query() -> AnySelect:
    return select(*RUN_COLUMNS).join(Campaign, Campaign.id == Run.campaign_id)


def list_runs(conn: Connection, campaign: str | None, limit: int,
              offset: int = 0) -> list[dict[str, Any]]:
    """The runs log, latest run date first (`limit` runs from `offset` on)."""
    stmt = runs_query().order_by(Run.run_date.desc(), Run.id.desc()).limit(limit).offset(offset)
    if campaign:
        stmt = stmt.where(Campaign.key == campaign)
    return with_delivery(conn, "run", [dict(r._mapping) for r in conn.execute(stmt)])


def with_delivery(conn: Connection, by: str, rows: list[dict[str, Any]],
                  id_key: str = "id") -> list[dict[str, Any]]:
    """The rows (runs or campaigns) with `delivery`: what became of the messages they sent."""
    counts = delivery_counts(conn, by, {r[id_key] for r in rows})
    for r in rows:
        r["delivery"] = counts[r[id_key]]
    return rows


def ordered_figures(counts: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """One node's figures in FIGURE_ORDER (JSONB on PostgreSQL does not keep their order)."""
    return sorted((counts or {}).items(), key=lambda kv: (
        FIGURE_ORDER.index(kv[0]) if kv[0] in FIGURE_ORDER else len(FIGURE_ORDER), kv[0]))


def graph_order(conn: Connection, keys: set[str]) -> dict[str, list[str]]:
    """The node ids of campaigns, in their graphs' order (to show a run's counts node by node)."""
    if not keys:
        return {}
    return {key: [n["id"] for n in (graph or {}).get("nodes", [])] for key, graph in
            conn.execute(select(Campaign.key, Campaign.graph).where(Campaign.key.in_(keys)))}


def campaigns_overview(conn: Connection) -> list[dict[str, Any]]:
    """Every campaign with its latest run (date, status, per-node counts) and what became of
    all the messages it sent (`delivery`)."""
    latest = (select(Run.campaign_id, func.max(Run.id).label("run_id"))
              .group_by(Run.campaign_id).subquery())
    stmt = (select(Campaign.id, Campaign.key, Campaign.name, Campaign.status, Campaign.purpose,
                   Campaign.version, Run.id.label("run_id"), Run.run_date,
                   Run.status.label("run_status"), Run.counts)
            .outerjoin(latest, latest.c.campaign_id == Campaign.id)
            .outerjoin(Run, Run.id == latest.c.run_id)
            .where(Campaign.kind == "campaign")
            .order_by(Campaign.key))
    return with_delivery(conn, "campaign", [dict(r._mapping) for r in conn.execute(stmt)])
