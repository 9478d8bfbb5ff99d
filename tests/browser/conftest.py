"""What the browser tests share: Debian's Chromium through Playwright, the app on a real port
over a SQLite file, and a world with one customer whose birthday is today."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from engine.campaigns import import_file
from engine.config import Settings
from engine.db import write_transaction
from engine.models import Base
from engine.users import create_user
from tests.conftest import Db
from tests.world import customer, insert_world

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "a long enough password"
ARTIFACTS = Path(os.environ.get("NUDGEFLOW_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / "test-artifacts"))
TODAY = date.today()
# 1992 is a leap year, so today's month and day always make a valid birth date.
BIRTHDAY = date(1992, TODAY.month, TODAY.day)
LIBRARY = {
    "version": 1,
    "segments": [{"key": "member-1y", "name": "Members for a year or more",
                  "rules": {"all": [{"field": "days_since_registration", "op": ">=",
                                     "value": 365}]}}],
    "templates": [{"key": "bday-sms", "name": "Birthday SMS", "channel": "sms",
                   "body": "Happy birthday {{ customer.first_name }}! {{ bonus.amount }} points "
                           "are yours until {{ bonus.expires_at }}."}],
    "campaigns": [],
}


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("browser tests need Debian's Chromium on PATH (apt-get install -y chromium; "
                    ".ci/run installs it)")
    return found


@dataclass(frozen=True)
class Site:
    url: str
    db: Db


def world(db: Db, tmp_path: Path) -> None:
    """Ana: birthday today, a member for years, SMS consent. Ben: birthday today, joined last
    month. Cara: another birthday. Eve: a name that is HTML."""
    Base.metadata.create_all(db.engine)
    with write_transaction(db.engine) as conn:
        create_user(conn, "mia", "marketer", PASSWORD)
        create_user(conn, "vic", "viewer", PASSWORD)
        create_user(conn, "ada", "admin", PASSWORD)
        sms = {"phone_valid": True, "marketing_consent": True}
        insert_world(conn, [
            customer("C1", first_name="Ana", last_name="Silva", birth_date=BIRTHDAY,
                     registered_at=date(2015, 1, 1), phone="+27821234567", **sms),
            customer("C2", first_name="Ben", last_name="Okafor", birth_date=BIRTHDAY,
                     registered_at=TODAY.replace(day=1), phone="+27821234568", **sms),
            customer("C3", first_name="Cara", last_name="Ng", birth_date=date(1980, 1, 1)
                     if BIRTHDAY.month != 1 else date(1980, 6, 1),
                     registered_at=date(2015, 1, 1), phone="+27821234569", **sms),
            customer("C4", first_name="<img src=x onerror=alert(1)>", last_name="<b>Eve</b>",
                     registered_at=date(2015, 1, 1)),
        ])
    library = tmp_path / "library.json"
    library.write_text(json.dumps(LIBRARY))
    import_file(db.engine, library)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    from web import create_app

    url = f"sqlite:///{tmp_path / 'nudgeflow.db'}"
    from engine.db import make_engine

    engine = make_engine(url)
    db = Db(engine, url)
    world(db, tmp_path)
    app = create_app({"NUDGEFLOW_SETTINGS": Settings(database_url=url, secret_key="k",
                                                     outbox_dir=tmp_path / "outbox")})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.server_port}", db)
    finally:
        server.shutdown()
        thread.join()
        app.extensions["nudgeflow_engine"].dispose()
        engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", lambda msg: errors.append(msg.text)
           if "Content Security Policy" in msg.text else None)
    yield tab
    context.close()
    assert errors == [], f"JavaScript errors or CSP violations on the page: {errors}"


def log_in(page: Any, site: Site, name: str = "mia") -> None:
    page.goto(f"{site.url}/login")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{site.url}/campaigns")


def node(page: Any, nid: str) -> Any:
    """A node on the canvas by its id (the boxes show titles, not ids)."""
    return page.locator(f".drawflow-node[data-nid='{nid}']")


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
