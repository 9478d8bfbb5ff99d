"""A seeded set of messages, runs and bonus ledger rows with known figures, for the reports."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, insert

from engine.models import BonusLedger, Campaign, CampaignVersion, Message, Run
from tests.world import customer, insert_world

GRAPH = {"nodes": [{"id": "t", "type": "trigger", "config": {"kind": "manual"}},
                   {"id": "a", "type": "award-bonus", "config": {"amount": 100}},
                   {"id": "m", "type": "send-message", "config": {}}],
         "edges": [["t", "a"], ["a", "m"]]}
# (campaign, run, channel, status, skip reason, parts, created, sent), all UTC.
MESSAGES = [
    ("bday", 1, "sms", "sent", None, 2, datetime(2026, 3, 10, 6), datetime(2026, 3, 10, 6, 5)),
    ("bday", 1, "sms", "sent", None, 1, datetime(2026, 3, 10, 6), datetime(2026, 3, 10, 23, 30)),
    ("bday", 1, "sms", "skipped", "opted_out", None, datetime(2026, 3, 10, 6), None),
    ("bday", 1, "sms", "skipped", "invalid_address", None, datetime(2026, 3, 10, 6), None),
    ("bday", 2, "sms", "failed", None, None, datetime(2026, 3, 11, 6), None),
    ("bday", 2, "sms", "sent", None, 3, datetime(2026, 3, 11, 6), datetime(2026, 3, 11, 7)),
    ("blast", None, "email", "sent", None, None, datetime(2026, 3, 11, 8),
     datetime(2026, 3, 11, 8, 1)),
    ("blast", None, "email", "queued", None, None, datetime(2026, 3, 12, 9), None),
    ("blast", None, "email", "sent", None, None, datetime(2026, 3, 9, 23),
     datetime(2026, 3, 12, 10)),
]
# name -> (customer, kind, amount, description, legal entity, campaign, run, booked, expires)
LEDGER: dict[str, tuple[Any, ...]] = {
    "L1": ("P1", "accrual", 100, "Birthday bonus", "Main", "bday", 1, date(2026, 3, 10),
           date(2026, 4, 9)),
    "L2": ("P2", "accrual", 100, "Birthday bonus", "Main", "bday", 1, date(2026, 3, 10),
           date(2026, 4, 9)),
    "L3": ("P3", "accrual", 40, "Birthday bonus 2025", "Shop Ltd", None, None, date(2025, 3, 10),
           None),
    "L4": ("P3", "accrual", 50, "Welcome points", "Shop Ltd", None, None, date(2026, 3, 5), None),
    "L5": ("P1", "expiry", -100, "Birthday bonus", "Main", "bday", None, date(2026, 4, 9), None),
    "L6": ("P2", "redemption", -30, "Redeemed at till", "Main", None, None, date(2026, 3, 20),
           None),
    "L7": ("P3", "adjustment", 5, "=SUM(1,1) goodwill", "Shop Ltd", None, None,
           date(2026, 3, 21), None),
    "L8": ("P2", "accrual", 20, "50% off week", "Main", "blast", None, date(2026, 3, 12), None),
}


def seed(conn: Connection) -> dict[str, int]:
    """Customers P1-P3 (with names and contacts, which the points report must not show), two
    campaigns, bday's two runs, the messages and the ledger; returns the ledger ids by name."""
    people = insert_world(conn, [
        customer(f"P{n}", first_name=f"Pat{n}", last_name="Secret", email=f"pat{n}@example.com",
                 phone=f"+2782123450{n}") for n in (1, 2, 3)])
    campaigns = {key: conn.execute(insert(Campaign).values(
        key=key, name=key.title(), graph=GRAPH, status="active")).inserted_primary_key[0]
        for key in ("bday", "blast")}
    conn.execute(insert(CampaignVersion).values(campaign_id=campaigns["bday"], version=1,
                                                graph=GRAPH))
    runs = {n: conn.execute(insert(Run).values(
        campaign_id=campaigns["bday"], run_date=date(2026, 3, 9 + n), version=1,
        status="completed", counts={"t": {"passed": reached}, "a": {"passed": reached}}
    )).inserted_primary_key[0] for n, reached in ((1, 5), (2, 2))}
    for n, (key, run, channel, status, reason, parts, created, sent) in enumerate(MESSAGES):
        conn.execute(insert(Message).values(
            campaign_id=campaigns[key], node_id="m", customer_id=people[f"P{n % 3 + 1}"],
            occurrence=str(n), run_id=runs.get(run), channel=channel, status=status,
            skip_reason=reason, sms_parts=parts, created_at=created, send_after=created,
            sent_at=sent))
    ids: dict[str, int] = {}
    for name, (who, kind, amount, text, entity, key, run, booked, expires) in LEDGER.items():
        ids[name] = conn.execute(insert(BonusLedger).values(
            customer_id=people[who], kind=kind, amount=amount, description=text,
            legal_entity=entity, campaign_id=campaigns.get(key), run_id=runs.get(run),
            booked_on=booked, expires_at=expires, node_id="a" if key else None,
            occurrence=name, reverses_id=ids["L1"] if name == "L5" else None,
        )).inserted_primary_key[0]
    return ids
