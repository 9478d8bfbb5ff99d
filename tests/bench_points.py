"""Points benchmark on PostgreSQL: N customers with two credits each, half of them partly
redeemed, then the expiry job (two INSERT ... SELECTs) and the `bonus_balance` segment count.
Not part of the test suite.

    NUDGEFLOW_TEST_POSTGRES_URL=postgresql+psycopg://root@127.0.0.1:5432/test \\
        python -m tests.bench_points [--customers 100000]
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date

from sqlalchemy import text

from engine import segments
from engine.db import write_transaction
from engine.points import expire
from engine.schema import upgrade
from tests.bench_dataset import pg_schema

D = date(2026, 3, 1)
DATA = [
    "INSERT INTO customers (external_id, email_valid, phone_valid, email_opt_out, sms_opt_out,"
    " marketing_consent, attributes, created_at, updated_at)"
    " SELECT 'B' || g, false, false, false, false, false, '{}', now(), now()"
    " FROM generate_series(1, :n) g",
    # Two credits each: one expiring on D (100 points), one never (50).
    "INSERT INTO bonus_ledger (customer_id, kind, amount, booked_on, expires_at, description,"
    " created_at) SELECT id, 'accrual', 100, DATE '2026-01-30', DATE '2026-03-01', 'Bench',"
    " now() FROM customers",
    "INSERT INTO bonus_ledger (customer_id, kind, amount, booked_on, description, created_at)"
    " SELECT id, 'accrual', 50, DATE '2026-01-30', 'Forever', now() FROM customers",
    # Half the customers redeemed 60 of the expiring credit on 15 February.
    "INSERT INTO bonus_ledger (customer_id, kind, amount, booked_on, description, created_at)"
    " SELECT id, 'redemption', -60, DATE '2026-02-15', 'Voucher', now() FROM customers"
    " WHERE id % 2 = 0",
    "INSERT INTO bonus_allocations (customer_id, redemption_id, credit_id, amount)"
    " SELECT r.customer_id, r.id, c.id, 60 FROM bonus_ledger r JOIN bonus_ledger c"
    " ON c.customer_id = r.customer_id AND c.kind = 'accrual' AND c.expires_at IS NOT NULL"
    " WHERE r.kind = 'redemption'",
    "ANALYZE",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    n = parser.parse_args().customers
    with pg_schema(os.environ["NUDGEFLOW_TEST_POSTGRES_URL"]) as engine:
        upgrade(engine)
        with write_transaction(engine) as conn:
            for sql in DATA:
                conn.execute(text(sql), {"n": n})
        for label in ("expire", "expire again (nothing to do)"):
            started = time.perf_counter()
            with write_transaction(engine) as conn:
                added = expire(conn, D)
            print(f"{label}: {added} credits in {time.perf_counter() - started:.2f} s")
        with engine.connect() as conn:
            expired = conn.execute(text("SELECT sum(amount) FROM bonus_ledger "
                                        "WHERE kind = 'expiry'")).scalar_one()
            started = time.perf_counter()
            rich = segments.count(conn, {"field": "bonus_balance", "op": ">=", "value": 50}, D)
            took = time.perf_counter() - started
        print(f"expired points: {-expired} (expected {n * 100 - (n // 2) * 60})")
        print(f"bonus_balance >= 50: {rich} customers in {took:.2f} s")


if __name__ == "__main__":
    main()
