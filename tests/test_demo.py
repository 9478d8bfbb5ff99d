"""The README's run command: `nudgeflow demo` builds a ready workspace; seed-demo data is
realistic (leap-day birthdays, bad contacts, opt-outs, paid, overdue and upcoming invoices)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from engine.models import Base, Campaign, Customer, Invoice, Message, Run
from engine.seed import seed_demo
from tests.conftest import Db


def test_seed_demo_is_realistic(db: Db) -> None:
    today = date(2026, 3, 1)
    made = seed_demo(db.engine, 600, "ZA", seed=7, today=today)
    assert made["customers"] == 600
    with db.engine.connect() as conn:
        def count(*where: object) -> int:
            return int(conn.execute(select(func.count()).select_from(Customer)
                                    .where(*where)).scalar_one())

        assert count() == 600
        assert count(Customer.birth_mmdd == 229) >= 5
        assert count(Customer.birth_mmdd == 301) >= 10  # a few birthdays "today"
        assert 5 <= count(Customer.email_valid.is_(False)) <= 60
        assert 5 <= count(Customer.phone_valid.is_(False)) <= 60
        assert 20 <= count(Customer.email_opt_out) <= 90
        assert 300 <= count(Customer.marketing_consent) <= 520
        invoices = conn.execute(select(Invoice.due_date, Invoice.paid_at)).all()
    assert len(invoices) == made["invoices"] > 500
    assert any(i.paid_at is not None for i in invoices)
    assert any(i.paid_at is None and (today - i.due_date).days >= 30 for i in invoices)
    assert any(i.paid_at is None and i.due_date > today for i in invoices)
    # The same seed gives the same data; a second seeding updates rather than duplicates.
    seed_demo(db.engine, 600, "ZA", seed=7, today=today)
    with db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Customer)).scalar_one() == 600


def test_demo_sets_up_runs_and_writes_messages(nf, db: Db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    Base.metadata.drop_all(db.engine)  # a fresh machine: the demo builds the schema itself
    result = nf("demo", "--customers", "400", "--no-wait")
    assert result.code == 0, result.err
    assert "demo data: 400 customers" in result.out
    assert "example campaigns: 6 campaigns, 4 segments, 8 templates" in result.out
    with db.engine.connect() as conn:
        keys = set(conn.execute(select(Campaign.key)).scalars())
        runs = conn.execute(select(Run.status)).scalars().all()
    assert keys == {"birthday-bonus", "past-due-blast", "installment-reminder", "spring-offer",
                    "dunning", "policy-expiry"}
    assert runs and set(runs) == {"completed"}
    outbox = tmp_path / "outbox"
    written = list(outbox.rglob("*.txt")) + list(outbox.rglob("*.eml"))
    # What is due went out; the rest waits for its time of day (a birthday SMS at 09:00), so
    # what is written depends on the hour the test runs at: count both against the outbox.
    with db.engine.connect() as conn:
        statuses = dict(conn.execute(select(Message.status, func.count())
                                     .group_by(Message.status)).all())
    assert statuses.get("sent", 0) + statuses.get("queued", 0) > 0
    assert len(written) == statuses.get("sent", 0)
    assert f"{len(written)} message(s) written to" in result.out
    if statuses.get("queued"):
        assert f"; {statuses['queued']} more wait for their send time" in result.out
    # Running it again keeps the data and adds no duplicate runs.
    again = nf("demo", "--no-wait")
    assert again.code == 0 and "demo data" not in again.out
    with db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Run)).scalar_one() == len(runs)


def test_demo_serves_the_api_with_a_printed_login(empty_db: Db, tmp_path: Path) -> None:
    """`make demo` as a user runs it: set up, print a login and a token, serve on a port."""
    import json
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root), "NUDGEFLOW_DATABASE_URL": empty_db.url,
           "NUDGEFLOW_OUTBOX_DIR": str(tmp_path / "outbox"),
           "NUDGEFLOW_INSTANCE_DIR": str(tmp_path / "instance")}
    proc = subprocess.Popen([sys.executable, "-m", "engine", "demo", "--customers", "200",
                             "--port", str(port)], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        lines = []
        while not any(line.startswith("API: curl") for line in lines):
            line = proc.stdout.readline()
            assert line, "demo exited early:\n" + "".join(lines)
            lines.append(line)
        login = next(line for line in lines if line.startswith("log in at"))
        assert login.startswith(f"log in at http://127.0.0.1:{port}/login as admin / ")
        token = lines[-1].split("Bearer ", 1)[1].split("'", 1)[0]
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/campaigns",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            keys = [c["key"] for c in json.load(answer)]
        assert keys == ["birthday-bonus", "dunning", "installment-reminder", "past-due-blast",
                        "policy-expiry", "spring-offer"]
        # The printed password opens the web app: the campaigns list and the editor.
        import http.cookiejar
        import re
        import urllib.parse

        browser = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        base = f"http://127.0.0.1:{port}"
        page = browser.open(f"{base}/login", timeout=5).read().decode()
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]  # type: ignore[index]
        form = urllib.parse.urlencode({"name": "admin", "password": login.split(" / ")[1].strip(),
                                       "csrf_token": csrf}).encode()
        with browser.open(f"{base}/login", data=form, timeout=5) as answer:
            assert answer.url == f"{base}/campaigns"
            listing = answer.read().decode()
        for name in ("Birthday bonus", "Weekly past-due email", "Installment reminder SMS"):
            assert name in listing
        editor = browser.open(f"{base}/campaigns/birthday-bonus/edit", timeout=5).read().decode()
        assert "drawflow-0.0.60/drawflow.min.js" in editor and '"key": "birthday-bonus"' in editor
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
