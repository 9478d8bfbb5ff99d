"""Benchmarks (`make bench`): the engine against hand-written SQL of the same meaning, measured in
the same run on the same data, printed as ratios. Not part of the test suite.

    python -m tests.bench [--customers 1000000] [--backends sqlite,postgres]

Data: N customers and 2N invoices generated inside the database (cached for SQLite under
bench-data/), as a daily run meets them: 70% of the invoices due by the run date were paid the
day before their due date, a fifth of those due later were paid early, none after the run date.
PostgreSQL uses NUDGEFLOW_TEST_POSTGRES_URL (skipped when unset).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, func, select, text

from engine import segments
from engine.campaigns import import_file
from engine.db import make_engine, write_transaction
from engine.models import Activity, BonusLedger, Customer, Invoice, Message, Run
from engine.schema import upgrade
from tests.bench_dispatch import bench_dispatch
from tests.bench_export import bench_export
from tests.bench_import import bench_import
from tests.bench_journey import bench_journey
from tests.bench_minimal import (
    check_minimal_applies,
    clear_minimal,
    minimal_counts,
    minimal_run,
    set_up_minimal,
)

ROOT = Path(__file__).resolve().parent.parent
RUN_DATE = date(2026, 11, 23)  # a Monday: the weekly past-due blast fires
SEGMENT = {"all": [{"field": "days_since_registration", "op": ">=", "value": 365},
                   {"field": "has_valid_email", "op": "=", "value": True},
                   {"field": "days_past_due", "op": ">=", "value": 30}]}
# The query a database developer would write (a semi-join on the overdue invoices; the
# correlated EXISTS form is several times slower on SQLite and is reported for reference).
HAND_COUNT = """
SELECT count(*) FROM customers c
WHERE c.registered_at <= :reg AND c.email_valid AND c.email IS NOT NULL
  AND c.id IN (SELECT i.customer_id FROM invoices i
               WHERE (i.paid_at IS NULL OR i.paid_at > :d) AND i.due_date <= :due)
"""
EXISTS_COUNT = """
SELECT count(*) FROM customers c
WHERE c.registered_at <= :reg AND c.email_valid AND c.email IS NOT NULL
  AND EXISTS (SELECT 1 FROM invoices i WHERE i.customer_id = c.id
              AND (i.paid_at IS NULL OR i.paid_at > :d) AND i.due_date <= :due)
"""

SQLITE_CUSTOMERS = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :n),
g AS (SELECT i, date('1950-01-01', '+' || ((i * 7919) % 20000) || ' days') AS bd,
             date(:d, '-' || ((i * 104729) % 2200) || ' days') AS reg FROM n)
INSERT INTO customers (external_id, first_name, last_name, email, email_valid, phone,
  phone_valid, birth_date, birth_mmdd, registered_at, email_opt_out, sms_opt_out,
  marketing_consent, attributes, created_at, updated_at)
SELECT 'C' || i, 'First' || i, 'Last' || i, 'c' || i || '@example.com', i % 20 != 0,
  '+2782' || printf('%07d', i), i % 25 != 0, bd, CAST(strftime('%m%d', bd) AS INTEGER), reg,
  i % 13 = 0, i % 17 = 0, i % 10 < 7, '{}', :now, :now FROM g
"""
PG_CUSTOMERS = """
INSERT INTO customers (external_id, first_name, last_name, email, email_valid, phone,
  phone_valid, birth_date, birth_mmdd, registered_at, email_opt_out, sms_opt_out,
  marketing_consent, attributes, created_at, updated_at)
SELECT 'C' || i, 'First' || i, 'Last' || i, 'c' || i || '@example.com', i % 20 != 0,
  '+2782' || lpad(i::text, 7, '0'), i % 25 != 0, bd, to_char(bd, 'MMDD')::int, reg,
  i % 13 = 0, i % 17 = 0, i % 10 < 7, '{}', now(), now()
FROM (SELECT i, date '1950-01-01' + ((i * 7919) % 20000)::int AS bd,
             CAST(:d AS date) - ((i * 104729) % 2200)::int AS reg
      FROM generate_series(1::bigint, :n) AS i) g
"""
INVOICES = {
    "sqlite": """
INSERT INTO invoices (external_id, customer_id, amount, currency, due_date, paid_at,
  created_at, updated_at)
SELECT 'I' || id || '-' || k, id, 100 + (id * k) % 900, 'ZAR', due,
  CASE WHEN (id + k) % 10 < 7 AND due <= :d THEN date(due, '-1 days')
       WHEN (id + k) % 10 < 2 THEN date(:d, '-' || (id % 5) || ' days') END, :now, :now
FROM (SELECT c.id, k.k, date(:d, (((c.id * 31 + k.k * 17) % 150) - 90) || ' days') AS due
      FROM customers c, (SELECT 1 AS k UNION ALL SELECT 2) k)
""",
    "postgresql": """
INSERT INTO invoices (external_id, customer_id, amount, currency, due_date, paid_at,
  created_at, updated_at)
SELECT 'I' || id || '-' || k, id, 100 + (id * k) % 900, 'ZAR', due,
  CASE WHEN (id + k) % 10 < 7 AND due <= CAST(:d AS date) THEN due - 1
       WHEN (id + k) % 10 < 2 THEN CAST(:d AS date) - (id % 5)::int END, now(), now()
FROM (SELECT c.id, k, CAST(:d AS date) + (((c.id * 31 + k * 17) % 150) - 90)::int AS due
      FROM customers c, generate_series(1, 2) AS k) s
""",
}


def best_of(n: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, value = float("inf"), None
    for _ in range(n):
        started = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - started)
    return best, value


def sqlite_file(n: int) -> Path:
    """Where the SQLite data for n customers is kept."""
    return ROOT / "bench-data" / f"bench-v2-{n}.db"


def pg_url(base: str, schema: str) -> str:
    """`base` with `schema` first on the search path."""
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"


def populate(engine: Engine, n: int) -> float | None:
    """Make the database hold n generated customers and 2n invoices; the seconds it took to
    generate them, or None when it already held them (the data is kept between runs)."""
    upgrade(engine)
    import_file(engine, ROOT / "campaigns.example.json")
    with engine.connect() as conn:
        have = conn.execute(select(func.count()).select_from(Customer)).scalar_one()
    if have == n:
        return None
    with write_transaction(engine) as conn:
        for model in (Activity, Message, BonusLedger, Run, Invoice, Customer):
            conn.execute(delete(model))
    started = time.perf_counter()
    dialect = engine.dialect.name
    with write_transaction(engine) as conn:
        params = {"n": n, "d": RUN_DATE.isoformat(), "now": "2026-11-01 00:00:00"}
        conn.execute(text(SQLITE_CUSTOMERS if dialect == "sqlite" else PG_CUSTOMERS), params)
        conn.execute(text(INVOICES[dialect]), params)
    with engine.connect() as conn:
        if dialect == "sqlite":
            conn.exec_driver_sql("ANALYZE")
        else:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    seconds = time.perf_counter() - started
    print(f"  generated {n:,} customers and {2 * n:,} invoices in {seconds:.1f} s")
    return seconds


def bench_segment(engine: Engine) -> dict[str, float]:
    d = RUN_DATE
    params = {"reg": d - timedelta(days=365), "d": d, "due": d - timedelta(days=30)}
    with engine.connect() as conn:
        hand_t, hand = best_of(3, lambda: conn.execute(text(HAND_COUNT), params).scalar_one())
        ours_t, ours = best_of(3, lambda: segments.count(conn, SEGMENT, d, {}))
        exists_t, _ = best_of(1, lambda: conn.execute(text(EXISTS_COUNT), params).scalar_one())
    assert ours == hand, (ours, hand)
    print(f"  segment count {ours:,}: engine {ours_t:.3f} s, hand-written SQL {hand_t:.3f} s, "
          f"ratio {ours_t / hand_t:.2f} (correlated-EXISTS form: {exists_t:.3f} s)")
    return {"count": ours, "engine_s": ours_t, "hand_s": hand_t}


def settle(engine: Engine) -> None:
    """Write out what the last step left in the log (SQLite's WAL, PostgreSQL's dirty
    buffers), so no timed step pays for the one before it."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("CHECKPOINT")


def clear_effects(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("TRUNCATE activities, messages, bonus_ledger, runs CASCADE")
            return
        for model in (Activity, Message, BonusLedger, Run):
            conn.execute(delete(model))


HAND_RUN = [
    # birthday-bonus: trigger + member-1y segment, award, then the SMS with its skip reasons
    """INSERT INTO bonus_ledger (customer_id, kind, amount, booked_on, expires_at, legal_entity,
         description, campaign_id, node_id, occurrence, created_at)
       SELECT id, 'accrual', 100, :d, :exp, 'Main', 'Birthday bonus', :bday, 'a', :occ, :now
       FROM customers WHERE birth_mmdd IN (:mmdd) AND birth_date < :jan1
         AND registered_at IS NOT NULL AND registered_at <= :reg
       ON CONFLICT DO NOTHING""",
    """INSERT INTO activities (customer_id, at, kind, campaign_id, node_id, occurrence, ledger_id,
         summary, details)
       SELECT customer_id, :now, 'bonus_awarded', campaign_id, node_id, occurrence, id,
         'Awarded 100 points', '{}' FROM bonus_ledger
       WHERE campaign_id = :bday AND node_id = 'a' AND occurrence = :occ
       ON CONFLICT DO NOTHING""",
    """INSERT INTO messages (campaign_id, node_id, customer_id, occurrence, channel, address,
         status, skip_reason, send_after, attempts, created_at)
       SELECT :bday, 'm', id, :occ, 'sms', phone,
         CASE WHEN sms_opt_out OR NOT marketing_consent OR phone IS NULL OR NOT phone_valid
              THEN 'skipped' ELSE 'queued' END,
         CASE WHEN sms_opt_out THEN 'opted_out' WHEN NOT marketing_consent
              THEN 'no_marketing_consent' WHEN phone IS NULL THEN 'no_address'
              WHEN NOT phone_valid THEN 'invalid_address' END, :now, 0, :now
       FROM customers WHERE birth_mmdd IN (:mmdd) AND birth_date < :jan1
         AND registered_at IS NOT NULL AND registered_at <= :reg
       ON CONFLICT DO NOTHING""",
    # past-due-blast: every customer, past-due-30 segment, the email
    """INSERT INTO messages (campaign_id, node_id, customer_id, occurrence, channel, address,
         reply_to, status, send_after, attempts, created_at)
       SELECT :due_c, 'm', c.id, :occ, 'email', c.email, 'collections@example.com',
         CASE WHEN c.email_opt_out THEN 'skipped' ELSE 'queued' END, :now, 0, :now
       FROM customers c WHERE c.email_valid AND c.email IS NOT NULL
         AND c.id IN (SELECT i.customer_id FROM invoices i
                      WHERE (i.paid_at IS NULL OR i.paid_at > :d) AND i.due_date <= :due)
       ON CONFLICT DO NOTHING""",
    """INSERT INTO activities (customer_id, at, kind, campaign_id, node_id, occurrence,
         message_id, summary, details)
       SELECT customer_id, :now, CASE WHEN status = 'skipped' THEN 'message_skipped'
         ELSE 'message_queued' END, campaign_id, node_id, occurrence, id, 'Message queued', '{}'
       FROM messages WHERE campaign_id IN (:bday, :due_c) AND occurrence = :occ
       ON CONFLICT DO NOTHING""",
]


def hand_run(engine: Engine, ids: dict[str, int]) -> None:
    d = RUN_DATE
    params = {"d": d, "exp": d + timedelta(days=30), "occ": d.isoformat(), "now": d,
              "mmdd": d.month * 100 + d.day, "jan1": date(d.year, 1, 1),
              "reg": d - timedelta(days=365), "due": d - timedelta(days=30),
              "bday": ids["birthday-bonus"], "due_c": ids["past-due-blast"]}
    with write_transaction(engine) as conn:
        for sql in HAND_RUN:
            conn.execute(text(sql), params)


def engine_run_in_subprocess(url: str) -> tuple[float, float, float]:
    """Run the two campaigns in a fresh process; return (seconds, CPU seconds, peak RSS in
    MB)."""
    code = (
        "import json, time, sys\n"
        "from datetime import date\n"
        "from engine.db import make_engine\n"
        "from engine.executor import run\n"
        f"e = make_engine({url!r})\n"
        "t, cpu = time.perf_counter(), time.process_time()\n"
        "for key in ('birthday-bonus', 'past-due-blast'):\n"
        f"    r = run(e, key, date.fromisoformat({RUN_DATE.isoformat()!r}))\n"
        "    assert r.status == 'completed', r.error\n"
        "t, cpu = time.perf_counter() - t, time.process_time() - cpu\n"
        "from tests.bench_import import peak_mb\n"
        "print(json.dumps([t, cpu, peak_mb()]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, text=True,
                         capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds, cpu, mb = json.loads(out.stdout.strip().splitlines()[-1])
    return float(seconds), float(cpu), float(mb)


def effect_counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(m)).scalar_one()  # type: ignore[return-value]
                     for m in (BonusLedger, Message, Activity))


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of fn()."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_run(engine: Engine, url: str, repeat: int = 1) -> dict[str, Any]:
    """The daily run three ways, `repeat` times in turn: nudgeflow (in its own process, for
    its peak memory), hand-written SQL on nudgeflow's schema, and the least work that gives
    the same effects (tests/bench_minimal.py). Figures are medians; the ratios are taken run
    by run, so a machine that slows down between runs skews them less. On SQLite the database
    works inside the process, so its CPU time is the work done, however busy the machine:
    both are printed (on PostgreSQL the work is the server's, and only wall time counts)."""
    from engine.models import Campaign, Template

    set_up_minimal(engine)
    with engine.connect() as conn:
        ids = dict(conn.execute(select(Campaign.key, Campaign.id)).all())
        templates = dict(conn.execute(select(Template.key, Template.id)).all())
        check_minimal_applies(conn, RUN_DATE)
    now = datetime(2026, 11, 23, 6, 0)
    sms_at, email_at = datetime(2026, 11, 23, 7, 0), now + timedelta(hours=2)
    rows: list[dict[str, tuple[float, float]]] = []
    peaks = []
    for _ in range(repeat):
        clear_effects(engine)
        clear_minimal(engine)
        settle(engine)
        hand = timed(lambda: hand_run(engine, ids))
        hand_counts = effect_counts(engine)
        clear_effects(engine)
        settle(engine)
        minimal = timed(lambda: minimal_run(engine, ids, templates, RUN_DATE, now, sms_at,
                                            email_at))
        settle(engine)
        ours_wall, ours_cpu, peak = engine_run_in_subprocess(url)
        ours_counts = effect_counts(engine)
        assert ours_counts == minimal_counts(engine) == hand_counts, (
            ours_counts, minimal_counts(engine), hand_counts)
        rows.append({"ours": (ours_wall, ours_cpu), "hand": hand, "minimal": minimal})
        peaks.append(peak)
    clear_effects(engine)
    clear_minimal(engine)

    def median(name: str, i: int) -> float:
        return statistics.median(r[name][i] for r in rows)

    def ratio(name: str, i: int) -> float:
        return statistics.median(r["ours"][i] / r[name][i] for r in rows)

    cpu = engine.dialect.name == "sqlite"
    print(f"  daily run (birthday bonus + past-due blast), effects {ours_counts} "
          f"(ledger, messages, activities; the same three ways), median of {repeat}:")
    print(f"    nudgeflow {median('ours', 0):.2f} s"
          + (f" (CPU {median('ours', 1):.2f} s)" if cpu else "")
          + f", peak memory {max(peaks):.0f} MB")
    for name, label in (("hand", "hand-written SQL on nudgeflow's schema"),
                        ("minimal", "minimal schema and SQL")):
        print(f"    {label} {median(name, 0):.2f} s: ratio {ratio(name, 0):.2f}"
              + (f" (CPU {median(name, 1):.2f} s: ratio {ratio(name, 1):.2f})" if cpu else ""))
    return {"engine_s": median("ours", 0), "hand_s": median("hand", 0),
            "minimal_s": median("minimal", 0), "ratio_hand": ratio("hand", 0),
            "ratio_minimal": ratio("minimal", 0), "peak_mb": max(peaks), "effects": ours_counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--repeat", type=int, default=3,
                        help="daily runs per backend (the figures are medians)")
    parser.add_argument("--fresh", action="store_true",
                        help="drop the PostgreSQL schema nudgeflow_bench first (it is kept "
                             "between runs, as the SQLite file is, so the data is made once)")
    parser.add_argument("--only", default="import,segment,run,journey,export,dispatch",
                        help="comma-separated benchmarks to run")
    args = parser.parse_args()
    only = set(args.only.split(","))
    targets = []
    if "sqlite" in args.backends:
        path = sqlite_file(args.customers)
        path.parent.mkdir(exist_ok=True)
        targets.append(("sqlite", f"sqlite:///{path}"))
    pg = os.environ.get("NUDGEFLOW_TEST_POSTGRES_URL")
    if "postgres" in args.backends:
        if pg:
            targets.append(("postgres", pg_url(pg, "nudgeflow_bench")))
            admin = make_engine(pg)
            with admin.begin() as conn:
                if args.fresh:
                    conn.exec_driver_sql("DROP SCHEMA IF EXISTS nudgeflow_bench CASCADE")
                conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS nudgeflow_bench")
            admin.dispose()
        else:
            print("postgres: skipped (NUDGEFLOW_TEST_POSTGRES_URL is unset)")
    if "import" in only:
        with tempfile.TemporaryDirectory() as tmp:
            print("sqlite (fresh file):")
            bench_import(f"sqlite:///{tmp}/import.db", min(100_000, args.customers))
        # (python -m tests.bench_import: the same at any size, on PostgreSQL too)
    for name, url in targets:
        print(f"{name}:")
        engine = make_engine(url)
        populate(engine, args.customers)
        if "segment" in only:
            bench_segment(engine)
        if "run" in only:
            bench_run(engine, url, args.repeat)
        if "journey" in only:
            bench_journey(engine, RUN_DATE)
        if "export" in only:
            bench_export(engine, url, "past-due-30", RUN_DATE.isoformat())
        if "dispatch" in only:
            bench_dispatch(engine, min(100_000, args.customers // 2))
        engine.dispose()


if __name__ == "__main__":
    main()
