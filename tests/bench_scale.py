"""Scale mode of the benchmarks (`make bench-scale`): the same steps at several sizes, to show
their cost grows linearly with the customer base or better. Not part of the test suite.

    python -m tests.bench_scale [--scales 1000000,10000000] [--backends sqlite,postgres]
                                [--repeat 1] [--only run,segment,dispatch,export] [--json FILE]
    python -m tests.bench_scale --scales 10000,100000 --drop   # delete those scales' data

At each scale N (N customers and 2N invoices, generated in SQL by tests.bench.populate and
kept: SQLite in bench-data/bench-v2-N.db, which `make bench` shares, PostgreSQL
(NUDGEFLOW_TEST_POSTGRES_URL) in the schema nudgeflow_bench_N, so every scale stays cached),
each step against the least a database developer would write for it, in the same run:

- run: the daily run (birthday bonus + weekly past-due email) against the minimal schema and
  SQL of tests/bench_minimal.py (tests.bench.bench_run; peak: nudgeflow's run process);
- segment: a segment count against hand-written SQL (tests.bench.bench_segment; peak: the
  process that runs both counts; on SQLite the database works inside it);
- dispatch: min(100k, N/2) queued emails sent to a fake SendGrid in a process of its own,
  against the raw client posting 1,000-recipient batches (tests.bench_dispatch; peak: while
  nudgeflow dispatches);
- export: the past-due-30 segment's CSV export over HTTP against a minimal export (the same
  rows and columns from hand-written SQL through Python's csv module, and on PostgreSQL also
  COPY ... TO STDOUT: the faster counts; peak: the process serving the export).

Each step but the run (which starts its own) runs in a fresh process, for its peak resident
memory (VmHWM). The table gives, per backend, each step's seconds, its ratio to the reference,
its peak MB at each scale, and its growth from the smallest scale to the largest:
(t_large / t_small) / (size_large / size_small), where the size is the customers, or for
dispatch the emails sent (the same 100k from 200k customers up, so there growth is
t_large / t_small); 1.0 or less is linear or better.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from engine.db import make_engine
from tests.bench import (
    ROOT,
    RUN_DATE,
    bench_run,
    bench_segment,
    pg_url,
    populate,
    settle,
    sqlite_file,
)
from tests.bench_dataset import _Sink
from tests.bench_dispatch import bench_dispatch
from tests.bench_export import bench_export
from tests.bench_import import peak_mb
from tests.bench_minimal import check_minimal_applies

STEPS = ("run", "segment", "dispatch", "export")
LABELS = {"run": "daily run", "segment": "segment count", "dispatch": "dispatch",
          "export": "past-due export"}
AGAINST = {"run": "the minimal schema and SQL (tests/bench_minimal.py)",
           "segment": "hand-written SQL",
           "dispatch": "the raw SendGrid client posting 1,000-recipient batches",
           "export": "the minimal export (hand-written SQL, csv module or COPY)"}
PEAK = {"run": "peak of nudgeflow's run process",
        "segment": "peak of the process running both counts",
        "dispatch": "peak while nudgeflow dispatches",
        "export": "peak of the process serving the export"}
EXPORT_SEGMENT = "past-due-30"
EXPORT_COLUMNS = ("external_id", "first_name", "last_name", "email", "phone")
# past-due-30 (days_past_due >= 30, has_valid_email) as a database developer would select it;
# like tests/bench_minimal.py it reads only the never-paid invoices, right when no payment is
# recorded after the run date (check_minimal_applies, before it is timed).
MINIMAL_EXPORT = f"""
SELECT {", ".join(f"c.{c}" for c in EXPORT_COLUMNS)} FROM customers c
WHERE c.email_valid AND c.email IS NOT NULL
  AND c.id IN (SELECT i.customer_id FROM invoices i
               WHERE i.paid_at IS NULL AND i.due_date <= '{RUN_DATE - timedelta(days=30)}')
ORDER BY c.id
"""
RESULT = "bench_scale result: "


def label(n: int) -> str:
    """10000 -> 10k, 10000000 -> 10M."""
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n:,}"


def schema(n: int) -> str:
    return f"nudgeflow_bench_{n}"


def target(backend: str, n: int) -> tuple[str, str] | None:
    """(database URL, where the data is kept) for n customers; None without PostgreSQL."""
    if backend == "sqlite":
        path = sqlite_file(n)
        path.parent.mkdir(exist_ok=True)
        return f"sqlite:///{path}", str(path.relative_to(ROOT))
    base = os.environ.get("NUDGEFLOW_TEST_POSTGRES_URL")
    if not base:
        return None
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {schema(n)}")
    admin.dispose()
    return pg_url(base, schema(n)), f"schema {schema(n)}"


def drop(backend: str, n: int) -> None:
    """Delete the data kept for n customers."""
    if backend == "sqlite":
        path = sqlite_file(n)
        for file in (path, *(Path(f"{path}{s}") for s in ("-wal", "-shm", "-writer.lock"))):
            if file.exists():
                file.unlink()
                print(f"sqlite: deleted {file.relative_to(ROOT)}")
        if path.parent.is_dir() and not any(path.parent.iterdir()):
            path.parent.rmdir()
        return
    base = os.environ.get("NUDGEFLOW_TEST_POSTGRES_URL")
    if not base:
        print("postgres: nothing to drop (NUDGEFLOW_TEST_POSTGRES_URL is unset)")
        return
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema(n)} CASCADE")
    admin.dispose()
    print(f"postgres: dropped schema {schema(n)} (if it was there)")


def minimal_export(engine: Engine, method: str) -> dict[str, float]:
    """The past-due rows and columns as CSV the least costly way: `csv` (hand-written SQL,
    streamed, written by Python's csv module) or `copy` (PostgreSQL's COPY ... TO STDOUT)."""
    rows = 0
    started = time.perf_counter()
    with engine.connect() as conn:
        if method == "copy":
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            with cursor.copy(f"COPY ({MINIMAL_EXPORT}) TO STDOUT (FORMAT csv, HEADER)") as copy:
                for block in copy:
                    rows += bytes(block).count(b"\n")
            rows -= 1
        else:
            writer = csv.writer(_Sink())
            writer.writerow(EXPORT_COLUMNS)
            result = conn.execution_options(stream_results=True, yield_per=2000).execute(
                text(MINIMAL_EXPORT))
            for chunk in result.partitions():
                writer.writerows(chunk)
                rows += len(chunk)
    seconds = time.perf_counter() - started
    print(f"  minimal export ({method}): {rows:,} rows in {seconds:.2f} s")
    return {"rows": rows, "seconds": seconds}


def child(spec: dict[str, Any]) -> None:
    """One step in this (fresh) process; its figures and peak memory on the last line."""
    engine = make_engine(spec["url"])
    step = spec["step"]
    if step == "segment":
        result: dict[str, Any] = bench_segment(engine)
    elif step == "dispatch":
        result = bench_dispatch(engine, spec["n"], in_process=False, latency=False)
    elif step == "export":
        result = bench_export(engine, spec["url"], EXPORT_SEGMENT, RUN_DATE.isoformat(),
                              trace=False)
    else:
        result = minimal_export(engine, spec["method"])
    engine.dispose()
    print(RESULT + json.dumps(result | {"process_peak_mb": peak_mb()}), flush=True)


def in_child(**spec: Any) -> dict[str, Any]:
    """Run child(spec) in a new interpreter, passing its output on as it comes."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.bench_scale", "--child", json.dumps(spec)], cwd=ROOT,
        stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
    assert process.stdout is not None
    result = None
    for line in process.stdout:
        if line.startswith(RESULT):
            result = json.loads(line[len(RESULT):])
        else:
            print(line, end="")
    if process.wait() != 0 or result is None:
        raise RuntimeError(f"the {spec['step']} step failed (exit {process.returncode})")
    return result


def measure(engine: Engine, url: str, n: int, only: frozenset[str] | set[str], repeat: int) -> dict[str, Any]:
    """The steps at one scale: per step, seconds, the reference's seconds, their ratio, the
    peak resident MB, the size its growth is taken against, and the underlying figures."""
    figures: dict[str, Any] = {}
    if "run" in only:
        got = bench_run(engine, url, repeat)
        figures["run"] = {"seconds": got["engine_s"], "reference_s": got["minimal_s"],
                          "ratio": got["ratio_minimal"], "peak_mb": got["peak_mb"], "size": n,
                          "details": got}
    if "segment" in only:
        settle(engine)
        got = in_child(step="segment", url=url, n=n)
        figures["segment"] = {"seconds": got["engine_s"], "reference_s": got["hand_s"],
                              "ratio": got["engine_s"] / got["hand_s"],
                              "peak_mb": got["process_peak_mb"], "size": n, "details": got}
    if "dispatch" in only:
        settle(engine)
        emails = min(100_000, n // 2)
        got = in_child(step="dispatch", url=url, n=emails)
        figures["dispatch"] = {"seconds": emails / got["ours"],
                               "reference_s": emails / got["raw_batched"],
                               "ratio": got["raw_batched"] / got["ours"],
                               "peak_mb": got["peak_mb"], "size": emails, "details": got}
    if "export" in only:
        with engine.connect() as conn:
            check_minimal_applies(conn, RUN_DATE)
        settle(engine)
        ours = in_child(step="export", url=url, n=n)
        methods = ["csv", "copy"] if engine.dialect.name == "postgresql" else ["csv"]
        minimal = {m: in_child(step="export-minimal", url=url, n=n, method=m) for m in methods}
        for m, got in minimal.items():
            assert got["rows"] == ours["rows"], (m, got["rows"], ours["rows"])
        best = min(minimal.values(), key=lambda got: float(got["seconds"]))
        figures["export"] = {"seconds": ours["seconds"], "reference_s": best["seconds"],
                             "ratio": ours["seconds"] / best["seconds"],
                             "peak_mb": ours["process_peak_mb"], "size": n,
                             "details": {"ours": ours, "minimal": minimal}}
    return figures


def growth(steps: dict[int, dict[str, Any]], key: str) -> float | None:
    """(value at the largest scale / at the smallest) / (size there / size here)."""
    if len(steps) < 2:
        return None
    small, large = steps[min(steps)], steps[max(steps)]
    if small[key] <= 0:
        return None
    return float((large[key] / small[key]) / (large["size"] / small["size"]))


def table(backend: str, results: dict[int, dict[str, Any]]) -> str:
    scales = sorted(results)
    first, last = label(scales[0]), label(scales[-1])
    head = (["step"] + [f"s {label(n)}" for n in scales] + [f"ratio {label(n)}" for n in scales]
            + [f"MB {label(n)}" for n in scales] + [f"growth {first}->{last}", "ref growth"])
    rows = []
    for step in STEPS:
        steps = {n: results[n]["steps"][step] for n in scales if step in results[n]["steps"]}
        if not steps:
            continue
        name = LABELS[step]
        if step == "dispatch":
            name += " " + ", ".join(dict.fromkeys(label(s["size"]) for s in steps.values()))

        def cell(n: int, key: str, fmt: str, steps: dict[int, dict[str, Any]] = steps) -> str:
            return format(steps[n][key], fmt) if n in steps else "-"

        g, ref = growth(steps, "seconds"), growth(steps, "reference_s")
        rows.append([name] + [cell(n, "seconds", ".3f") for n in scales]
                    + [cell(n, "ratio", ".2f") for n in scales]
                    + [cell(n, "peak_mb", ".0f") for n in scales]
                    + ["-" if g is None else f"{g:.2f}", "-" if ref is None else f"{ref:.2f}"])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                          for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    out = [f"{backend}:", line(head), "-+-".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    out += [f"  {LABELS[s]}: ratio to {AGAINST[s]}; MB: {PEAK[s]}" for s in STEPS
            if any(s in results[n]["steps"] for n in scales)]
    out.append(f"  growth: (s {last} / s {first}) / (size {last} / size {first}), the size "
               "being the customers (dispatch: the emails sent); <= 1.0 is linear or better; "
               "ref growth: the same for the reference")
    return "\n".join(out)


def bench_scale(scales: list[int], backends: list[str], repeat: int = 1,
                only: frozenset[str] | set[str] = frozenset(STEPS)) -> dict[str, Any]:
    """Every step at every scale on every backend; figures by backend, then scale."""
    figures: dict[str, Any] = {}
    for backend in backends:
        results: dict[int, dict[str, Any]] = {}
        for n in scales:
            where = target(backend, n)
            if where is None:
                print(f"{backend}: skipped (NUDGEFLOW_TEST_POSTGRES_URL is unset)")
                break
            url, kept = where
            print(f"{backend}, {n:,} customers ({kept}):")
            engine = make_engine(url)
            generated = populate(engine, n)
            if generated is None:
                print(f"  cached data reused: {n:,} customers and {2 * n:,} invoices")
            results[n] = {"generated_s": generated, "cached": generated is None,
                          "steps": measure(engine, url, n, only, repeat)}
            engine.dispose()
        if not results:
            continue
        print()
        print(table(backend, results))
        print()
        figures[backend] = {
            "scales": {str(n): r for n, r in results.items()},
            "growth": {s: {"seconds": growth(st, "seconds"),
                           "reference_s": growth(st, "reference_s")}
                       for s in STEPS
                       if (st := {n: r["steps"][s] for n, r in results.items()
                                  if s in r["steps"]})}}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="1000000,10000000",
                        help="comma-separated customer counts (2 invoices each)")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--repeat", type=int, default=1,
                        help="daily runs per backend and scale (the figures are medians)")
    parser.add_argument("--only", default=",".join(STEPS),
                        help="comma-separated steps to measure")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--drop", action="store_true",
                        help="delete the data kept for these scales and backends, and stop")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    scales = [int(s) for s in args.scales.split(",")]
    backends = args.backends.split(",")
    if unknown := set(backends) - {"sqlite", "postgres"}:
        parser.error(f"unknown backend: {', '.join(sorted(unknown))}")
    only = set(args.only.split(","))
    if unknown := only - set(STEPS):
        parser.error(f"unknown step: {', '.join(sorted(unknown))}")
    if args.drop:
        for backend in backends:
            for n in scales:
                drop(backend, n)
        return
    figures = bench_scale(scales, backends, args.repeat, only)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
