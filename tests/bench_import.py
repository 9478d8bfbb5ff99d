"""Import benchmark: N customers and 2N invoices (CSV) imported through the CLI into a fresh
database, then the same customers again (every row unchanged). Each import runs in its own
process, timed with its peak resident memory. The baseline, measured in the same run on the
same files: Python's csv module reading each file into a plain table of text columns
(SQLite: executemany; PostgreSQL: COPY), with no checks at all.

    python -m tests.bench_import --customers 1000000 --backends sqlite,postgres
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASELINE = """
import csv, sys, time
from engine.db import make_engine
engine = make_engine(sys.argv[1])
with open(sys.argv[2], newline="") as fh, engine.connect() as conn:
    reader = csv.reader(fh)
    header = next(reader)
    cols = ", ".join(f"c{i} text" for i in range(len(header)))
    conn.exec_driver_sql("DROP TABLE IF EXISTS bench_raw")
    conn.exec_driver_sql(f"CREATE TABLE bench_raw ({cols})")
    cursor = conn.connection.driver_connection.cursor()
    started = time.perf_counter()
    if conn.dialect.name == "postgresql":
        with cursor.copy("COPY bench_raw FROM STDIN") as copy:
            for row in reader:
                copy.write_row(row)
    else:
        insert = f"INSERT INTO bench_raw VALUES ({', '.join('?' * len(header))})"
        chunk = []
        for row in reader:
            chunk.append(row)
            if len(chunk) == 5000:
                cursor.executemany(insert, chunk)
                chunk = []
        cursor.executemany(insert, chunk)
    conn.commit()
    conn.exec_driver_sql("DROP TABLE bench_raw")
    conn.commit()
"""


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM). Unlike ru_maxrss, which Linux carries over
    from the parent across fork and exec, it starts afresh in a new program."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def write_csv(path: Path, n: int) -> None:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["external_id", "first_name", "last_name", "email", "phone", "birth_date",
                      "registered_at", "branch", "email_opt_out", "marketing_consent",
                      "employer"])
        for i in range(n):
            out.writerow([f"C{i}", f"First{i}", f"Last{i}", f"c{i}@example.com",
                          f"082{i % 10_000_000:07d}", f"19{50 + i % 50}-0{1 + i % 9}-1{i % 9}",
                          "2020-01-01", "Durban", "no" if i % 9 else "yes", "yes",
                          "Acme" if i % 2 else ""])


def write_invoices(path: Path, n: int, customers: int) -> None:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["external_id", "customer_external_id", "amount", "currency", "due_date",
                      "paid_at"])
        for i in range(n):
            month = 1 + i % 12
            out.writerow([f"I{i}", f"C{i % customers}", f"{100 + i % 900}.{i % 100:02d}", "ZAR",
                          f"2026-{month:02d}-{1 + i % 28:02d}",
                          "" if i % 3 else f"2026-{month:02d}-{1 + i % 27:02d}"])


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run a command; (seconds, its peak resident memory in MB, its output)."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(args)} failed: {err}")
    return seconds, usage.ru_maxrss / 1024, out


def bench_import(url: str, n: int = 100_000, data: Path | None = None) -> dict[str, Any]:
    """Import n customers, 2n invoices and the customers again through the CLI; print rows/s
    and peak memory of each beside the baseline's rows/s."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = data or Path(tmp)
        customers, invoices = folder / f"customers-{n}.csv", folder / f"invoices-{2 * n}.csv"
        if not customers.exists():
            write_csv(customers, n)
        if not invoices.exists():
            write_invoices(invoices, 2 * n, n)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "NUDGEFLOW_DATABASE_URL": url}
        py = [sys.executable]
        timed([*py, "-m", "engine", "init"], env)
        figures = {}
        for label, kind, path, rows in (("customers", "customers", customers, n),
                                        ("invoices", "invoices", invoices, 2 * n),
                                        ("customers again (unchanged)", "customers", customers,
                                         n)):
            seconds, mb, out = timed([*py, "-m", "engine", "import", kind, str(path), "--json"],
                                     env)
            result = json.loads(out)
            assert result["rows"] == rows, result
            raw, raw_mb, _ = timed([*py, "-c", BASELINE, url, str(path)], env)
            figures[label] = {"seconds": seconds, "rows_per_s": rows / seconds, "peak_mb": mb,
                              "baseline_rows_per_s": rows / raw}
            print(f"  import {rows:,} {label}: {seconds:.1f} s, {rows / seconds:,.0f} rows/s, "
                  f"peak memory {mb:.0f} MB (baseline, csv into a plain table: "
                  f"{rows / raw:,.0f} rows/s, {raw_mb:.0f} MB)", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--data", type=Path, help="keep the generated files in this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if "sqlite" in args.backends:
            print("sqlite (fresh file):")
            bench_import(f"sqlite:///{tmp}/import.db", args.customers, args.data)
        if "postgres" in args.backends:
            if not (pg := os.environ.get("NUDGEFLOW_TEST_POSTGRES_URL")):
                print("postgres: skipped (NUDGEFLOW_TEST_POSTGRES_URL is unset)")
                return
            from engine.db import make_engine

            admin = make_engine(pg)
            with admin.begin() as conn:
                conn.exec_driver_sql("DROP SCHEMA IF EXISTS nudgeflow_import_bench CASCADE")
                conn.exec_driver_sql("CREATE SCHEMA nudgeflow_import_bench")
            print("postgres (fresh schema):")
            try:
                bench_import(f"{pg}{'&' if '?' in pg else '?'}options=-csearch_path%3D"
                             "nudgeflow_import_bench", args.customers, args.data)
            finally:
                with admin.begin() as conn:
                    conn.exec_driver_sql("DROP SCHEMA nudgeflow_import_bench CASCADE")
                admin.dispose()


if __name__ == "__main__":
    main()
