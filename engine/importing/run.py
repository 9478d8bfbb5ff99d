"""An import, all or nothing: every record is checked and streamed into a staging table in
bounded chunks (memory stays flat whatever the file's size), the checks that need the whole
file or the database run in SQL, and only a file without a single row error is written, in
one transaction, set-based. Every row error is reported (the first MAX_LISTED of them listed,
with a count of the rest)."""

from __future__ import annotations

import bisect
import multiprocessing
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from engine.db import SQLITE_CACHE_MB, writing
from engine.errors import Problem, ValidationError
from engine.importing.parsing import Chunks, Parsed, parse, parse_apart
from engine.importing.progress import Progress
from engine.importing.reading import Source, from_file
from engine.importing.setbased import Plan
from engine.importing.shapes import CUSTOMERS, INVOICES, Kind
from engine.importing.split import Staged, cut, read_parts
from engine.importing.staging import NAME, Stage
from engine.models.base import utcnow

MAX_LISTED = 1000  # row errors listed; the rest are counted
CACHE_MB = SQLITE_CACHE_MB  # SQLite's page cache while importing, for the stage and the tables
APART_BYTES = 4 << 20  # a file this big is read in child processes (if there are 2+ cores)
PARTS = 2  # a big CSV file is read in this many parts at once


@dataclass
class ImportResult:
    kind: str
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    warnings: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "rows": self.rows, "inserted": self.inserted,
            "updated": self.updated, "unchanged": self.unchanged,
            "warnings": dict(self.warnings),
        }


class Problems:
    """Row errors in row order: the first MAX_LISTED kept, all of them counted."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.listed: list[tuple[int, int, str]] = []  # (row, order, message)
        self.count = 0

    def add(self, row: int, message: str) -> None:
        self.count += 1
        entry = (row, self.count, message)
        if len(self.listed) < MAX_LISTED:
            bisect.insort(self.listed, entry)
        elif entry < self.listed[-1]:
            bisect.insort(self.listed, entry)
            self.listed.pop()

    def error(self, title: str) -> ValidationError:
        problems = [Problem(self.source.where(row), message) for row, _, message in self.listed]
        if self.count > len(problems):
            problems.append(Problem("", f"... and {self.count - len(problems):,} more row "
                                        "error(s) not listed"))
        return ValidationError(problems, title=f"{title}: {self.count} row error(s)")


def run_import(engine: Engine, source: Source, kind: Kind, title: str, *, region: str = "",
               audit_source: str = "import", progress: Progress | None = None,
               apart: bool = False) -> ImportResult:
    """Import `source` as `kind`, all or nothing; raises ValidationError with every row error.
    `apart`: read and check the records in a child process (parsing.parse_apart)."""
    result = ImportResult(kind.name)
    problems = Problems(source)
    progress = progress or Progress(title)
    with engine.connect() as conn, stage_cache(conn), tempfile.TemporaryDirectory(
            prefix="nudgeflow-import-") as folder:
        stage = Stage(conn, kind)
        parsed = Parsed(warnings=result.warnings)
        try:
            path = source.path if apart else None
            cuts = cut(path, PARTS) if path is not None else None
            if path is not None and cuts is not None and not stage.postgres:
                # SQLite: the parts read into files of their own, then taken as the stage
                staged = Staged([])
                _read(read_parts(path, *cuts, kind, region, Path(folder), stage.file_ddl(),
                                 parsed, staged), stage, problems, progress, parsed)
                stage.adopt(staged.files, CACHE_MB)
            elif path is not None and cuts is not None:  # PostgreSQL: rows copied as they come
                with conn.begin():
                    stage.create()
                    _read(read_parts(path, *cuts, kind, region, None, "", parsed, Staged([])),
                          stage, problems, progress, parsed)
            else:
                with conn.begin():  # writes only the TEMP table: no lock on the database yet
                    stage.create()
                    _read((parse_apart if apart else parse)(source, kind, region, parsed),
                          stage, problems, progress, parsed)
            with conn.begin():
                result.rows = parsed.rows
                progress.phase("checking", result.rows)
                stage.index()
                twice = stage.duplicates(MAX_LISTED)
                for row, external_id, first in twice:
                    problems.add(row, f"external_id: {external_id!r} already appears on "
                                      f"{source.label(first)}")
                if len(twice) == MAX_LISTED:
                    problems.count += stage.count_duplicates() - len(twice)
            with writing(conn):
                plan = Plan(conn, kind, parsed.any_mask, parsed.all_mask)
                if kind is INVOICES:
                    _unknown_customers(conn, problems)
                if problems.count:
                    raise problems.error(title)
                progress.phase("writing", result.rows)
                now = utcnow()
                if kind is CUSTOMERS:
                    plan.audit(now, audit_source)
                    result.updated = plan.update(now)
                    result.inserted = plan.insert(now)
                else:
                    link = "JOIN customers c ON c.external_id = s.customer_external_id"
                    distinct = "IS DISTINCT FROM" if plan.postgres else "IS NOT"
                    result.updated = plan.update(now, link, "customer_id = c.id",
                                                 f"t.customer_id {distinct} c.id")
                    result.inserted = plan.insert(now, link, ("customer_id", "c.id"))
                result.unchanged = stage.rows - result.inserted - result.updated
        finally:
            progress.close()
            if conn.in_transaction():
                conn.rollback()
            stage.drop()
            conn.commit()
    return result


def _read(chunks: Chunks, stage: Stage, problems: Problems, progress: Progress,
          parsed: Parsed) -> None:
    with closing(chunks):
        for rows, found, columns in chunks:
            for row, message in found:
                problems.add(row, message)
            stage.load(rows, columns)
            progress.update(parsed.done, parsed.rows)


@contextmanager
def stage_cache(conn: Connection) -> Iterator[None]:
    """On SQLite, a page cache of CACHE_MB for the staging table and as much for the tables
    written (the default 2 MB would send most pages of a big import through the OS)."""
    if conn.dialect.name != "sqlite":
        yield
        return
    before = conn.exec_driver_sql("PRAGMA main.cache_size").scalar_one()
    for schema in ("main", "temp"):
        conn.exec_driver_sql(f"PRAGMA {schema}.cache_size = {-CACHE_MB * 1024}")
    conn.commit()
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA main.cache_size = {int(before)}")
        conn.commit()


def _unknown_customers(conn: Any, problems: Problems) -> None:
    # A later appearance of an id is reported as a duplicate, not again here.
    query = (f"FROM {NAME} s WHERE NOT EXISTS (SELECT 1 FROM customers c "
             f"WHERE c.external_id = s.customer_external_id) AND NOT EXISTS (SELECT 1 FROM "
             f"{NAME} f WHERE f.external_id = s.external_id AND f.rowno < s.rowno)")
    found = conn.exec_driver_sql(
        f"SELECT s.rowno, s.customer_external_id {query} ORDER BY s.rowno LIMIT {MAX_LISTED}"
    ).all()
    for row, owner in found:
        problems.add(row, f"customer_external_id: no customer {owner!r}")
    if len(found) == MAX_LISTED:
        problems.count += conn.exec_driver_sql(f"SELECT count(*) {query}").scalar_one() - len(found)


def upsert_customers(engine: Engine, records: Source, region: str, title: str = "customers",
                     source: str = "import", progress: Progress | None = None,
                     apart: bool = False) -> ImportResult:
    """Validate and upsert customer records, all or nothing; changes to contact, consent and
    opt-out fields are audited (engine.audit) as coming from `source`."""
    return run_import(engine, records, CUSTOMERS, title, region=region, audit_source=source,
                      progress=progress, apart=apart)


def upsert_invoices(engine: Engine, records: Source, title: str = "invoices",
                    progress: Progress | None = None, apart: bool = False) -> ImportResult:
    """Validate and upsert invoice records (their customers must exist), all or nothing."""
    return run_import(engine, records, INVOICES, title, progress=progress, apart=apart)


def _apart(path: Path) -> bool:
    """Read a big file in a child process where there is a second core to run it on."""
    return (path.stat().st_size >= APART_BYTES and (os.cpu_count() or 1) > 1
            and "fork" in multiprocessing.get_all_start_methods())


def import_customers(engine: Engine, path: Path, region: str,
                     progress: Progress | None = None) -> ImportResult:
    return upsert_customers(engine, from_file(path), region, title=str(path),
                            source=f"import {path.name}", progress=progress, apart=_apart(path))


def import_invoices(engine: Engine, path: Path, progress: Progress | None = None) -> ImportResult:
    return upsert_invoices(engine, from_file(path), title=str(path), progress=progress,
                           apart=_apart(path))
