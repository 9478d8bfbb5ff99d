"""Reports benchmark: the messages report (a year of messages by local day, campaign, channel
and status, in a zone with daylight saving) and the points report (a description search with
totals, first and a deep page) over N messages and N ledger rows, on SQLite and, with
NUDGEFLOW_TEST_POSTGRES_URL, PostgreSQL.

    python -m tests.bench_reports --rows 500000
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select

from engine.db import make_engine, write_transaction
from engine.models import Base, BonusLedger, Campaign, Customer, Message
from engine.reports import messages, points
from tests.conftest import postgres_db

STATUSES = ("sent", "sent", "sent", "skipped", "failed", "queued")
TEXTS = ("Birthday bonus", "Welcome points", "Loyalty week", "Referral reward")


def fill(engine: Engine, rows: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    start = datetime(2025, 1, 1)
    Base.metadata.create_all(engine)
    with write_transaction(engine) as conn:
        conn.execute(insert(Customer), [{"external_id": f"B{n}"} for n in range(1000)])
        customers = list(conn.execute(select(Customer.id)).scalars())
        campaigns = [conn.execute(insert(Campaign).values(key=f"c{n}", name=f"C{n}", graph={}))
                     .inserted_primary_key[0] for n in range(10)]
    for chunk in _chunks(rows, 20_000):
        batch, ledger = [], []
        for n in chunk:
            created = start + timedelta(seconds=rnd.randrange(365 * 86400))
            status = rnd.choice(STATUSES)
            channel = rnd.choice(("sms", "email"))
            batch.append({"campaign_id": rnd.choice(campaigns), "node_id": "m",
                          "customer_id": rnd.choice(customers), "occurrence": str(n),
                          "channel": channel, "status": status, "created_at": created,
                          "send_after": created,
                          "sent_at": created + timedelta(minutes=5) if status == "sent" else None,
                          "sms_parts": rnd.randint(1, 3) if status == "sent" and channel == "sms"
                          else None})
            ledger.append({"customer_id": rnd.choice(customers), "kind": "accrual",
                           "amount": rnd.randint(1, 500), "booked_on": created.date(),
                           "description": f"{rnd.choice(TEXTS)} {n % 97}",
                           "legal_entity": rnd.choice(("Main", "Shop Ltd")),
                           "campaign_id": rnd.choice(campaigns), "node_id": "a",
                           "occurrence": str(n)})
        with write_transaction(engine) as conn:
            conn.execute(insert(Message), batch)
            conn.execute(insert(BonusLedger), ledger)


def _chunks(total: int, size: int) -> Iterator[range]:
    for low in range(0, total, size):
        yield range(low, min(low + size, total))


def timed(label: str, fn: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = fn()
    print(f"  {label}: {time.perf_counter() - started:.2f} s")
    return result


def run(engine: Engine, rows: int) -> None:
    started = time.perf_counter()
    fill(engine, rows)
    print(f"  filled {rows:,} messages and {rows:,} ledger rows in "
          f"{time.perf_counter() - started:.1f} s")
    zone = "Europe/Vilnius"
    with engine.connect() as conn:
        year = messages.MessageFilter(timezone=zone)
        done = timed("messages report, the whole year by day, campaign, channel, status",
                     lambda: messages.report(conn, year, limit=100))
        print(f"    {done['total_rows']:,} groups, {done['totals']['messages']:,} messages, "
              f"{done['totals']['credits']:,} credits")
        month = messages.MessageFilter(timezone=zone, since=date(2025, 3, 1),
                                       until=date(2025, 3, 31))
        timed("messages report, March by day and status (the page's chart)",
              lambda: messages.report(conn, month, ("day", "status"), 100_000))
        found = points.PointsFilter(description="birthday bonus 4")
        first = timed("points report, description search, first page of 100 with totals",
                      lambda: points.page(conn, found, 100))
        print(f"    {first['totals']['rows']:,} rows found")
        deep = first
        for _ in range(20):
            if deep["next"] is None:
                break
            cursor = points.parse_cursor(deep["next"])
            deep = points.page(conn, found, 100, cursor)
        if deep["next"]:
            cursor = points.parse_cursor(deep["next"])
            timed("points report, the page after 21 pages", lambda: points.page(
                conn, found, 100, cursor))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        print("SQLite")
        run(engine, args.rows)
        engine.dispose()
    if os.environ.get("NUDGEFLOW_TEST_POSTGRES_URL"):
        print("PostgreSQL")
        for db in postgres_db():
            run(db.engine, args.rows)


if __name__ == "__main__":
    main()
