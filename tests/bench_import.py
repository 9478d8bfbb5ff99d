"""Import benchmark: a 100,000-row customer CSV into a fresh database, time and peak memory
measured in a separate process (so generating the file does not count)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = """
import json, sys, time
from pathlib import Path
from engine.db import make_engine
from engine.importing import import_customers
from engine.schema import upgrade
engine = make_engine(sys.argv[1])
upgrade(engine)
started = time.perf_counter()
result = import_customers(engine, Path(sys.argv[2]), "ZA")
seconds = time.perf_counter() - started
from tests.bench_import import peak_mb
print(json.dumps([seconds, result.inserted, peak_mb()]))
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


def bench_import(url: str, n: int = 100_000) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "customers.csv"
        write_csv(path, n)
        out = subprocess.run([sys.executable, "-c", CODE, url, str(path)], cwd=ROOT, check=True,
                             text=True, capture_output=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds, inserted, mb = json.loads(out.stdout.strip().splitlines()[-1])
    assert inserted == n
    print(f"  import {n:,} customers (CSV, phones and emails validated): {seconds:.1f} s, "
          f"{n / seconds:,.0f} rows/s, peak memory {mb:.0f} MB")
    return {"seconds": seconds, "peak_mb": mb}
