"""One `db` fixture, parametrized over SQLite and PostgreSQL: write each test once, run it on both."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine, text

from engine.db import make_engine
from engine.models import Base

PG_URL = os.environ.get("NUDGEFLOW_TEST_POSTGRES_URL")


@dataclass(frozen=True)
class Db:
    """A fresh, empty database: its engine and the URL another process can use."""

    engine: Engine
    url: str

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


def _require_postgres() -> str:
    if PG_URL:
        return PG_URL
    if os.environ.get("CI"):
        pytest.fail("CI=true but NUDGEFLOW_TEST_POSTGRES_URL is unset: PostgreSQL cases must run")
    pytest.skip("PostgreSQL cases need NUDGEFLOW_TEST_POSTGRES_URL (e.g. "
                "postgresql+psycopg://root@127.0.0.1:5432/test); .ci/run sets it")


def sqlite_db(tmp_path: Path) -> Iterator[Db]:
    url = f"sqlite:///{tmp_path / 'nudgeflow.db'}"
    engine = make_engine(url)
    yield Db(engine, url)
    engine.dispose()


def postgres_db(create: bool = True) -> Iterator[Db]:
    """A private schema on the test server, dropped afterwards."""
    base = _require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    url = f"{base}{sep}options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    try:
        yield Db(engine, url)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    """A database with no tables, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield from sqlite_db(tmp_path)
    else:
        yield from postgres_db()


@pytest.fixture
def db(empty_db: Db) -> Db:
    """A database with the current schema, on SQLite and on PostgreSQL."""
    Base.metadata.create_all(empty_db.engine)
    return empty_db


@pytest.fixture
def cli_env(db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for running `nudgeflow` against the test database."""
    env = {"NUDGEFLOW_DATABASE_URL": db.url, "NUDGEFLOW_OUTBOX_DIR": str(tmp_path / "outbox"),
           "NUDGEFLOW_DEFAULT_REGION": "ZA", "NUDGEFLOW_TIMEZONE": "UTC"}
    for key in list(os.environ):
        if key.startswith("NUDGEFLOW_") and key != "NUDGEFLOW_TEST_POSTGRES_URL":
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def nf(cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run `nudgeflow ARGS...` in-process against the test database."""
    from engine.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def app(db: Db) -> Iterator[Flask]:
    """The web app over the test database: a user per role, and C1 (Ana, whose name is HTML)."""
    from datetime import date

    from engine.config import Settings
    from engine.db import write_transaction
    from engine.users import create_user
    from tests.webapp import PASSWORD, ROLES
    from tests.world import customer, insert_world
    from web import create_app

    with write_transaction(db.engine) as conn:
        for role in ROLES:
            create_user(conn, role, role, PASSWORD)
        insert_world(conn, [customer("C1", first_name="<b>Ana</b>", birth_date=date(1990, 3, 10),
                                     registered_at=date(2020, 1, 1), phone="+27821234567",
                                     phone_valid=True, marketing_consent=True)])
    app = create_app({"NUDGEFLOW_SETTINGS": Settings(database_url=db.url, secret_key="k"),
                      "TESTING": True})
    yield app
    app.extensions["nudgeflow_engine"].dispose()


