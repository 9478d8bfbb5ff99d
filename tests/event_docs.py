"""Event campaigns and customers for the event tests."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from engine.activity import customer_id, timeline
from engine.campaigns import import_file
from engine.db import write_transaction
from engine.importing import from_list
from engine.journeys.events import ingest
from engine.models import Campaign, Customer, Message
from tests.conftest import Db
from tests.world import customer, insert_world


def welcome(where: dict[str, Any] | None = None, timezone: str = "UTC",
            key: str = "welcome", name: str = "registered") -> dict[str, Any]:
    """An event trigger -> an inline welcome email."""
    trigger: dict[str, Any] = {"kind": "event", "name": name}
    if where is not None:
        trigger["where"] = where
    return {
        "key": key, "name": key.title(), "status": "active", "purpose": "service",
        "timezone": timezone,
        "graph": {"nodes": [
            {"id": "t", "type": "trigger", "config": trigger},
            {"id": "m", "type": "send-message", "config": {
                "channel": "email", "subject": "Welcome", "body": "Welcome aboard"}},
        ], "edges": [["t", "m"]]},
    }


def load(db: Db, tmp_path: Path, *campaigns: dict[str, Any]) -> None:
    """Import the campaigns (with a segment `everyone`), active since before the tests' dates."""
    path = tmp_path / "campaigns.json"
    path.write_text(json.dumps({"version": 1, "segments": [{"key": "everyone",
                                                            "rules": {"all": []}}],
                                "templates": [], "campaigns": list(campaigns)}))
    import_file(db.engine, path)
    with write_transaction(db.engine) as conn:
        conn.execute(update(Campaign).values(active_since=date(2000, 1, 1)))


def people(db: Db, *names: str, **extra: Any) -> None:
    with write_transaction(db.engine) as conn:
        insert_world(conn, [customer(n, first_name=n.title(), email=f"{n}@example.com",
                                     email_valid=True, **extra) for n in names])


def post(db: Db, *events: dict[str, Any], now: datetime | None = None) -> dict[str, int]:
    return ingest(db.engine, from_list(list(events)), now=now).as_dict()


def sent(db: Db) -> list[tuple[str, str, str]]:
    """(customer, subject, occurrence) of every message queued, sorted (the subject as
    written: it is rendered when sent)."""
    with db.engine.connect() as conn:
        stmt = select(Customer.external_id, Message.inline_template, Message.occurrence).join(
            Customer, Customer.id == Message.customer_id)
        return sorted((r.external_id, r.inline_template["subject"], r.occurrence)
                      for r in conn.execute(stmt))


def activity(db: Db, external_id: str, kind: str) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        return timeline(conn, customer_id(conn, external_id), [kind])


def occurrence(db: Db, event_id: str) -> str:
    """The occurrence an event fires as: "event:" + its internal id."""
    from engine.models import Event

    with db.engine.connect() as conn:
        return f"event:{conn.execute(select(Event.id).where(Event.external_id == event_id)).scalar_one()}"
