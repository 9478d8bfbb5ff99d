"""Production mode with real processes: the web tier from gunicorn (`serve --workers 2`), and
three `nudgeflow worker` processes on one database of which one leads the scheduler; the
leader is killed, another takes over, each (campaign, date) runs once and the provider
receives each message once."""

from __future__ import annotations

import http.cookiejar
import json
import os
import queue
import re
import signal
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.campaigns import campaign_today
from engine.db import write_transaction
from engine.models import Message
from engine.users import create_token, create_user
from tests.accepting_fake import Faults, accepting_provider
from tests.campaign_docs import daily, daily_document
from tests.conftest import Db
from tests.test_dispatch_kills import _env
from tests.test_scheduler import import_doc, load, runs
from tests.test_worker import ROOT, Process, _free_port
from tests.world import customer, insert_world

METRICS_TOKEN = "scrape-me-0123456789abcdef"
PASSWORD = "correct horse battery"


def _call(opener: urllib.request.OpenerDirector, url: str, data: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with opener.open(request, timeout=30) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _rest(process: Process) -> str:
    """Everything the process printed, once it has stopped."""
    while True:
        try:
            line = process.lines.get(timeout=5)
        except queue.Empty:
            break
        if line is None:
            break
        process.seen.append(line)
    return process.output()


def test_serve_with_gunicorn_workers(db: Db, tmp_path: Path, cli_env: dict[str, str]) -> None:
    with write_transaction(db.engine) as conn:
        create_user(conn, "ana", "admin", PASSWORD)
        token = create_token(conn, "ana", "ops")
        insert_world(conn, [customer("C1", first_name="Ana")])
    port = _free_port()
    env = {**os.environ, **cli_env, "PYTHONPATH": str(ROOT), "NUDGEFLOW_SECRET_KEY": "k",
           "NUDGEFLOW_INSTANCE_DIR": str(tmp_path / "instance"),
           "NUDGEFLOW_METRICS_TOKEN": METRICS_TOKEN, "NUDGEFLOW_LOG_FORMAT": "json"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = Process(env, "serve", "--workers", "2", "--port", str(port))
    try:
        server.wait_for(f"serving on http://127.0.0.1:{port} with 2 worker process(es)")
        base = f"http://127.0.0.1:{port}"
        plain = urllib.request.build_opener()
        status, body = _call(plain, base + "/healthz")
        assert status == 200, body
        assert json.loads(body)["database"] == "ok"
        status, body = _call(plain, base + "/api/v1/customers/C1",
                             headers={"Authorization": f"Bearer {token}"})
        assert status == 200, body
        assert json.loads(body)["first_name"] == "Ana"
        assert _call(plain, base + "/api/v1/customers/C1")[0] == 401
        # A browser's login: the session cookie, issued by one process, is good in all.
        browser = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        status, page = _call(browser, base + "/login")
        assert status == 200
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]  # type: ignore[index]
        form = urllib.parse.urlencode({"name": "ana", "password": PASSWORD,
                                       "csrf_token": csrf}).encode()
        assert _call(browser, base + "/login", data=form)[0] == 200
        for _ in range(6):
            status, body = _call(browser, base + "/api/v1/customers/C1")
            assert status == 200, body
        status, text = _call(plain, base + "/metrics",
                             headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert status == 200, text
        assert "nudgeflow_database_up 1.0" in text
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=60) == 0
    finally:
        server.stop()
    out = _rest(server)
    assert "scheduler running" not in out  # the web tier runs no scheduler unless asked
    assert "Traceback" not in out, out
    # With NUDGEFLOW_LOG_FORMAT=json, gunicorn's log lines are JSON too (the status line that
    # says where it listens stays text).
    logged = [json.loads(line) for line in out.splitlines() if not line.startswith("serving on")]
    assert sum(1 for r in logged if r["logger"] == "gunicorn.error"
               and r["message"].startswith("Booting worker with pid")) == 2


def test_serve_workers_with_the_scheduler_beside_them(db: Db, tmp_path: Path,
                                                      cli_env: dict[str, str]) -> None:
    """`serve --workers 1 --scheduler`: a `nudgeflow worker` process runs today's campaign;
    SIGTERM stops both."""
    _customers(db, 2)
    import_doc(db, tmp_path, daily_document(daily("hello", "everyone")))
    port = _free_port()
    env = {**os.environ, **cli_env, "PYTHONPATH": str(ROOT), "NUDGEFLOW_SECRET_KEY": "k",
           "NUDGEFLOW_INSTANCE_DIR": str(tmp_path / "instance"), "NUDGEFLOW_RUN_AT": "00:00"}
    server = Process(env, "serve", "--workers", "1", "--scheduler", "--port", str(port))
    try:
        server.wait_for("scheduler: this process leads")
        server.wait_for("caught up: 1 run(s), 0 failed")
        assert runs(db) == {("hello", campaign_today("UTC")): ("completed", None, 1)}
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=60) == 0
    finally:
        server.stop()
    assert "Traceback" not in _rest(server)


def _customers(db: Db, count: int) -> None:
    with write_transaction(db.engine) as conn:
        insert_world(conn, [customer(f"W{i:03d}", first_name=f"W{i}", email=f"w{i}@example.com",
                                     email_valid=True) for i in range(count)])


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.3)


def _unsettled(db: Db) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Message).where(
            Message.status.in_(("queued", "sending", "held")))).scalar_one())


@pytest.mark.slow
def test_three_workers_one_leader_takeover_and_each_message_once(
        db: Db, tmp_path: Path, cli_env: dict[str, str]) -> None:
    people = 40
    _customers(db, people)
    today = campaign_today("UTC")
    load(db, tmp_path, daily_document(daily("early", "everyone")),
         active_since=today - timedelta(days=2))
    with accepting_provider(Faults(refuse=0.1, slow=0.0)) as fake:
        env = {**_env(cli_env, fake.url, RETRY_BACKOFF_SECONDS="0", RUN_AT="00:00"),
               "NUDGEFLOW_INSTANCE_DIR": str(tmp_path / "instance")}
        workers = [Process(env, "worker", "--dispatch-interval", "1")]
        try:
            workers[0].wait_for("caught up: 3 run(s), 0 failed")
            for _ in range(2):
                workers.append(Process(env, "worker", "--dispatch-interval", "1"))
                workers[-1].wait_for("standby: another nudgeflow process leads")
            # Kill the leader while messages are going out.
            _wait(lambda: _unsettled(db) < people * 3, 60, "dispatching began")
            killed_at = time.monotonic()
            workers[0].proc.kill()
            assert workers[0].proc.wait(timeout=30) == -9
            # Activated now: due today, for whichever standby takes over.
            import_doc(db, tmp_path, daily_document(daily("late", "everyone")))
            _wait(lambda: runs(db).get(("late", today), ("",))[0] == "completed", 60,
                  "a standby took over and ran the new campaign")
            _wait(lambda: _unsettled(db) == 0, 120, "every message sent")
        finally:  # all told to stop at once: a standby stopped last would take the lead
            for w in workers:
                if w.running():
                    w.proc.terminate()
            for w in workers:
                w.stop()
        accepted = fake.times()
        excused = fake.open_at([killed_at], slack=1.5)
    outputs = [_rest(w) for w in workers]
    assert "Traceback" not in "\n".join(outputs)
    leaders = [n for n, out in enumerate(outputs)
               if "scheduler: this process leads" in out]
    assert leaders[0] == 0 and len(leaders) == 2, leaders  # one successor, not two
    # Each (campaign, date) ran once, in one attempt.
    assert runs(db) == {**{("early", today - timedelta(days=d)): ("completed", None, 1)
                           for d in (0, 1, 2)},
                        ("late", today): ("completed", None, 1)}
    with db.engine.connect() as conn:
        sent = conn.execute(select(Message.id, Message.status)).all()
    assert len(sent) == people * 4
    assert Counter(m.status for m in sent) == {"sent": people * 4}
    for m in sent:  # each accepted once; twice only if its request was open at the kill
        assert accepted[str(m.id)] == 1 or (accepted[str(m.id)] == 2 and str(m.id) in excused)
