"""The staging table an import streams into before anything it changes is touched: a TEMP
table on the import's own connection, filled in bounded chunks (SQLite: executemany;
PostgreSQL: COPY FROM STDIN), indexed once full. What one row cannot know (is this id
already in the file? does this customer exist?) is then asked of it in SQL, so memory does
not grow with the file."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Column, Connection, Integer, MetaData, String, Table

from engine.importing.shapes import Kind

NAME = "nf_import_stage"


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
        names = ", ".join(c.name for c in columns)
        self._insert = f"INSERT INTO {NAME} ({names}) VALUES ({', '.join('?' * len(columns))})"
        self._copy = f"COPY {NAME} ({names}) FROM STDIN"
        self.rows = 0

    def create(self) -> None:
        self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {'' if self.postgres else 'temp.'}{NAME}")
        self.table.create(self.conn)

    def drop(self) -> None:
        self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {'' if self.postgres else 'temp.'}{NAME}")

    def load(self, rows: Sequence[Sequence[Any]]) -> None:
        """Append rows (rowno, given, values...)."""
        if not rows:
            return
        cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            if self.postgres:
                with cursor.copy(self._copy) as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                cursor.executemany(self._insert, rows)
        finally:
            cursor.close()
        self.rows += len(rows)

    def index(self) -> None:
        """Index the full table by external id (duplicates, joins) and let the planner know
        its size (PostgreSQL's autovacuum never analyses a temporary table)."""
        self.conn.exec_driver_sql(f"CREATE INDEX {NAME}_external_id ON {NAME} (external_id, rowno)")
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
