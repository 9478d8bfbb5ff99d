"""Bytes per activity, message and ledger row on SQLite and PostgreSQL: a daily run that awards
points to every customer and emails them, sent through an in-memory provider, then each
table's size with its indexes (and TOAST) divided by its rows.

    python -m tests.bench_rows --customers 50000

PostgreSQL when NUDGEFLOW_TEST_POSTGRES_URL is set (a private schema, dropped afterwards)."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import Engine, func, select, text

from engine.campaigns import import_file
from engine.config import Settings
from engine.db import make_engine, write_transaction
from engine.executor import run
from engine.models import Activity, Base
from engine.outbox import dispatch
from tests.conftest import postgres_db
from tests.fakes import RecordingChannel
from tests.test_prune import DOC
from tests.world import customer, insert_world

TABLES = ("activities", "messages", "bonus_ledger")
DAY = date(2026, 3, 2)


def _fill(engine: Engine, customers: int, folder: Path) -> None:
    Base.metadata.create_all(engine)
    with write_transaction(engine) as conn:
        for start in range(0, customers, 10_000):
            insert_world(conn, [customer(f"C{i:08d}", first_name=f"Name{i}",
                                         email=f"person{i}@example.com", email_valid=True)
                                for i in range(start, min(customers, start + 10_000))])
    path = folder / "campaigns.json"
    path.write_text(json.dumps(DOC))
    import_file(engine, path)
    assert run(engine, "daily", DAY, manual=True, now=datetime(2026, 3, 2, 6)).status == "completed"
    channel = RecordingChannel()
    dispatch(engine, Settings(secret_key="k"), {"email": channel, "sms": channel},
             now=datetime(2026, 3, 2, 7))


def _sizes(engine: Engine) -> dict[str, tuple[int, int]]:
    """Table -> (bytes with its indexes, rows)."""
    out = {}
    with engine.connect() as conn:
        for table in TABLES:
            rows = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            if engine.dialect.name == "postgresql":
                size = conn.execute(text(f"SELECT pg_total_relation_size('{table}')")).scalar_one()
            else:
                size = conn.execute(text(
                    "SELECT sum(pgsize) FROM dbstat WHERE name = :t OR name IN "
                    "(SELECT name FROM sqlite_master WHERE tbl_name = :t AND type = 'index')"),
                    {"t": table}).scalar_one()
            out[table] = (int(size), int(rows))
    return out


def measure(engine: Engine, customers: int) -> dict[str, tuple[int, int]]:
    with tempfile.TemporaryDirectory() as folder:
        _fill(engine, customers, Path(folder))
    with engine.connect() as conn:
        kinds = dict(conn.execute(select(Activity.kind, func.count()).group_by(Activity.kind)
                                  ).all())
    print(f"{engine.dialect.name}: activities by kind {kinds}")
    sizes = _sizes(engine)
    if engine.dialect.name == "postgresql":
        # The dead versions the dispatcher's updates left (queued, sending, sent) count above;
        # VACUUM FULL shows the live rows alone.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in TABLES:
                conn.execute(text(f"VACUUM FULL {table}"))
        compact = _sizes(engine)
        with engine.connect() as conn:
            indexes = {t: conn.execute(text(f"SELECT pg_indexes_size('{t}')")).scalar_one()
                       for t in TABLES}
        print("postgresql after VACUUM FULL: " + ", ".join(
            f"{t} {size / rows:.0f} bytes/row ({(size - indexes[t]) / rows:.0f} row, "
            f"{indexes[t] / rows:.0f} indexes)" for t, (size, rows) in compact.items()))
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/rows.db")
        results = {"sqlite": measure(engine, args.customers)}
        engine.dispose()
    if os.environ.get("NUDGEFLOW_TEST_POSTGRES_URL"):
        databases = postgres_db()
        db = next(databases)
        try:
            results["postgresql"] = measure(db.engine, args.customers)
        finally:
            databases.close()
    for name, sizes in results.items():
        print(f"{name}, {args.customers:,} customers: " + ", ".join(
            f"{t} {rows:,} rows, {size / rows:.0f} bytes/row" for t, (size, rows) in sizes.items()))


if __name__ == "__main__":
    main()
