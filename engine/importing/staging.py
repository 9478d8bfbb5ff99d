"""The staging table an import streams into before anything it changes is touched: a TEMP
table on the import's own connection, filled in bounded chunks (SQLite: executemany;
PostgreSQL: COPY FROM STDIN), indexed once full. What one row cannot know (is this id
already in the file? does this customer exist?) is then asked of it in SQL, so memory does
not grow with the file."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Column, Connection, Integer, MetaData, String, Table
from sqlalchemy.schema import CreateTable

from engine.importing.shapes import Kind

NAME = "nf_import_stage"
PARTS = "nf_import_parts"  # the schema of an adopted staging file (SQLite)


@lru_cache(maxsize=64)
def insert_sql(columns: tuple[str, ...]) -> str:
    """The INSERT of rows holding these columns (SQLite)."""
    return f"INSERT INTO {NAME} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


class Stage:
    """The staging table of one import on `conn`: rowno, given, then the kind's columns."""

    def __init__(self, conn: Connection, kind: Kind) -> None:
        self.conn, self.kind = conn, kind
        self.postgres = conn.dialect.name == "postgresql"
        columns: list[Column[Any]] = [Column("rowno", BigInteger), Column("given", Integer)]
        for name in kind.columns:
            type_: Any = kind.table.c[name].type if name in kind.table.c else String()
            columns.append(Column(name, type_))
        self.table = Table(NAME, MetaData(), *columns, prefixes=["TEMPORARY"])
        self.rows = 0
        self.attached = False  # the table is in part files (adopt), not a TEMP table

    def file_ddl(self) -> str:
        """CREATE TABLE for the table in a staging file of its own (engine.importing.split)."""
        created = str(CreateTable(self.table).compile(dialect=self.conn.dialect))
        return created.replace("CREATE TEMPORARY TABLE", "CREATE TABLE", 1)

    def adopt(self, files: list[Path], cache_mb: int) -> None:
        """Take the parts' files as the staging table (SQLite): the first is attached and the
        others' rows copied into it. Outside a transaction (ATTACH cannot be in one)."""
        driver = self.conn.connection.driver_connection
        assert driver is not None and not self.conn.in_transaction()
        driver.execute(f"ATTACH DATABASE ? AS {PARTS}", (str(files[0]),))
        self.attached = True
        for file in files[1:]:
            driver.execute(f"ATTACH DATABASE ? AS {PARTS}_more", (str(file),))
            driver.execute("BEGIN")
            driver.execute(f"INSERT INTO {PARTS}.{NAME} SELECT * FROM {PARTS}_more.{NAME}")
            driver.execute("COMMIT")
            driver.execute(f"DETACH DATABASE {PARTS}_more")
        driver.execute(f"PRAGMA {PARTS}.cache_size = {-cache_mb * 1024}")
        self.rows = driver.execute(f"SELECT count(*) FROM {PARTS}.{NAME}").fetchone()[0]

    def create(self) -> None:
        self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {'' if self.postgres else 'temp.'}{NAME}")
        self.table.create(self.conn)

    def drop(self) -> None:
        """Outside a transaction."""
        if self.attached:
            self.conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                f"DETACH DATABASE {PARTS}")
            self.attached = False
            return
        self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {'' if self.postgres else 'temp.'}{NAME}")

    def load(self, rows: Sequence[Sequence[Any]], columns: tuple[str, ...]) -> None:
        """Append rows holding these columns (rowno, given, values...); the others are null."""
        if not rows:
            return
        cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            if self.postgres:
                with cursor.copy(f"COPY {NAME} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                cursor.executemany(insert_sql(columns), rows)
        finally:
            cursor.close()
        self.rows += len(rows)

    def index(self) -> None:
        """Index the full table by external id (duplicates, joins) and let the planner know
        its size (PostgreSQL's autovacuum never analyses a temporary table)."""
        schema = f"{PARTS}." if self.attached else ""
        self.conn.exec_driver_sql(
            f"CREATE INDEX {schema}{NAME}_external_id ON {NAME} (external_id, rowno)")
        if self.postgres:
            self.conn.exec_driver_sql(f"ANALYZE {NAME}")

    def duplicates(self, limit: int) -> list[Any]:
        """(rowno, external_id, rowno of its first appearance) for each later appearance of an
        id, in file order, at most `limit`."""
        return list(self.conn.exec_driver_sql(
            f"SELECT s.rowno, s.external_id, d.first FROM {NAME} s JOIN "
            f"(SELECT external_id, min(rowno) AS first FROM {NAME} GROUP BY external_id "
            f"HAVING count(*) > 1) d ON d.external_id = s.external_id "
            f"WHERE s.rowno > d.first ORDER BY s.rowno LIMIT {int(limit)}").all())

    def count_duplicates(self) -> int:
        return int(self.conn.exec_driver_sql(
            f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {NAME} "
            f"GROUP BY external_id HAVING count(*) > 1) d").scalar_one())
