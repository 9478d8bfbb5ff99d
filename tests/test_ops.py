"""The operations endpoints: /healthz for load balancers, /metrics for Prometheus, and JSON
log lines."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from sqlalchemy import insert

from engine.config import Settings
from engine.db import write_transaction
from engine.executor import run
from engine.logs import JsonFormatter
from engine.models import Campaign, Customer, Message
from engine.models.base import utcnow
from engine.outbox import dispatch
from tests.conftest import Db
from tests.fakes import RecordingChannel
from tests.webapp import ok, token_for
from web import create_app

METRICS_TOKEN = "scrape-me-0123456789abcdef"
# (channel, status, how many)
QUEUE = [("sms", "queued", 2), ("email", "queued", 1), ("email", "held", 3), ("sms", "sending", 1),
         ("email", "sent", 2), ("sms", "failed", 1)]


def _queue(db: Db, waited: timedelta = timedelta(minutes=5)) -> None:
    """Messages of campaign "ops" as QUEUE says, all due `waited` ago."""
    due = utcnow() - waited
    with write_transaction(db.engine) as conn:
        cid = conn.execute(insert(Customer).values(external_id="ops", attributes={})
                           ).inserted_primary_key[0]
        camp = conn.execute(insert(Campaign).values(key="ops", name="ops", graph={})
                            ).inserted_primary_key[0]
        rows = [{"campaign_id": camp, "node_id": f"{channel}-{status}", "customer_id": cid,
                 "occurrence": str(i), "channel": channel, "status": status, "send_after": due,
                 "address": "+27821234567" if channel == "sms" else "ops@example.com",
                 "inline_template": {"subject": "S", "body": "B"}}
                for channel, status, n in QUEUE for i in range(n)]
        conn.execute(insert(Message), rows)


@pytest.fixture
def ops_app(app: Flask) -> Flask:
    """The web app with NUDGEFLOW_METRICS_TOKEN set."""
    settings = app.config["NUDGEFLOW_SETTINGS"]
    app.config["NUDGEFLOW_SETTINGS"] = Settings(database_url=settings.database_url,
                                                secret_key="k", metrics_token=METRICS_TOKEN)
    return app


def test_healthz_reports_the_queue_without_a_login(db: Db, app: Flask) -> None:
    _queue(db)
    answer = ok(app.test_client().get("/healthz"))
    assert {k: answer[k] for k in ("status", "database")} == {"status": "ok", "database": "ok"}
    queue = answer["queue"]
    assert (queue["queued"], queue["sending"], queue["held"]) == (3, 1, 3)
    assert 295 <= queue["oldest_due_seconds"] <= 360


def test_healthz_of_an_empty_queue(db: Db, app: Flask) -> None:
    answer = ok(app.test_client().get("/healthz"))
    assert answer["queue"] == {"queued": 0, "sending": 0, "held": 0, "oldest_due_seconds": 0.0}


@pytest.fixture(params=["sqlite", "postgres"])
def dead_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """An app whose database does not answer: a SQLite file in a missing folder, a PostgreSQL
    server on a closed port."""
    url = (f"sqlite:///{tmp_path / 'missing' / 'folder' / 'nf.db'}" if request.param == "sqlite"
           else "postgresql+psycopg://root@127.0.0.1:1/test?connect_timeout=2")
    app = create_app({"NUDGEFLOW_SETTINGS": Settings(database_url=url, secret_key="k"),
                      "TESTING": True})
    yield app
    app.extensions["nudgeflow_engine"].dispose()


def test_healthz_is_503_when_the_database_does_not_answer(dead_app: Flask) -> None:
    answer = ok(dead_app.test_client().get("/healthz"), 503)
    assert answer == {"status": "error", "database": "unavailable (OperationalError)"}


def test_metrics_need_an_admin_token_or_the_metrics_token(db: Db, ops_app: Flask) -> None:
    client = ops_app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    refused = client.get("/metrics", headers=token_for(db, "marketer"))
    assert refused.status_code == 403
    assert refused.json["error"]["message"] == ("this needs the settings.manage permission; "
                                                "your role marketer does not have it")
    for auth in (token_for(db, "admin"), {"Authorization": f"Bearer {METRICS_TOKEN}"}):
        answer = client.get("/metrics", headers=auth)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("text/plain; version=")


def _metrics(client: FlaskClient) -> str:
    return str(ok(client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})))


def _value(text: str, line: str) -> float:
    found = re.search(rf"^{re.escape(line)} (\S+)$", text, re.M)
    assert found, f"no {line!r} in:\n{text}"
    return float(found[1])


def test_metrics_match_the_database(db: Db, ops_app: Flask) -> None:
    _queue(db)
    text = _metrics(ops_app.test_client())
    assert _value(text, "nudgeflow_database_up") == 1
    for channel, status, n in QUEUE:
        assert _value(text, f'nudgeflow_messages{{channel="{channel}",status="{status}"}}') == n
    assert 295 <= _value(text, "nudgeflow_queue_oldest_due_seconds") <= 360
    assert "nudgeflow_runs_last_day" in text


def test_a_run_and_a_dispatch_show_in_the_metrics(db: Db, ops_app: Flask) -> None:
    _queue(db)
    client = ops_app.test_client()
    before = _metrics(client)
    sends = REGISTRY.get_sample_value("nudgeflow_sends_total", {"channel": "email"}) or 0.0
    requests = REGISTRY.get_sample_value("nudgeflow_provider_request_seconds_count",
                                         {"channel": "email"}) or 0.0
    channel = RecordingChannel()
    stats = dispatch(db.engine, Settings(secret_key="k"), {"email": channel, "sms": channel})
    assert stats.sent == len(channel.sent) == 3  # 1 email and 2 SMS were queued
    after = _metrics(client)
    assert _value(after, 'nudgeflow_sends_total{channel="email"}') == sends + 1
    assert _value(after, 'nudgeflow_provider_request_seconds_count{channel="email"}') \
        == requests + 1
    assert _value(after, 'nudgeflow_messages{channel="sms",status="sent"}') == 2
    assert 'nudgeflow_messages{channel="sms",status="queued"}' in before
    assert 'nudgeflow_messages{channel="sms",status="queued"}' not in after

    runs = REGISTRY.get_sample_value("nudgeflow_run_seconds_count", {"status": "failed"}) or 0.0
    run(db.engine, "ops", utcnow().date())  # its graph is empty: the run fails
    assert REGISTRY.get_sample_value("nudgeflow_run_seconds_count",
                                     {"status": "failed"}) == runs + 1
    assert _value(_metrics(client), 'nudgeflow_runs_last_day{status="failed"}') == 1


def test_json_log_lines() -> None:
    record = logging.LogRecord("nudgeflow.outbox", logging.WARNING, __file__, 1,
                               "lease of claim %s lost", ("abc",), None)
    record.claim = "abc"
    line = JsonFormatter().format(record)
    assert "\n" not in line
    out = json.loads(line)
    assert set(out) == {"time", "level", "logger", "message", "claim"}
    assert (out["level"], out["logger"], out["message"], out["claim"]) == (
        "WARNING", "nudgeflow.outbox", "lease of claim abc lost", "abc")


def test_the_worker_logs_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """With NUDGEFLOW_LOG_FORMAT=json the nudgeflow loggers print one JSON object per line."""
    from engine.cli import _EchoHandler, _report_to_stdout

    logger = logging.getLogger("nudgeflow")
    level = logger.level
    _report_to_stdout("json")
    try:
        logging.getLogger("nudgeflow.scheduler").info("run %s %s: completed", "birthday",
                                                      "2025-03-10", extra={"campaign": "birthday"})
        logging.getLogger("nudgeflow.outbox").warning("lease lost")
    finally:
        for handler in [h for h in logger.handlers if isinstance(h, _EchoHandler)]:
            logger.removeHandler(handler)
        logger.setLevel(level)
    lines = capsys.readouterr().out.splitlines()
    first, second = (json.loads(line) for line in lines)
    assert {k: first[k] for k in ("level", "logger", "message", "campaign")} == {
        "level": "INFO", "logger": "nudgeflow.scheduler",
        "message": "run birthday 2025-03-10: completed", "campaign": "birthday"}
    assert (second["level"], second["logger"], second["message"]) == (
        "WARNING", "nudgeflow.outbox", "lease lost")
    assert set(first) >= {"time", "level", "logger", "message"}
