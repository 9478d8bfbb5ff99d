"""Realistic demo data: names, contacts, birthdays over the whole year (29 February included),
registrations over six years, invoices paid, overdue and due soon, opt-outs and consents."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from faker import Faker
from sqlalchemy import Engine, func, select

from engine.contacts import normalise_email, normalise_phone
from engine.db import write_transaction
from engine.importing import upsert
from engine.models import Customer, Invoice, birth_mmdd

BRANCHES = ("Cape Town", "Durban", "Johannesburg", "Pretoria", "Gqeberha")
REGIONS = {"Cape Town": "Western Cape", "Durban": "KwaZulu-Natal", "Johannesburg": "Gauteng",
           "Pretoria": "Gauteng", "Gqeberha": "Eastern Cape"}
MOBILE_PREFIXES = ("060", "061", "071", "072", "073", "074", "076", "078", "079", "082", "083",
                   "084")
EMPLOYERS = ("Acme Mining", "Coastal Foods", "Metro Council", "Sunrise Retail", "Self-employed")


def _birth_date(rng: random.Random, today: date, index: int) -> date:
    if index % 97 == 0:  # leap-day birthdays, so the 28 February rule shows in the demo
        return date(rng.choice((1980, 1984, 1988, 1992, 1996, 2000)), 2, 29)
    if index % 50 == 1:  # a few birthdays today, so the birthday campaign has work on day one
        return today.replace(year=today.year - rng.randint(20, 60), day=min(today.day, 28))
    return date(today.year - rng.randint(18, 75), 1, 1) + timedelta(days=rng.randint(0, 364))


def seed_demo(engine: Engine, count: int, region: str, seed: int = 42,
              today: date | None = None) -> dict[str, int]:
    """Add `count` demo customers (external ids D000001...) and their invoices."""
    today = today or date.today()
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    customers: list[dict[str, Any]] = []
    for i in range(1, count + 1):
        first, last = fake.first_name(), fake.last_name()
        raw_email = f"{first}.{last}{i}@example.com".lower().replace(" ", "")
        if rng.random() < 0.03:
            raw_email = raw_email.replace("@", " at ")  # as bad as real CRM data gets
        raw_phone = (rng.choice(MOBILE_PREFIXES) + fake.numerify("#######")
                     if rng.random() > 0.04 else "12345")
        email, phone = normalise_email(raw_email), normalise_phone(raw_phone, region)
        born = _birth_date(rng, today, i)
        branch = rng.choice(BRANCHES)
        customers.append({
            "external_id": f"D{i:06d}", "first_name": first, "last_name": last,
            "email": email.value, "email_valid": email.valid,
            "phone": phone.value, "phone_valid": phone.valid,
            "gender": rng.choice(("female", "male")), "birth_date": born,
            "birth_mmdd": birth_mmdd(born),
            "registered_at": today - timedelta(days=rng.randint(0, 6 * 365)),
            "branch": branch, "region": REGIONS[branch],
            "status": rng.choices(("active", "dormant", "closed"), (85, 12, 3))[0],
            "email_opt_out": rng.random() < 0.08, "sms_opt_out": rng.random() < 0.05,
            "marketing_consent": rng.random() < 0.7,
            "attributes": {"employer": rng.choice(EMPLOYERS),
                           "payment_frequency": rng.choice(("monthly", "weekly")),
                           "salesperson": fake.first_name()},
        })
    with write_transaction(engine) as conn:
        upsert(conn, Customer.__table__, customers)  # type: ignore[arg-type]
        ids = dict(conn.execute(select(Customer.external_id, Customer.id).where(
            Customer.external_id.in_([c["external_id"] for c in customers]))).all())
        invoices = []
        for c in customers:
            for n in range(rng.choice((0, 1, 1, 2, 3))):
                due = today + timedelta(days=rng.randint(-120, 30))
                paid = due - timedelta(days=rng.randint(0, 10)) if rng.random() < 0.5 else None
                if paid is not None and paid > today:
                    paid = None
                invoices.append({
                    "external_id": f"{c['external_id']}-INV{n + 1}", "customer_id": ids[c["external_id"]],
                    "amount": Decimal(rng.randint(200, 5000)), "currency": "ZAR",
                    "due_date": due, "paid_at": paid,
                })
        if invoices:
            upsert(conn, Invoice.__table__, invoices)  # type: ignore[arg-type]
        total = conn.execute(select(func.count()).select_from(Invoice)).scalar_one()
    return {"customers": len(customers), "invoices": len(invoices), "invoices_total": total}
