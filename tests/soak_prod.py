"""The production soak: PostgreSQL, four `nudgeflow worker` processes, the gunicorn web tier
under loopback load, a daily run over many customers (points for all, an email for a share)
and its dispatch to a fake provider, while workers are SIGKILLed at random.

It checks what a user would: the run completed once, every customer got their points once,
every email was accepted by the provider once (twice only for a request that was open when
its worker was killed), nothing is left queued or sending, and the API answered every request
without a 5xx; it prints the API's latency (p50, p99) and the timings.

    make soak-prod                                  # 1,000,000 customers, 100,000 emails
    make soak-prod SOAK_CUSTOMERS=100000 SOAK_DISPATCH=20000
    python -m tests.soak_prod --customers 2000 --dispatch 1000 --requests 200 --kills 2

Needs NUDGEFLOW_TEST_POSTGRES_URL; works in a private schema, dropped afterwards."""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text

ROOT = Path(__file__).resolve().parent.parent
METRICS_TOKEN = "soak-metrics-0123456789"


@dataclass
class Report:
    customers: int = 0
    emails: int = 0
    kills: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0
    excused: int = 0
    bytes_per_row: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    kills_in_dispatch: int = 0
    leader_killed_in_run: bool = False

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0

    def lines(self) -> list[str]:
        return [
            f"customers {self.customers:,}, emails {self.emails:,}, worker kills "
            f"{len(self.kills)} ({self.kills_in_dispatch} while messages went out; the "
            f"leader in its run: {'yes' if self.leader_killed_in_run else 'no'})",
            "timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()),
            f"API: {len(self.latencies)} requests, statuses {dict(self.statuses)}, p50 "
            f"{self.percentile(0.5) * 1000:.0f} ms, p99 {self.percentile(0.99) * 1000:.0f} ms",
            f"provider: duplicates {self.duplicates} (recipients in requests open at a kill: "
            f"{self.excused})",
            f"/metrics of the web tier: {self.metrics}",
            "bytes per row (table, indexes and TOAST): " + ", ".join(
                f"{k} {v:.0f}" for k, v in self.bytes_per_row.items()),
        ]


def _doc(share: int) -> dict[str, Any]:
    return {"version": 1,
            "segments": [{"key": "share", "name": "Share",
                          "rules": {"field": "attributes.grp", "op": "<", "value": share}}],
            "templates": [{"key": "soak", "channel": "email", "subject": "Your points",
                           "body": "Hello group {{ customer.attributes.grp }}, 10 points."}],
            "campaigns": [{"key": "soak", "name": "Soak", "status": "active",
                           "purpose": "service", "graph": {"nodes": [
                               {"id": "t", "type": "trigger",
                                "config": {"kind": "schedule", "every": "day"}},
                               {"id": "a", "type": "award-bonus", "config": {
                                   "amount": 10, "lifetime_days": 30, "legal_entity": "Main",
                                   "description": "Soak points"}},
                               {"id": "s", "type": "segment-select", "config": {"segment": "share"}},
                               {"id": "m", "type": "send-message", "config": {"template": "soak"}}],
                               "edges": [["t", "a"], ["t", "s"], ["s", "m"]]}}]}


def _customers(engine: Engine, count: int) -> None:
    """`count` customers in one INSERT ... SELECT, `grp` 0-99 in their attributes."""
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO customers (external_id, first_name, last_name, email, email_valid, "
            "attributes, created_at, updated_at) "
            "SELECT 'S' || lpad(i::text, 8, '0'), 'P' || i, 'Soak', 'p' || i || '@example.com', "
            "true, jsonb_build_object('grp', i % 100), now(), now() "
            "FROM generate_series(1, :n) AS i"), {"n": count})
        conn.execute(text("ANALYZE customers"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _load(base: str, token: str, customers: int, requests: int, threads: int,
          report: Report) -> None:
    """`requests` API calls from `threads` threads: reads a dashboard and support desk make."""
    rng = random.Random(5)
    paths = []
    for n in range(requests):
        who = f"S{rng.randrange(1, customers + 1):08d}"
        paths.append(["/healthz", f"/api/v1/customers/{who}", f"/api/v1/customers/{who}/activity",
                      "/api/v1/runs?limit=5", "/api/v1/messages?limit=20",
                      f"/api/v1/customers/{who}/messages"][n % 6])
    lock = threading.Lock()

    def call(path: str) -> None:
        request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                answer.read()
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = 0
        with lock:
            report.latencies.append(time.perf_counter() - started)
            report.statuses[status] += 1

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(call, paths))


def _wait_http(url: str, deadline: float) -> None:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _scrape(base: str) -> dict[str, float]:
    """The web tier's /metrics, as {'name{label="value"}': value}."""
    from prometheus_client.parser import text_string_to_metric_families

    request = urllib.request.Request(base + "/metrics",
                                     headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        exposition = answer.read().decode()
    return {sample.name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            + "}": sample.value
            for family in text_string_to_metric_families(exposition) for sample in family.samples}


def _wait_lead(engine: Engine, deadline: float) -> None:
    """Until a session holds this schema's scheduler lock (engine.leader)."""
    held = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid = 1852207971 "
                "AND objid::bigint = (hashtext(current_schema())::bigint & 4294967295)")
    while True:
        with engine.connect() as conn:
            if conn.execute(held).scalar_one():
                return
        if time.monotonic() > deadline:
            raise AssertionError("no worker took the scheduler's lock")
        time.sleep(0.2)


def _bytes_per_row(engine: Engine) -> dict[str, float]:
    out = {}
    with engine.connect() as conn:
        for table in ("activities", "messages", "bonus_ledger"):
            size, rows = conn.execute(text(
                f"SELECT pg_total_relation_size('{table}'), (SELECT count(*) FROM {table})")).one()
            out[table] = size / rows if rows else 0.0
    return out


def soak(engine: Engine, url: str, *, customers: int, dispatch: int, workers: int = 4,
         requests: int = 2000, kills: int = 6, kill_every: tuple[float, float] = (3, 10),
         web_workers: int = 2, log_dir: Path | None = None, timeout: float = 3600) -> Report:
    """Run the soak on an empty database `engine` (reachable at `url`); raise AssertionError
    when anything was lost or doubled."""
    from engine.campaigns import campaign_today, import_file
    from engine.db import write_transaction
    from engine.models import Activity, BonusLedger, Campaign, Message, Run
    from engine.schema import upgrade
    from engine.users import create_token, create_user
    from tests.accepting_fake import Faults, accepting_provider
    from tests.test_dispatch_kills import _env

    report = Report(customers=customers)
    logs = log_dir or Path(tempfile.mkdtemp(prefix="nudgeflow-soak-"))
    clock = time.monotonic()
    upgrade(engine)
    _customers(engine, customers)
    share = max(1, min(100, round(100 * dispatch / customers)))
    path = logs / "campaigns.json"
    path.write_text(json.dumps(_doc(share)))
    with write_transaction(engine) as conn:
        create_user(conn, "ops", "viewer", "soak-password-0")
        token = create_token(conn, "ops", "soak")
    report.seconds["data"] = time.monotonic() - clock
    today = campaign_today("UTC")
    rng = random.Random(11)
    with accepting_provider(Faults(refuse=0.05, slow=0.01, slow_seconds=4)) as fake:
        env = {**_env({"NUDGEFLOW_DATABASE_URL": url, "NUDGEFLOW_TIMEZONE": "UTC",
                       "NUDGEFLOW_OUTBOX_DIR": str(logs / "outbox")}, fake.url,
                      RETRY_BACKOFF_SECONDS="0", MAX_ATTEMPTS="100", RUN_AT="00:00",
                      INSTANCE_DIR=str(logs / "instance"), SECRET_KEY="soak"),
               "NUDGEFLOW_DISPATCH_LEASE_SECONDS": "20",
               "PROMETHEUS_MULTIPROC_DIR": str(logs / "metrics"),
               "NUDGEFLOW_METRICS_TOKEN": METRICS_TOKEN}
        (logs / "metrics").mkdir(exist_ok=True)

        def start(*args: str) -> subprocess.Popen[bytes]:
            with (logs / f"{args[0]}.log").open("ab") as out:
                return subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=ROOT,
                                        env=env, stdout=out, stderr=subprocess.STDOUT)

        port = _free_port()
        web = start("serve", "--workers", str(web_workers), "--port", str(port))
        procs: list[subprocess.Popen[bytes]] = []
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_http(base + "/healthz", time.monotonic() + 60)
            import_file(engine, path)  # active from today: due now, for the leader
            clock = time.monotonic()
            # The first worker alone until it leads, so the first kill can be the leader's.
            procs = [start("worker", "--dispatch-interval", "1")]
            _wait_lead(engine, time.monotonic() + 60)
            procs += [start("worker", "--dispatch-interval", "1") for _ in range(workers - 1)]
            load = threading.Thread(target=_load, args=(base, token, customers, requests, 8,
                                                        report))
            load.start()
            # Half the kills while the run may be going on, the rest while messages go out.
            deadline = time.monotonic() + timeout
            ran_at, next_kill = None, time.monotonic() + rng.uniform(*kill_every)
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    status = conn.execute(select(Run.status).join(Campaign).where(
                        Campaign.key == "soak", Run.run_date == today)).scalar_one_or_none()
                    waiting = conn.execute(select(func.count()).select_from(Message).where(
                        Message.status.in_(("queued", "sending", "held")))).scalar_one()
                if status == "completed" and ran_at is None:
                    ran_at = time.monotonic()
                    report.seconds["run (from the workers' start)"] = ran_at - clock
                if status == "completed" and not waiting:
                    break
                may_kill = len(report.kills) < (kills + 1) // 2 or (ran_at and waiting)
                if len(report.kills) < kills and may_kill and time.monotonic() >= next_kill:
                    # The leader in the middle of its run, if it is still at it; then anyone.
                    victim = 0 if not report.kills and not ran_at else rng.randrange(len(procs))
                    report.leader_killed_in_run |= victim == 0 and not report.kills
                    report.kills.append(time.monotonic())
                    report.kills_in_dispatch += bool(ran_at)
                    procs[victim].send_signal(signal.SIGKILL)
                    procs[victim].wait()
                    procs[victim] = start("worker", "--dispatch-interval", "1")
                    next_kill = time.monotonic() + rng.uniform(*kill_every)
                time.sleep(0.5)
            else:
                raise AssertionError(f"not settled within {timeout} s: run {status}, "
                                     f"{waiting} message(s) waiting")
            report.seconds["run and dispatch"] = time.monotonic() - clock
            load.join()
            scraped = _scrape(base)
        finally:
            for p in [*procs, web]:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in [*procs, web]:
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
        accepted = fake.times()
        excused = fake.open_at(report.kills, slack=1.5)

    with engine.connect() as conn:
        run_row = conn.execute(select(Run.status, Run.attempts).join(Campaign).where(
            Campaign.key == "soak")).all()
        messages = conn.execute(select(Message.id, Message.status)).all()
        points = conn.execute(select(func.count(), func.count(func.distinct(
            BonusLedger.customer_id)), func.sum(BonusLedger.amount))).one()
        awarded = conn.execute(select(func.count()).select_from(Activity).where(
            Activity.kind == "bonus_awarded")).scalar_one()
        expected = conn.execute(text(
            "SELECT count(*) FROM customers WHERE (attributes->>'grp')::int < :s"),
            {"s": share}).scalar_one()
    report.emails = len(messages)
    report.bytes_per_row = _bytes_per_row(engine)
    log_text = "".join(p.read_text(errors="replace") for p in logs.glob("*.log"))
    assert "Traceback" not in log_text, log_text[-4000:]
    if report.leader_killed_in_run:  # and another took over
        assert log_text.count("scheduler: this process leads") >= 2, log_text[-4000:]
    assert [(s, len(a)) for s, a in run_row] == [("completed", 1)], run_row
    assert tuple(points) == (customers, customers, 10 * customers), points
    assert awarded == customers
    assert len(messages) == expected, (len(messages), expected)
    assert Counter(m.status for m in messages) == {"sent": expected}
    duplicates = [m.id for m in messages if accepted[str(m.id)] > 1]
    report.duplicates, report.excused = len(duplicates), len(excused)
    assert all(str(i) in excused for i in duplicates), duplicates[:20]
    assert all(accepted[str(m.id)] >= 1 for m in messages)
    assert report.statuses == {200: requests}, report.statuses
    # The web tier's /metrics adds up the workers' counters (PROMETHEUS_MULTIPROC_DIR): the
    # sends each recorded, and the run the leader made, though no web process sent or ran.
    report.metrics = {k: v for k, v in scraped.items()
                      if k.startswith(("nudgeflow_sends_total", "nudgeflow_run_seconds_count"))}
    sends = scraped.get('nudgeflow_sends_total{channel="email"}', 0)
    assert expected - len(excused) <= sends <= expected, (sends, expected)
    assert scraped.get('nudgeflow_run_seconds_count{status="completed"}', 0) >= 1, scraped
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int,
                        default=int(os.environ.get("SOAK_CUSTOMERS", 1_000_000)))
    parser.add_argument("--dispatch", type=int,
                        default=int(os.environ.get("SOAK_DISPATCH", 100_000)))
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=int(os.environ.get("SOAK_KILLS", 6)))
    args = parser.parse_args(argv)
    from tests.conftest import postgres_db

    if not os.environ.get("NUDGEFLOW_TEST_POSTGRES_URL"):
        sys.exit("set NUDGEFLOW_TEST_POSTGRES_URL (e.g. postgresql+psycopg://root@127.0.0.1:5432/test)")
    databases = postgres_db()
    db = next(databases)
    try:
        report = soak(db.engine, db.url, customers=args.customers, dispatch=args.dispatch,
                      workers=args.workers, requests=args.requests, kills=args.kills)
    finally:
        databases.close()
    print("\n".join(report.lines()))


if __name__ == "__main__":
    main()
