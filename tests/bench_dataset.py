"""Data set benchmark: N generated customers (2N invoices) written as CSV and XLSX, with the
Python heap's peak while writing (tracemalloc), to show memory stays flat however many rows go
out. Not part of the test suite (tests/test_datasets.py runs `measure` at 5k and 50k rows).

    python -m tests.bench_dataset [--customers 1000000] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, text

from engine import datasets
from engine.datasets.files import write_csv, write_xlsx
from engine.db import make_engine, write_transaction
from engine.models import Customer, Invoice
from engine.schema import upgrade
from tests.bench import INVOICES, PG_CUSTOMERS, RUN_DATE, SQLITE_CUSTOMERS

COLUMNS = ("external_id,first_name,email,days_past_due,next_due_date,next_amount_due,"
           "last_payment_date,owed_next_30,owed_31_60,overdue_invoices,paid_ratio,paid_up_on,"
           "attributes.tier")


def generate(engine: Engine, n: int) -> None:
    """Replace every customer and invoice with n generated customers and 2n invoices."""
    dialect = engine.dialect.name
    with write_transaction(engine) as conn:
        conn.execute(delete(Invoice))
        conn.execute(delete(Customer))
        params = {"n": n, "d": RUN_DATE.isoformat(), "now": "2026-11-01 00:00:00"}
        conn.execute(text(SQLITE_CUSTOMERS if dialect == "sqlite" else PG_CUSTOMERS), params)
        conn.execute(text(INVOICES[dialect]), params)


class _Sink:
    """A text file that only counts what it is given."""

    def __init__(self) -> None:
        self.chars = 0

    def write(self, s: str) -> int:
        self.chars += len(s)
        return len(s)


def measure(engine: Engine, fmt: str, columns: str = COLUMNS) -> dict[str, Any]:
    """Write every customer's data set as `fmt`; rows, seconds and the heap's peak in MB."""
    rows = 0

    def tick() -> None:
        nonlocal rows
        rows += 1

    with engine.connect() as conn, tempfile.TemporaryDirectory() as tmp:
        ds = datasets.for_rules(conn, {"all": []}, columns, RUN_DATE)
        tracemalloc.start()
        started = time.perf_counter()
        if fmt == "csv":
            write_csv(_Sink(), ds.columns, datasets.rows(conn, ds), tick)  # type: ignore[arg-type]
        else:
            write_xlsx(str(Path(tmp) / "d.xlsx"), ds.columns, datasets.rows(conn, ds), tick)
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {"rows": rows, "seconds": seconds, "peak_mb": peak / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--formats", default="csv,xlsx")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        with _database(backend) as engine:
            if engine is None:
                print(f"{backend}: skipped (NUDGEFLOW_TEST_POSTGRES_URL is not set)")
                continue
            upgrade(engine)
            started = time.perf_counter()
            generate(engine, args.customers)
            print(f"{backend}: generated {args.customers:,} customers in "
                  f"{time.perf_counter() - started:.1f} s")
            for fmt in args.formats.split(","):
                got = measure(engine, fmt)
                print(f"  {fmt}: {got['rows']:,} rows x {len(COLUMNS.split(','))} columns in "
                      f"{got['seconds']:.1f} s, Python heap peak {got['peak_mb']:.1f} MB")


@contextmanager
def _database(backend: str) -> Iterator[Engine | None]:
    """A throwaway database: a SQLite file, or a private schema on the PostgreSQL test server
    (dropped afterwards, as tests/conftest.py does)."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{tmp}/bench.db")
            yield engine
            engine.dispose()
        return
    base = os.environ.get("NUDGEFLOW_TEST_POSTGRES_URL", "")
    if not base:
        yield None
        return
    with pg_schema(base) as engine:
        yield engine


@contextmanager
def pg_schema(base: str) -> Iterator[Engine]:
    """An engine on a private schema of the PostgreSQL server at `base`, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}")
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

if __name__ == "__main__":
    main()
