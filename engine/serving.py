"""The production web tier: `nudgeflow serve --workers N` serves the Flask app from N gunicorn
processes (threads within each), so one slow request or one crashed process never stops the
others, and the app uses every core. The scheduler is not in these processes: `nudgeflow
worker` runs it (or `serve --scheduler`, which starts one worker process beside them).

Metrics: each process counts its own sends and runs. The processes of one machine share a
directory (PROMETHEUS_MULTIPROC_DIR, prometheus_client's multiprocess mode), and /metrics adds
up every process's files in it, so whichever web process answers the scrape reports them all.
Without the variable, `serve --workers` makes a private directory for its own processes."""

from __future__ import annotations

import copy
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from typing import Any

from gunicorn.app.base import BaseApplication

from engine.config import Settings, secret_key

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class WebTier(BaseApplication):  # type: ignore[misc]
    """gunicorn, configured from our options rather than its command line."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings, self.options = settings, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # Each worker builds its own app and database engine after the fork (no preload), so
        # no connection is shared between processes.
        from web import create_app

        return create_app({"NUDGEFLOW_SETTINGS": self.settings})


def _child_exit(_server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _logging(log_format: str) -> dict[str, Any]:
    """gunicorn's logging, with our `nudgeflow` loggers at INFO through its handlers, and every
    line one JSON object with NUDGEFLOW_LOG_FORMAT=json."""
    from gunicorn.glogging import CONFIG_DEFAULTS

    config = copy.deepcopy(CONFIG_DEFAULTS)
    for name in ("gunicorn.error", "gunicorn.access"):  # each line once, by its own handler
        config["loggers"][name]["propagate"] = False
    config["loggers"]["nudgeflow"] = {"level": "INFO", "handlers": [], "propagate": True}
    if log_format == "json":
        config["formatters"]["generic"] = {"()": "engine.logs.JsonFormatter"}
    return config


def serve_workers(settings: Settings, host: str, port: int, workers: int, threads: int, *,
                  with_scheduler: bool = False) -> None:
    """Serve the app from `workers` gunicorn processes of `threads` threads until stopped;
    `with_scheduler`: and a `nudgeflow worker` process beside them."""
    secret_key(settings)  # made once here, not raced by the workers on first start
    private = None
    if not os.environ.get(MULTIPROC_ENV):
        private = tempfile.mkdtemp(prefix="nudgeflow-metrics-")
        os.environ[MULTIPROC_ENV] = private
    scheduler = start_scheduler_process() if with_scheduler else None
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers, "threads": threads, "worker_class": "gthread",
        "timeout": 120, "graceful_timeout": 30, "preload_app": False,
        "accesslog": None, "errorlog": "-", "loglevel": "info",
        "proc_name": "nudgeflow-web", "child_exit": _child_exit,
        "logconfig_dict": _logging(settings.log_format),
        # The server says which address it listens on, once it does (tests wait for it).
        "when_ready": lambda server: print(
            f"serving on http://{host}:{port} with {workers} worker process(es)", flush=True),
    }
    master = os.getpid()
    try:
        WebTier(settings, options).run()
    finally:
        # gunicorn's workers are forks of this process and leave through here too (their
        # SystemExit carries their exit code on): only the master cleans up.
        if os.getpid() == master:
            if scheduler is not None:
                stop(scheduler)
            if private is not None:
                shutil.rmtree(private, ignore_errors=True)


def start_scheduler_process() -> subprocess.Popen[bytes]:
    """`nudgeflow worker` as a child process (serve --scheduler), with this environment."""
    return subprocess.Popen([sys.executable, "-m", "engine", "worker"])


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
