"""Insert a hand-made or generated set of customers (with invoices, ledger rows and messages)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select

from engine.models import Activity, BonusLedger, Campaign, Customer, Invoice, Message, birth_mmdd

CUSTOMER_KEYS = ("first_name", "last_name", "email", "email_valid", "phone", "phone_valid",
                 "gender", "birth_date", "registered_at", "branch", "region", "status",
                 "email_opt_out", "sms_opt_out", "marketing_consent", "attributes")


def clear(conn: Connection) -> None:
    for model in (Activity, Message, BonusLedger, Invoice, Customer, Campaign):
        conn.execute(delete(model))


def customer(ext: str, **kw: Any) -> dict[str, Any]:
    """A customer dict with every key the reference evaluator reads."""
    base: dict[str, Any] = {
        "external_id": ext, "first_name": None, "last_name": None, "email": None,
        "email_valid": False, "phone": None, "phone_valid": False, "gender": None,
        "birth_date": None, "registered_at": None, "branch": None, "region": None,
        "status": None, "email_opt_out": False, "sms_opt_out": False,
        "marketing_consent": False, "attributes": {}, "invoices": [], "ledger": [],
        "messages": [],
    }
    base.update(kw)
    return base


def insert_world(conn: Connection, customers: list[dict[str, Any]]) -> dict[str, int]:
    """Insert customers and their rows; return external_id -> id."""
    ids: dict[str, int] = {}
    campaign_id = None
    for c in customers:
        values = {k: c[k] for k in CUSTOMER_KEYS}
        cid = conn.execute(insert(Customer).values(
            external_id=c["external_id"], birth_mmdd=birth_mmdd(c["birth_date"]), **values,
        )).inserted_primary_key[0]
        ids[c["external_id"]] = cid
        for n, inv in enumerate(c["invoices"]):
            conn.execute(insert(Invoice).values(
                external_id=f"{c['external_id']}-{n}", customer_id=cid, amount=inv["amount"],
                currency="ZAR", due_date=inv["due_date"], paid_at=inv["paid_at"]))
        for e in c["ledger"]:
            conn.execute(insert(BonusLedger).values(customer_id=cid, **e))
        for n, m in enumerate(c["messages"]):
            if campaign_id is None:
                campaign_id = conn.execute(insert(Campaign).values(
                    key="world", name="world", graph={})).inserted_primary_key[0]
            conn.execute(insert(Message).values(
                campaign_id=campaign_id, node_id="m", customer_id=cid, occurrence=str(n),
                channel="sms", status=m["status"], created_at=m["created_at"],
                send_after=datetime(2000, 1, 1)))
    return ids


def seed(engine: Engine, people: list[dict[str, Any]], doc: dict[str, Any], folder: Path) -> None:
    """The customers, and the campaign document imported from a file as a user would."""
    from engine.campaigns import import_file
    from engine.db import write_transaction

    with write_transaction(engine) as conn:
        insert_world(conn, people)
    path = folder / "campaigns.json"
    path.write_text(json.dumps(doc))
    import_file(engine, path)


def day(text: str) -> date:
    return date.fromisoformat(text)


def effects(engine: Engine) -> dict[str, Any]:
    """Every effect as comparable tuples (no ids or timestamps) and the activity row count."""
    with engine.connect() as conn:
        ext = dict(conn.execute(select(Customer.id, Customer.external_id)).all())
        ledger = [(ext[r.customer_id], r.kind, r.amount, r.booked_on.isoformat(),
                   r.expires_at.isoformat() if r.expires_at else None)
                  for r in conn.execute(select(BonusLedger.__table__))]
        messages = [(ext[r.customer_id], r.node_id, r.occurrence, r.status, r.skip_reason)
                    for r in conn.execute(select(Message.__table__))]
        activities = [(ext[r.customer_id], r.kind, r.node_id, r.occurrence)
                      for r in conn.execute(select(Activity.__table__))]
    return {"ledger": set(ledger), "messages": set(messages), "activities": set(activities),
            "rows": (len(ledger), len(messages), len(activities))}
