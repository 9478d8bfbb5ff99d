"""Customer and invoice import from CSV or JSON Lines: streamed, batched, all-or-nothing.

Every row is validated; valid rows are upserted in batches inside one transaction, and a single
row error rolls the whole file back after every error has been collected, so memory stays flat
and a bad file changes nothing.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, FromClause, Table, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from engine import audit
from engine.contacts import normalise_email, normalise_phone
from engine.db import write_transaction
from engine.errors import Problem, ValidationError
from engine.limits import column_problems, strict_loads, value_problems
from engine.messaging.quiet_hours import is_zone
from engine.models import Customer, Invoice, birth_mmdd

BATCH = 2000
CUSTOMER_TEXT = ("first_name", "last_name", "gender", "branch", "region", "status")
CUSTOMER_BOOL = ("email_opt_out", "sms_opt_out", "marketing_consent")
CUSTOMER_DATE = ("birth_date", "registered_at")
CUSTOMER_COLUMNS = {"external_id", "email", "phone", "timezone", *CUSTOMER_TEXT, *CUSTOMER_BOOL,
                    *CUSTOMER_DATE}
INVOICE_COLUMNS = {"external_id", "customer_external_id", "amount", "currency", "due_date", "paid_at"}
TRUE = {"yes", "y", "true", "t", "1"}
FALSE = {"no", "n", "false", "f", "0"}
NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")
ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NOT_UTF8 = re.compile("[\udc80-\udcff]")  # bytes decoded with surrogateescape


class RowError(ValueError):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(f"{column}: {message}")
        self.column = column


@dataclass
class ImportResult:
    kind: str
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    warnings: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "rows": self.rows, "inserted": self.inserted,
            "updated": self.updated, "warnings": dict(self.warnings),
        }


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


# ---- reading -------------------------------------------------------------------------------

def read_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, record) from a CSV file with a header or a JSON Lines file."""
    # Bytes that are not UTF-8 come through as lone surrogates, so the line can be named.
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        first = fh.read(1)
        fh.seek(0)
        if path.suffix.lower() in (".jsonl", ".ndjson", ".json") or first in ("{", "["):
            for number, line in enumerate(fh, start=1):
                _require_utf8(path, number, line)
                if not line.strip():
                    continue
                try:
                    record = strict_loads(line)
                except ValueError as exc:
                    raise ValidationError([Problem(f"{path}:{number}", str(exc))]) from None
                if not isinstance(record, dict):
                    raise ValidationError([Problem(f"{path}:{number}", "expected a JSON object")])
                yield number, record
            return
        yield from _csv_records(path, csv.DictReader(fh))


def _require_utf8(path: Path, line: int, text: str) -> None:
    if (found := NOT_UTF8.search(text)) is not None:
        byte = ord(found[0]) - 0xDC00
        raise ValidationError([Problem(f"{path}:{line}", f"not UTF-8 at line {line} (byte "
                                       f"0x{byte:02X}): save the file as UTF-8")],
                              title=f"{path}: not UTF-8")


def _csv_records(path: Path, reader: csv.DictReader[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        header = reader.fieldnames
        if header is None:
            raise ValidationError([Problem(str(path), "empty file: expected a header row")])
        _require_utf8(path, 1, ",".join(header))
        _check_header(path, [name.strip() for name in header])
        for record in reader:
            if None in record:
                raise ValidationError(
                    [Problem(f"{path}:{reader.line_num}", "more cells than header columns")]
                )
            _require_utf8(path, reader.line_num, ",".join(v or "" for v in record.values()))
            yield reader.line_num, {k.strip(): v for k, v in record.items() if k is not None}
    except csv.Error as exc:  # the line it failed on is not counted yet
        raise ValidationError([Problem(f"{path}:{reader.line_num + 1}", f"{exc} (a cell holds at "
                                       f"most {csv.field_size_limit() // 1024} KB)")]) from None


def _check_header(path: Path, names: list[str]) -> None:
    """A header that cannot be what the user meant: one column that holds another separator,
    or a column named twice (the last would silently win)."""
    if len(names) == 1 and (sep := next((c for c in ";\t|" if c in names[0]), None)):
        shown = names[0] if len(names[0]) <= 60 else names[0][:57] + "..."
        kind = {";": "semicolon", "\t": "tab", "|": "pipe"}[sep]
        raise ValidationError([Problem(f"{path}:1", f"the header has 1 column {shown!r}: the "
                                       f"file looks {kind}-separated; nudgeflow reads "
                                       f"comma-separated CSV")], title=f"{path}: not comma-separated")
    seen: dict[str, int] = {}
    for number, name in enumerate(names, start=1):
        if name in seen:
            raise ValidationError([Problem(f"{path}:1", f"column {name!r} appears twice in the "
                                           f"header (columns {seen[name]} and {number})")],
                                  title=f"{path}: duplicate column")
        seen[name] = number


# ---- cell parsers --------------------------------------------------------------------------

def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_text(value: Any, column: str) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, (dict, list)):
        raise RowError(column, f"expected text, got {json.dumps(value)}")
    return str(value).strip()


def parse_bool(value: Any, column: str) -> bool | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise RowError(column, f"expected yes/no/true/false/1/0, got {value!r}")


def parse_date(value: Any, column: str) -> date | None:
    if _blank(value):
        return None
    text = str(value).strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text).date()
    except ValueError:
        raise RowError(column, f"expected an ISO date (YYYY-MM-DD), got {value!r}") from None


def parse_timezone(value: Any, column: str) -> str | None:
    """An IANA time zone name (Europe/Vilnius), as the zoneinfo database knows it."""
    text = parse_text(value, column)
    if text is None:
        return None
    if not is_zone(text):
        raise RowError(column, f"unknown time zone {text!r} (expected an IANA name such as "
                               "Europe/Vilnius)")
    return text


def parse_amount(value: Any, column: str) -> Decimal | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise RowError(column, f"expected a number, got {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise RowError(column, f"expected a number, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise RowError(column, f"expected a number of at least 0, got {value!r}")
    try:
        return amount.quantize(Decimal("0.01"))
    except InvalidOperation:  # more digits than decimal's context holds
        raise RowError(column, f"number too large: {value!r}") from None


def attribute_value(value: Any) -> Any:
    """CSV cells arrive as text: a plain decimal number (no leading zeros, so client numbers
    like 007 stay text) becomes a JSON number so attribute rules compare it as a number."""
    if isinstance(value, str):
        text = value.strip()
        if NUMBER.fullmatch(text):
            number = float(text) if "." in text else int(text)
            # Beyond what JSON numbers hold in both databases: kept as the text it is.
            return number if not value_problems(number) else text
        return text
    return value


# ---- row builders ----------------------------------------------------------------------------

def customer_row(record: dict[str, Any], region: str, warnings: Counter[str]) -> dict[str, Any]:
    """Validate one customer record into column values (only the columns the record gives)."""
    row: dict[str, Any] = {}
    external_id = parse_text(record.get("external_id"), "external_id")
    if external_id is None:
        raise RowError("external_id", "required")
    row["external_id"] = external_id
    for column in CUSTOMER_TEXT:
        if column in record:
            row[column] = parse_text(record[column], column)
    for column in CUSTOMER_DATE:
        if column in record:
            row[column] = parse_date(record[column], column)
    if "timezone" in record:
        row["timezone"] = parse_timezone(record["timezone"], "timezone")
    if "birth_date" in row:
        row["birth_mmdd"] = birth_mmdd(row["birth_date"])
    for column in CUSTOMER_BOOL:
        if column in record and (flag := parse_bool(record[column], column)) is not None:
            row[column] = flag
    if "email" in record:
        email = normalise_email(parse_text(record["email"], "email"))
        row["email"], row["email_valid"] = email.value, email.valid
        if email.value is not None and not email.valid:
            warnings["invalid email"] += 1
    if "phone" in record:
        phone = normalise_phone(parse_text(record["phone"], "phone"), region)
        row["phone"], row["phone_valid"] = phone.value, phone.valid
        if phone.value is not None and not phone.valid:
            warnings["invalid phone"] += 1
        if phone.region is not None:
            warnings[f"phones had no country code and were read as {phone.region} numbers"] += 1
    row.update(attributes(record, CUSTOMER_COLUMNS))
    return row


def attributes(record: dict[str, Any], known: set[str]) -> dict[str, Any]:
    """`{"attributes": {...}}` for a record's columns beyond the known ones (empty cells left
    out, so a re-import merges them into what is stored), or {} when it has none."""
    extras = {k: v for k, v in record.items() if k not in known}
    for name in extras:
        if not ATTRIBUTE_NAME.fullmatch(name):
            raise RowError(name, "extra column names must be letters, digits and _")
    if not extras:
        return {}
    return {"attributes": {k: attribute_value(v) for k, v in extras.items() if not _blank(v)}}


def invoice_row(record: dict[str, Any]) -> dict[str, Any]:
    """Validate one invoice record into column values; other columns go to `attributes`."""
    external_id = parse_text(record.get("external_id"), "external_id")
    if external_id is None:
        raise RowError("external_id", "required")
    customer = parse_text(record.get("customer_external_id"), "customer_external_id")
    if customer is None:
        raise RowError("customer_external_id", "required")
    amount = parse_amount(record.get("amount"), "amount")
    if amount is None:
        raise RowError("amount", "required")
    due = parse_date(record.get("due_date"), "due_date")
    if due is None:
        raise RowError("due_date", "required")
    row = {"external_id": external_id, "customer_external_id": customer, "amount": amount,
           "due_date": due, "paid_at": parse_date(record.get("paid_at"), "paid_at")}
    if "currency" in record:
        currency = parse_text(record["currency"], "currency")
        if currency is not None and not re.fullmatch(r"[A-Za-z]{3}", currency):
            raise RowError("currency", f"expected a 3-letter ISO code, got {currency!r}")
        row["currency"] = currency.upper() if currency else None
    row.update(attributes(record, INVOICE_COLUMNS))
    return row


# ---- writing -------------------------------------------------------------------------------

def upsert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows, updating the given columns of those whose external_id exists."""
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        by_shape.setdefault(tuple(sorted(row)), []).append(row)
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    for columns, group in by_shape.items():
        stmt = insert(table)
        updates: dict[str, Any] = {
            c: stmt.excluded[c] for c in columns if c not in ("external_id", "attributes")
        }
        if "attributes" in columns:
            if conn.dialect.name == "postgresql":
                updates["attributes"] = table.c.attributes.op("||")(stmt.excluded.attributes)
            else:
                updates["attributes"] = func.json_patch(
                    table.c.attributes, stmt.excluded.attributes
                )
        if "updated_at" in table.c:
            updates["updated_at"] = func.now()
        conn.execute(
            stmt.on_conflict_do_update(index_elements=["external_id"], set_=updates), group
        )


def _existing(conn: Connection, table: Table, ids: Iterable[str]) -> dict[str, int]:
    rows = conn.execute(
        select(table.c.external_id, table.c.id).where(table.c.external_id.in_(list(ids)))
    )
    return {ext: pk for ext, pk in rows}


Located = tuple[str, str, dict[str, Any]]  # (where, what to call it, record)


def from_file(path: Path) -> Iterator[Located]:
    for line, record in read_records(path):
        yield f"{path}:{line}", f"line {line}", record


def from_list(records: list[Any]) -> Iterator[Located]:
    """Records sent to the API: each is named by its JSON path."""
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise ValidationError([Problem(f"$[{i}]", "expected an object")])
        yield f"$[{i}]", f"$[{i}]", record


def checked_row(table: FromClause, where: str, record: dict[str, Any],
                build: Callable[[dict[str, Any]], dict[str, Any]]
                ) -> tuple[dict[str, Any] | None, list[Problem]]:
    """A record built into a row, or the problems that stop it, each named at `where`: values
    no database can take (NUL, NaN, ...), a row error, text too long for its column."""
    if bad := value_problems(record):
        return None, [Problem(where, f"{p.where.removeprefix('$.')}: {p.message}") for p in bad]
    try:
        row = build(record)
    except RowError as exc:
        return None, [Problem(where, str(exc))]
    if too_big := column_problems(table, row):
        return None, [Problem(where, f"{c}: {m}") for c, m in too_big]
    return row, []


def _run_import(
    engine: Engine,
    records: Iterable[Located],
    title: str,
    result: ImportResult,
    table: FromClause,
    build: Callable[[dict[str, Any]], dict[str, Any]],
    write: Callable[[Connection, list[tuple[str, dict[str, Any]]], list[Problem]], None],
) -> ImportResult:
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    with write_transaction(engine) as conn:
        for chunk in batched(records, BATCH):
            good: list[tuple[str, dict[str, Any]]] = []
            for where, label, record in chunk:
                result.rows += 1
                row, found = checked_row(table, where, record, build)
                if row is None:
                    problems.extend(found)
                    continue
                if (first := seen.get(row["external_id"])) is not None:
                    problems.append(Problem(
                        where, f"external_id: {row['external_id']!r} already appears on {first}"))
                    continue
                seen[row["external_id"]] = label
                good.append((where, row))
            if good:
                write(conn, good, problems)
        if problems:
            # Raising inside the transaction rolls back every batch already written.
            raise ValidationError(problems, title=f"{title}: {len(problems)} row error(s)")
    return result


def upsert_customers(engine: Engine, records: Iterable[Located], region: str,
                     title: str = "customers", source: str = "import") -> ImportResult:
    """Validate and upsert customer records, all or nothing; changes to contact, consent and
    opt-out fields are audited (engine.audit) as coming from `source`."""
    result = ImportResult("customers")
    table = Customer.__table__

    def write(conn: Connection, rows: list[tuple[str, dict[str, Any]]], _p: list[Problem]) -> None:
        before = audit.snapshot(conn, (r["external_id"] for _, r in rows))
        result.updated += len(before)
        result.inserted += len(rows) - len(before)
        upsert(conn, table, [r for _, r in rows])  # type: ignore[arg-type]
        audit.record_changes(conn, before, source)

    return _run_import(engine, records, title, result, table,
                       lambda rec: customer_row(rec, region, result.warnings), write)


def upsert_invoices(engine: Engine, records: Iterable[Located],
                    title: str = "invoices") -> ImportResult:
    """Validate and upsert invoice records (their customers must exist), all or nothing."""
    result = ImportResult("invoices")
    table = Invoice.__table__

    def write(conn: Connection, rows: list[tuple[str, dict[str, Any]]], problems: list[Problem]) -> None:
        customers = _existing(
            conn, Customer.__table__, {r["customer_external_id"] for _, r in rows}  # type: ignore[arg-type]
        )
        ready = []
        for where, row in rows:
            owner = row.pop("customer_external_id")
            customer_id = customers.get(owner)
            if customer_id is None:
                problems.append(Problem(where, f"customer_external_id: no customer {owner!r}"))
                continue
            ready.append({**row, "customer_id": customer_id})
        existing = _existing(conn, table, (r["external_id"] for r in ready))  # type: ignore[arg-type]
        result.updated += len(existing)
        result.inserted += len(ready) - len(existing)
        if ready:
            upsert(conn, table, ready)  # type: ignore[arg-type]

    return _run_import(engine, records, title, result, table, invoice_row, write)


def import_customers(engine: Engine, path: Path, region: str) -> ImportResult:
    return upsert_customers(engine, from_file(path), region, title=str(path),
                            source=f"import {path.name}")


def import_invoices(engine: Engine, path: Path) -> ImportResult:
    return upsert_invoices(engine, from_file(path), title=str(path))
