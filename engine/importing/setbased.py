"""The staged rows written in a few set-based statements: the profile audit of what is about
to change, one UPDATE of the existing rows that differ (a row that would not change is not
written: its updated_at stays), one INSERT of the new ones. Each column is set only where the
row gave it (the `given` mask), an empty opt-out or consent cell keeps the stored flag, and
attributes are merged into the stored ones."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, DateTime, String, bindparam, text

from engine.audit import AUDITED
from engine.importing.shapes import CUSTOMER_BOOL, Kind
from engine.importing.staging import NAME


class Plan:
    """The SQL for one import: which staged columns to write, and how (`given`: the union and
    intersection of the rows' masks, so a column every row gave is written without a test)."""

    def __init__(self, conn: Connection, kind: Kind, any_mask: int, all_mask: int) -> None:
        self.conn, self.kind = conn, kind
        self.postgres = conn.dialect.name == "postgresql"
        self.any_mask, self.all_mask = any_mask, all_mask
        self.distinct = "IS DISTINCT FROM" if self.postgres else "IS NOT"

    def written(self) -> list[str]:
        """The staged columns some row gave (external_id and the customer link are keys)."""
        out = []
        for column in self.kind.columns:
            bit = self.kind.bits[self.kind.sets[column]]
            if column in ("external_id", "customer_external_id"):
                continue
            if self.any_mask & bit or column in CUSTOMER_BOOL:
                out.append(column)
        return out

    def new(self, column: str, old: str) -> str:
        """The value the row will hold in `column` (`old` names the stored row)."""
        if column in CUSTOMER_BOOL and self.kind.name == "customers":
            return f"coalesce(s.{column}, {old}.{column})"
        if column == "attributes":
            merged = (f"({old}.attributes || s.attributes)" if self.postgres
                      else f"json_patch({old}.attributes, s.attributes)")
            return f"CASE WHEN s.attributes IS NULL THEN {old}.attributes ELSE {merged} END"
        bit = self.kind.bits[self.kind.sets[column]]
        if self.all_mask & bit:
            return f"s.{column}"
        return f"CASE WHEN (s.given & {bit}) <> 0 THEN s.{column} ELSE {old}.{column} END"

    def differs(self, column: str, old: str) -> str:
        stored = f"{old}.{column}"
        if column == "attributes" and not self.postgres:
            stored = f"json({stored})"  # json_patch writes minified JSON
        return f"({self.new(column, old)}) {self.distinct} {stored}"

    def run(self, text_sql: str, now: datetime, source: str | None = None) -> int:
        binds: list[Any] = [bindparam("now", type_=DateTime())]
        values: dict[str, object] = {"now": now}
        if source is not None:
            binds.append(bindparam("source", type_=String()))
            values["source"] = source
        return int(self.conn.execute(text(text_sql).bindparams(*binds), values).rowcount)

    # ---- statements ----------------------------------------------------------------------

    def update(self, now: datetime, link: str = "", extra_set: str = "",
               extra_differs: str = "") -> int:
        """UPDATE the stored rows that the staged rows change; returns how many."""
        table = self.kind.table.name
        columns = self.written()
        sets = [f"{c} = {self.new(c, 't')}" for c in columns] + ([extra_set] if extra_set else [])
        differs = [self.differs(c, "t") for c in columns] + (
            [extra_differs] if extra_differs else [])
        return self.run(
            f"UPDATE {table} AS t SET {', '.join(sets)}, updated_at = :now "
            f"FROM {NAME} s {link} WHERE t.external_id = s.external_id "
            f"AND ({' OR '.join(differs)})", now)

    def insert(self, now: datetime, link: str = "", extra: tuple[str, str] | None = None) -> int:
        """INSERT the staged rows whose external id is new; returns how many."""
        table = self.kind.table.name
        names, values = ["external_id"], ["s.external_id"]
        for column in self.written():
            names.append(column)
            if column == "attributes":
                values.append("coalesce(s.attributes, '{}')")
            elif column in ("email_valid", "phone_valid", *CUSTOMER_BOOL):
                values.append(f"coalesce(s.{column}, false)")
            else:
                values.append(f"s.{column}")
        if extra is not None:
            names.append(extra[0])
            values.append(extra[1])
        names += ["created_at", "updated_at"]
        values += [":now", ":now"]
        return self.run(
            f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(values)} "
            f"FROM {NAME} s {link} WHERE NOT EXISTS "
            f"(SELECT 1 FROM {table} t WHERE t.external_id = s.external_id) "
            f"ORDER BY s.external_id", now)

    def audit(self, now: datetime, source: str) -> int:
        """One profile_changed activity per existing customer whose audited fields change,
        with each changed field's old and new value (engine.audit)."""
        fields = [f for f in AUDITED if f in self.written()]
        if not fields:
            return 0
        inner = ", ".join(f"t.{f} AS old_{f}, {self.new(f, 't')} AS new_{f}" for f in fields)
        changed = {f: f"(old_{f} {self.distinct} new_{f})" for f in fields}
        names = " || ".join(f"CASE WHEN {changed[f]} THEN ', {f}' ELSE '' END" for f in fields)
        if self.postgres:
            parts = " || ".join(
                f"CASE WHEN {changed[f]} THEN jsonb_build_object('{f}', jsonb_build_object("
                f"'old', old_{f}, 'new', new_{f})) ELSE '{{}}'::jsonb END" for f in fields)
            details = f"jsonb_build_object('source', CAST(:source AS text), 'fields', {parts})"
        else:
            def js(value: str, field: str) -> str:
                if field in CUSTOMER_BOOL:
                    return f"CASE {value} WHEN 1 THEN json('true') WHEN 0 THEN json('false') END"
                return value
            # Only the changed fields, each {"old", "new"} with its nulls kept (json_patch
            # would drop them): the members' text joined, then read back as JSON.
            parts = " || ".join(
                f"CASE WHEN {changed[f]} THEN ',\"{f}\":' || json_object("
                f"'old', {js('old_' + f, f)}, 'new', {js('new_' + f, f)}) ELSE '' END"
                for f in fields)
            details = (f"json_object('source', :source, 'fields', "
                       f"json('{{' || substr({parts}, 2) || '}}'))")
        return self.run(
            f"INSERT INTO activities (customer_id, at, kind, summary, details) "
            f"SELECT id, :now, 'profile_changed', "
            f"'Profile changed (' || :source || '): ' || substr({names}, 3), {details} "
            f"FROM (SELECT t.id, {inner} FROM {NAME} s JOIN customers t "
            f"ON t.external_id = s.external_id) c "
            f"WHERE {' OR '.join(changed.values())}", now, source)
