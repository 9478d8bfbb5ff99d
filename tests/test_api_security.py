"""What an attacker tried: an open redirect after login, huge request bodies, formulas in CSV
exports, and concurrent token clients making SQLite answer "database is locked"."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import select

from engine.csvcells import safe_cell
from engine.db import make_engine, write_transaction
from engine.models import ApiToken
from engine.schema import upgrade
from engine.users import create_token, create_user
from tests.conftest import Db
from tests.webapp import PASSWORD, birthday_run, ok, token_for
from tests.world import customer, insert_world
from web.auth import local_target

BYPASSES = ["/%09/evil.example", "//evil.example", "/\\evil.example", "/%5Cevil.example",
            "https://evil.example", "https:evil.example", "/%2F%2Fevil.example",
            "/%252F%252Fevil.example", "%2F%2Fevil.example", "javascript:alert(1)",
            "/%0d%0a//evil.example", "/%20/evil.example", "http://127.0.0.1@evil.example",
            "///evil.example", "\\\\evil.example", "evil.example"]


def login_redirect(app: Flask, raw_next: str) -> str:
    client = app.test_client()
    page = ok(client.get("/login"))
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = client.post(f"/login?next={raw_next}", data={
        "name": "viewer", "password": PASSWORD, "csrf_token": csrf})
    assert answer.status_code == 302, raw_next
    return str(answer.headers["Location"])


def test_login_never_redirects_off_site(app: Flask) -> None:
    for raw_next in BYPASSES:
        location = login_redirect(app, raw_next)
        assert location == "/", (raw_next, location)


def test_login_keeps_a_local_next_page(app: Flask) -> None:
    assert login_redirect(app, "/customers/C1%3Fx") == "/customers/C1?x"
    assert login_redirect(app, "/customers?q=ana") == "/customers?q=ana"
    assert login_redirect(app, "%2Fcustomers%3Fq%3Dana%26page%3D2") == "/customers?q=ana&page=2"


def test_local_target_reads_like_a_browser() -> None:
    for text in ("/\t/evil.example", "/\r\n/evil.example", "/\\evil.example", "//evil.example",
                 "/ /evil.example", "/\u2028/evil.example", "/\x7f/x", "javascript:x", "",
                 None, "/%2F%2Fevil.example", "/%5C/evil.example", "https://evil.example/"):
        assert local_target(text) == "/", text
        assert not urlsplit(local_target(text)).netloc
    assert local_target("/runs?campaign=birthday-bonus") == "/runs?campaign=birthday-bonus"


def test_request_bodies_over_the_limit_get_413(app: Flask, db: Db) -> None:
    client, auth = app.test_client(), token_for(db, "marketer")
    limit = app.config["MAX_CONTENT_LENGTH"]
    assert limit == 16 * 1024 * 1024
    # 10,000 full customer records (the bulk maximum) fit with room to spare.
    records = [{"external_id": f"X{n:07d}", "first_name": "Aimee", "last_name": "Jones-Smith",
                "email": f"aimee.jones.{n}@example.com", "phone": "+27821234567",
                "gender": "f", "birth_date": "1990-03-10", "registered_at": "2020-01-01",
                "branch": "Cape Town Central", "region": "Western Cape", "status": "active",
                "email_opt_out": False, "sms_opt_out": False, "marketing_consent": True,
                "loyalty_tier": "gold", "note": "x" * 400} for n in range(10_000)]
    body = json.dumps({"records": records}).encode()
    assert len(body) < limit // 2
    done = ok(client.post("/api/v1/customers/bulk", data=body, headers=auth,
                          content_type="application/json"))
    assert (done["rows"], done["inserted"]) == (10_000, 10_000)
    # One byte over the limit: refused before it is read, in the API's error shape.
    big = b'{"records": [' + b" " * (limit - 14) + b"]}"
    assert len(big) == limit + 1
    answer = client.post("/api/v1/customers/bulk", data=big, headers=auth,
                         content_type="application/json")
    error = ok(answer, 413)["error"]
    assert error["code"] == "too_large"
    assert "16 MB" in error["message"] and "NUDGEFLOW_MAX_REQUEST_MB" in error["message"]
    assert ok(client.get("/api/v1/customers?per_page=1", headers=auth))["total"] == 10_001
    # Pages get the same limit, as a page.
    page = client.post("/login", data=b"name=" + b"a" * limit,
                       content_type="application/x-www-form-urlencoded")
    assert page.status_code == 413 and "NUDGEFLOW_MAX_REQUEST_MB" in page.get_data(as_text=True)


def test_the_limit_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.config import load_settings
    from engine.errors import ConfigError

    assert load_settings({"NUDGEFLOW_MAX_REQUEST_MB": "64"}).max_request_mb == 64
    for bad in ("0", "2000", "lots"):
        with pytest.raises(ConfigError, match="NUDGEFLOW_MAX_REQUEST_MB"):
            load_settings({"NUDGEFLOW_MAX_REQUEST_MB": bad})


FORMULA = '=HYPERLINK("http://x","y")'


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised() -> None:
    for text in (FORMULA, "+1+1", "-1+1", "@SUM(A1)", "\t=1", "\r=1", "-2-cmd|' /C calc'!A0",
                 "+27 82", "=1", "-", "+", "-1e5", "- 1"):
        assert safe_cell(text) == "'" + text
    for value in (-5, Decimal("-12.50"), -0.5, 0, "Ana", "a=b", "", "'quoted", "-12.50",
                  "+27821234567", "-7", "1-1"):
        assert safe_cell(value) == value
    assert safe_cell(None) == ""


def test_every_csv_is_written_through_the_safe_writer() -> None:
    """A new export cannot forget the neutralising: csv.writer appears in engine.csvcells only."""
    root = Path(__file__).resolve().parent.parent
    writers = [str(path.relative_to(root)) for package in ("engine", "web", "nodes")
               for path in (root / package).rglob("*.py")
               if "csv.writer(" in path.read_text() or "csv.DictWriter(" in path.read_text()]
    assert writers == ["engine/csvcells.py"]


def test_csv_exports_neutralise_formulas(app: Flask, db: Db) -> None:
    client, auth = app.test_client(), token_for(db, "marketer")
    ok(client.put("/api/v1/customers/C1", headers=auth,
                  json={"first_name": FORMULA, "last_name": "-Smith"}))
    birthday_run(client, auth)
    segment = ok(client.get("/api/v1/segments/member-1y/export.csv?date=2025-03-10",
                            headers=auth))
    assert list(csv.reader(io.StringIO(segment))) == [
        ["external_id", "first_name", "last_name", "email", "phone"],
        ["C1", "'" + FORMULA, "'-Smith", "", "+27821234567"]]
    [run] = ok(client.get("/api/v1/runs", headers=auth))
    rows = list(csv.DictReader(io.StringIO(
        ok(client.get(f"/api/v1/runs/{run['id']}/export.csv", headers=auth)))))
    assert {(r["first_name"], r["last_name"], r["effect"], r["points"]) for r in rows} == {
        ("'" + FORMULA, "'-Smith", "bonus", "100"), ("'" + FORMULA, "'-Smith", "message", "")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_concurrent_token_clients_on_sqlite_get_no_5xx(tmp_path: Path) -> None:
    """The real server (`nudgeflow serve`) on a SQLite file: 8 clients, each with its own
    token, 50 GETs each over several lists at once. Every answer is 200."""
    url = f"sqlite:///{tmp_path / 'nudgeflow.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with write_transaction(engine) as conn:
        create_user(conn, "reader", "viewer", PASSWORD)
        tokens = [create_token(conn, "reader", f"client {n}") for n in range(8)]
        insert_world(conn, [customer(f"C{n}") for n in range(1, 30)])
    port = free_port()
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root), "NUDGEFLOW_DATABASE_URL": url,
           "NUDGEFLOW_SECRET_KEY": "k", "NUDGEFLOW_OUTBOX_DIR": str(tmp_path / "outbox"),
           "NUDGEFLOW_INSTANCE_DIR": str(tmp_path / "instance")}
    server = subprocess.Popen([sys.executable, "-m", "engine", "serve", "--port", str(port)],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    paths = ["/api/v1/customers?per_page=10&page=2", "/api/v1/runs?limit=5",
             "/api/v1/messages?limit=5&offset=0", "/api/v1/campaigns",
             "/api/v1/customers/C1/activity?limit=10", "/api/v1/customers/C2"]
    statuses: list[int] = []
    lock = threading.Lock()

    def client(token: str) -> None:
        for n in range(50):
            request = urllib.request.Request(base + paths[n % len(paths)],
                                             headers={"Authorization": f"Bearer {token}"})
            try:
                with urllib.request.urlopen(request, timeout=60) as answer:
                    status = answer.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:  # no answer within the timeout
                status = 0
            with lock:
                statuses.append(status)

    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)
                break
            except OSError:
                assert server.poll() is None, server.communicate()[1]
                time.sleep(0.1)
        threads = [threading.Thread(target=client, args=(t,)) for t in tokens]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=10)
    assert len(statuses) == 400
    assert sorted(set(statuses)) == [200], {s: statuses.count(s) for s in set(statuses)}
    assert "database is locked" not in errors
    with engine.connect() as conn:  # each token's use was still recorded
        used = conn.execute(select(ApiToken.last_used_at)).scalars().all()
    assert len(used) == 8 and all(used)
    engine.dispose()
