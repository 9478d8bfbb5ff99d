"""Real `nudgeflow` processes: a broken campaign fails alone in `run`, `worker` and `serve`
(which start and keep going), and of two workers on one database only one runs campaigns,
the other taking over when it is killed."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from engine.campaigns import campaign_today
from tests.campaign_docs import daily, daily_document
from tests.conftest import Db
from tests.test_scheduler import (
    UNRUNNABLE,
    import_doc,
    load,
    messages,
    people,
    runs,
    set_rules,
)

ROOT = Path(__file__).resolve().parent.parent


class Process:
    """A `nudgeflow` process whose output is read line by line as it comes."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        """The first line (from here on) that contains `text`."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"exited ({self.proc.wait()}) before printing {text!r}:\n"
                                     + self.output())
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} within {timeout} s:\n" + self.output())

    def output(self) -> str:
        return "\n".join(self.seen)

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.running():
            self.proc.terminate()
        self.proc.wait(timeout=30)
        self.reader.join(timeout=30)  # to the end of the output, then close the pipe
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def start(cli_env: dict[str, str], tmp_path: Path) -> Iterator[object]:
    """Start `nudgeflow ARGS...` against the test database, with RUN_AT passed."""
    env = {**os.environ, **cli_env, "PYTHONPATH": str(ROOT), "NUDGEFLOW_RUN_AT": "00:00",
           "NUDGEFLOW_INSTANCE_DIR": str(tmp_path / "instance")}
    started: list[Process] = []

    def launch(*args: str) -> Process:
        started.append(Process(env, *args))
        return started[-1]

    yield launch
    for p in started:
        p.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return int(answer.status)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_a_broken_campaign_fails_alone_in_run_worker_and_serve(
        db: Db, tmp_path: Path, nf, start) -> None:  # type: ignore[no-untyped-def]
    people(db)
    import_doc(db, tmp_path, daily_document(daily("broken", "fragile"),
                                            daily("healthy", "everyone")))
    set_rules(db, "fragile", UNRUNNABLE)
    today = campaign_today("UTC")
    ran = nf("run")
    assert ran.code == 1
    assert ran.err.startswith("error: 1 of 2 campaign run(s) failed: broken (database error: ")
    assert "Traceback" not in ran.err
    assert f"healthy {today} completed (attempt 1)" in ran.out.splitlines()
    assert messages(db, "healthy") == [today.isoformat()] * 2
    status, error, attempts = runs(db)[("broken", today)]
    assert (status, attempts) == ("failed", 1)
    assert error is not None and error.startswith("database error: ")

    worker = start("worker")
    worker.wait_for("scheduler: this process leads")
    assert worker.wait_for(f"run broken {today}: failed: ").endswith(error)
    worker.wait_for("caught up: 1 run(s), 1 failed")
    worker.wait_for("scheduler running")
    port = _free_port()
    serve = start("serve", "--port", str(port))
    serve.wait_for("standby: another nudgeflow process leads the scheduler")
    assert _get(f"http://127.0.0.1:{port}/login") == 200
    time.sleep(1)
    assert worker.running() and serve.running()
    assert "Traceback" not in worker.output() + serve.output()
    assert runs(db)[("broken", today)] == ("failed", error, 2)  # retried once, by the leader
    assert runs(db)[("healthy", today)] == ("completed", None, 1)


@pytest.mark.slow
def test_two_workers_one_leader_and_a_takeover_when_it_is_killed(
        db: Db, tmp_path: Path, start) -> None:  # type: ignore[no-untyped-def]
    people(db)
    today = campaign_today("UTC")
    load(db, tmp_path, daily_document(daily("healthy", "everyone")),
         active_since=today - timedelta(days=2))
    first = start("worker")
    first.wait_for("scheduler: this process leads")
    first.wait_for("caught up: 3 run(s), 0 failed")
    first.wait_for("scheduler running")
    second = start("worker")
    second.wait_for("standby: another nudgeflow process leads the scheduler")
    second.wait_for("scheduler running")
    assert {key: n for key, (_s, _e, n) in runs(db).items()} == {
        ("healthy", today - timedelta(days=d)): 1 for d in (0, 1, 2)}
    first.proc.kill()  # kill -9: no goodbye, the lock goes with the process
    assert first.proc.wait(timeout=30) == -9
    # Activated now: due today, for whoever leads.
    import_doc(db, tmp_path, daily_document(daily("late", "everyone")))
    second.wait_for("scheduler: this process leads", timeout=40)
    second.wait_for(f"run late {today}: completed", timeout=30)
    assert second.running()
    got = runs(db)
    assert got[("late", today)] == ("completed", None, 1)
    assert {n for _s, _e, n in got.values()} == {1}  # no date run twice
    assert "Traceback" not in first.output() + second.output()
