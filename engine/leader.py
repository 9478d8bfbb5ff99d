"""One scheduler leader among the processes that share a database.

Every `serve` and `worker` process dispatches messages (claims keep that exactly once), but only
the leader runs campaigns: two schedulers would each run every catch-up date, doubling the
work. The leader holds a lock that dies with its process, so another takes over when it stops:
on PostgreSQL a session advisory lock on a connection of its own (the server drops it when the
connection ends, kill -9 included); on SQLite an exclusive lock on `<database>-scheduler.lock`
(the kernel drops it when the process ends)."""

from __future__ import annotations

from typing import IO, Protocol

try:
    import fcntl
except ImportError:  # not on Windows: there every process schedules
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

# pg_try_advisory_lock(key1, key2): key1 is "nfsc" (nudgeflow scheduler), key2 the schema, so two
# workspaces in one database (and parallel test schemas) each get their own leader.
PG_LOCK = "SELECT pg_try_advisory_lock(1852207971, hashtext(current_schema()))"
PG_UNLOCK = "SELECT pg_advisory_unlock(1852207971, hashtext(current_schema()))"


class Leadership(Protocol):
    def acquire(self) -> bool:
        """Try once, without waiting, to lead; True while this process leads. Called again
        by the leader, it checks that the lock is still held (a lost connection loses it)."""

    def release(self) -> None:
        """Stop leading, so another process can take over at once."""


class PostgresLeadership:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn: Connection | None = None
        self.held = False

    def acquire(self) -> bool:
        try:
            if self.conn is None:
                self.conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            if self.held:  # the lock lives as long as the session: is it still there?
                self.conn.execute(text("SELECT 1"))
            else:
                self.held = bool(self.conn.execute(text(PG_LOCK)).scalar())
        except DBAPIError:
            self.release()
        return self.held

    def release(self) -> None:
        if self.conn is not None:
            if self.held:
                # Unlocked at once: the server frees a closed session's locks only when its
                # backend has ended, a moment after the socket closes.
                try:
                    self.conn.execute(text(PG_UNLOCK))
                except SQLAlchemyError:
                    pass  # the connection is gone, and its lock with it
            # Closing the session frees the lock for good; a pooled one would keep it.
            self.conn.invalidate()
            self.conn.close()
            self.conn = None
        self.held = False


class FileLeadership:
    def __init__(self, path: str) -> None:
        self.path = path
        self.file: IO[bytes] | None = None

    def acquire(self) -> bool:
        if self.file is not None:
            return True
        file = open(self.path, "a+b")  # held open while this process leads
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            return False
        self.file = file
        return True

    def release(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class SoleLeadership:
    """An in-memory database (or no file locks): no other process can share it."""

    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass


def leadership_for(engine: Engine) -> Leadership:
    if engine.dialect.name == "postgresql":
        return PostgresLeadership(engine)
    database = engine.url.database
    if database in (None, "", ":memory:") or fcntl is None:
        return SoleLeadership()
    return FileLeadership(f"{database}-scheduler.lock")
