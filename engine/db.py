"""Engine and sessions: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL via psycopg 3."""

from __future__ import annotations

import hashlib
import threading

try:
    import fcntl
except ImportError:  # not on Windows: there other processes meet on the busy timeout
    fcntl = None  # type: ignore[assignment]
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
# The page cache of each connection: SQLite's own 2 MB sends a daily run's index pages through
# the OS (at 1M customers the run took 2.26x the minimal SQL with it, 2.05x with 64 MB).
SQLITE_CACHE_MB = 64


def normalise_url(url: str) -> str:
    """Use psycopg 3 for a bare ``postgresql://`` URL."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def bucket_of(text: str | None) -> int | None:
    """A stable number 0-99 for a text: the first 32 bits of its MD5, modulo 100."""
    if text is None:
        return None
    return int(hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()[:8], 16) % 100


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the per-dialect settings nudgeflow relies on."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take over transaction control from pysqlite so BEGIN IMMEDIATE is possible.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA cache_size={-SQLITE_CACHE_MB * 1024}")
        cur.close()
        # PostgreSQL computes the same from its md5() (engine/sql.py bucket).
        dbapi_conn.create_function("nf_bucket", 1, bucket_of, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def is_sqlite(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "sqlite"


class _Writers:
    """The queue SQLite writers of one database file wait in: a mutex for the threads of this
    process, then an exclusive lock on `<database>-writer.lock` for other processes. Both wake
    the next writer the moment the writer before it is done, where SQLite's busy handler retries
    after sleeps of up to 100 ms: that stalled a dispatcher whose sender threads record while it
    claims the next batch, and dispatchers in several processes."""

    def __init__(self, database: str | None) -> None:
        self.mutex = threading.RLock()
        self.path = (f"{database}-writer.lock"
                     if database and database != ":memory:" and fcntl else None)
        self.depth = 0  # a nested write_transaction keeps the turn it has

    @contextmanager
    def turn(self) -> Iterator[None]:
        with self.mutex:
            self.depth += 1
            try:
                if self.path is None or self.depth > 1:
                    yield
                    return
                with open(self.path, "a+b") as lock:  # closing it ends the turn
                    fcntl.flock(lock, fcntl.LOCK_EX)
                    yield
            finally:
                self.depth -= 1


_WRITERS: WeakKeyDictionary[Engine, _Writers] = WeakKeyDictionary()
_WRITERS_GUARD = threading.Lock()


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it takes the write lock up front
    (BEGIN IMMEDIATE), after waiting its turn among the writers (_Writers); a writer outside
    nudgeflow still meets it on the busy timeout."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect() as conn, writing(conn):
        yield conn


@contextmanager
def writing(conn: Connection) -> Iterator[Connection]:
    """write_transaction on a connection already open (one that holds a TEMP table the
    transaction reads, say), which may have done its reading before it took its turn."""
    engine = conn.engine
    if engine.dialect.name != "sqlite":
        with conn.begin():
            yield conn
        return
    with _WRITERS_GUARD:
        writers = _WRITERS.get(engine) or _WRITERS.setdefault(
            engine, _Writers(engine.url.database))
    with writers.turn():
        conn.execution_options(sqlite_begin="IMMEDIATE")
        try:
            with conn.begin():
                yield conn
        finally:
            conn.execution_options(sqlite_begin="DEFERRED")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
