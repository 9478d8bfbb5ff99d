"""What a batch of records becomes in the staging table: one list of values per staging
column, in a fixed order, with a bit mask of the columns the records gave (a column they did
not give keeps the stored value; one given empty is set to null). A batch's records share
their fields, so the work of deciding what to do with each field is done once per batch, and
each column is read in one pass (a quick form for the cells a file nearly always holds, the
cell parsers of engine.importing.cells for the rest)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Table

from engine.contacts import normalise_emails, normalise_phones
from engine.importing.cells import (
    FLAGS,
    NUMBER,
    RowError,
    _blank,
    attribute_value,
    check_attribute_names,
    parse_amount,
    parse_bool,
    parse_currency,
    parse_date,
    parse_text,
    parse_timezone,
)
from engine.limits import column_length
from engine.messaging.quiet_hours import is_zone
from engine.models import Customer, Invoice

CUSTOMER_TEXT = ("first_name", "last_name", "gender", "branch", "region", "status")
CUSTOMER_BOOL = ("email_opt_out", "sms_opt_out", "marketing_consent")
CUSTOMER_DATE = ("birth_date", "registered_at")
CUSTOMER_COLUMNS = frozenset({"external_id", "email", "phone", "timezone", *CUSTOMER_TEXT,
                              *CUSTOMER_BOOL, *CUSTOMER_DATE})
INVOICE_COLUMNS = frozenset({"external_id", "customer_external_id", "amount", "currency",
                             "due_date", "paid_at"})
MAX_AMOUNT = Decimal(10) ** 12  # Numeric(14, 2): 12 digits before the point
CENT = Decimal("0.01")

Column = list[Any] | None  # a staging column's values for the batch (None: all null)
Build = Callable[["Cells"], list[Column]]


class Cells:
    """One batch's cells by field, and the row errors found in them: (row index, message)."""

    def __init__(self, keys: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.count = len(rows)
        self.by_field = (dict(zip(keys, zip(*rows, strict=True), strict=True)) if rows
                         else dict.fromkeys(keys, ()))
        self.errors: list[tuple[int, str]] = []

    def each(self, field: str, quick: Callable[[Any], Any],
             parse: Callable[[Any, str], Any],
             whole: Callable[[Sequence[Any]], list[Any]] | None = None) -> list[Any]:
        """The field's cells read by `whole` (the column in one go) or `quick` (a cell at a
        time); if that raises, each cell `quick` cannot read is read by `parse`, and a
        RowError from that is the row's error (its value: None)."""
        cells = self.by_field[field]
        try:
            return whole(cells) if whole is not None else list(map(quick, cells))
        except Exception:
            pass
        out: list[Any] = []
        for i, cell in enumerate(cells):
            try:
                out.append(quick(cell))
            except Exception:
                try:
                    out.append(parse(cell, field))
                except RowError as exc:
                    self.errors.append((i, str(exc)))
                    out.append(None)
        return out

    def text(self, field: str) -> list[str | None]:
        return self.each(field, _text, parse_text, _texts)

    def required(self, field: str, parse: Callable[[Any, str], Any] = parse_text,
                 quick: Callable[[Any], Any] | None = None) -> list[Any]:
        before = len(self.errors)
        if field not in self.by_field:
            values: list[Any] = [None] * self.count
        elif quick is None:
            values = self.each(field, _text, parse, _texts)
        else:
            values = self.each(field, quick, parse)
        if None in values:
            failed = {i for i, _ in self.errors[before:]}
            self.errors.extend((i, f"{field}: required") for i, v in enumerate(values)
                               if v is None and i not in failed)
        return values

    def dates(self, field: str) -> list[str | None]:
        """ISO dates (YYYY-MM-DD)."""
        return self.each(field, _date, _parse_date, _dates)

    def too_long(self, out: list[Column], limits: list[tuple[int, str, int]]) -> None:
        """A row error for each value longer than its column (every one of the row)."""
        for i, column, most in limits:
            values = out[i]
            if values is None or max(map(len, filter(None, values)), default=0) <= most:
                continue
            self.errors.extend((j, f"{column}: at most {most} characters, got {len(v)}")
                               for j, v in enumerate(values) if v is not None and len(v) > most)

    def attributes(self, extras: list[str]) -> list[str | None]:
        """Each row's non-empty extra columns as a JSON object (what json.dumps writes,
        written directly for text and numbers: json.dumps sets up an encoder on every call)."""
        try:  # text cells (a CSV file): each column's members, then each row's
            members = [[_member(key, cell) for cell in self.by_field[name]]
                       for name, key in zip(extras, map(_quote, extras), strict=True)]
        except AttributeError:  # JSON values: each row as a whole
            return [_object(extras, row)
                    for row in zip(*(self.by_field[k] for k in extras), strict=True)]
        if len(members) == 1:
            return ["{}" if m is None else "{" + m + "}" for m in members[0]]
        return ["{" + ", ".join(filter(None, row)) + "}" for row in zip(*members, strict=True)]


def _member(key: str, cell: str) -> str | None:
    """`"key": value` for a text cell (None when empty)."""
    text = cell.strip()
    if not text:
        return None
    if NUMBER.fullmatch(text) and type(value := attribute_value(text)) is not str:
        return f"{key}: {value!r}"
    return f"{key}: {_quote(text)}"


def _object(extras: list[str], values: Sequence[Any]) -> str:
    return json.dumps({k: attribute_value(v) for k, v in zip(extras, values, strict=True)
                       if not _blank(v)})


def _text(cell: str) -> str | None:
    return cell.strip() or None  # not text (None, a JSON value): parse_text decides


def _texts(cells: Sequence[str]) -> list[str | None]:
    return [cell.strip() or None for cell in cells]


def _date(cell: str) -> str | None:
    if cell:
        return date.fromisoformat(cell).isoformat() if len(cell) == 10 else _raise()
    return None if cell == "" else _raise()


def _dates(cells: Sequence[str]) -> list[str | None]:
    """A column of dates written YYYY-MM-DD (or empty) as they are; anything else raises."""
    return [cell if len(cell) == 10 and cell[4] == "-" == cell[7] and cell.isascii()
            and date.fromisoformat(cell) else None if cell == "" else _raise()
            for cell in cells]


def _parse_date(cell: Any, column: str) -> str | None:
    day = parse_date(cell, column)
    return None if day is None else day.isoformat()


def _flags(cells: Sequence[str]) -> list[bool | None]:
    return [FLAGS[cell.strip().lower()] for cell in cells]


def _flag(cell: str) -> bool | None:
    return FLAGS[cell.strip().lower()]


def _currency(cell: str) -> str | None:
    code = cell.strip()
    if len(code) == 3 and code.isascii() and code.isalpha():
        return code.upper()
    return None if code == "" else _raise()


@lru_cache(maxsize=1024)
def _zone(cell: str) -> str | None:
    return cell.strip() if is_zone(cell.strip()) else _raise()


def _raise() -> Any:
    raise ValueError


@dataclass(frozen=True)
class Kind:
    """One kind of import: its table, the staging columns in order, which record field sets
    which bit of the `given` mask, and a builder for each set of record fields."""

    name: str
    table: Table
    columns: tuple[str, ...]
    bits: dict[str, int]  # record field -> bit
    sets: dict[str, str]  # staging column -> the record field whose bit says it was given
    make: Callable[[tuple[str, ...], str, Counter[str]], Build]

    def mask(self, keys: tuple[str, ...]) -> int:
        mask = 0
        for key in keys:
            mask |= self.bits.get(key, self.bits["attributes"])
        return mask


def _limits(table: Table, columns: tuple[str, ...], given: set[str] | None = None
            ) -> list[tuple[int, str, int]]:
    """(index, column, most characters) of the text columns (those `given`, if named)."""
    return [(i, c, n) for i, c in enumerate(columns)
            if c in table.c and (n := column_length(table.c[c])) is not None
            and (given is None or c in given or c == "external_id")]


def _extras(keys: tuple[str, ...], known: frozenset[str]
            ) -> tuple[list[str], RowError | None]:
    extras = [k for k in keys if k not in known]
    try:
        check_attribute_names(extras)
    except RowError as exc:
        return extras, exc
    return extras, None


_quote = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


# ---- customers -----------------------------------------------------------------------------

C_COLUMNS = ("external_id", *CUSTOMER_TEXT, "birth_date", "birth_mmdd", "registered_at",
             "timezone", *CUSTOMER_BOOL, "email", "email_valid", "phone", "phone_valid",
             "attributes")
C_BITS = {name: 1 << i for i, name in enumerate(
    ("external_id", *CUSTOMER_TEXT, *CUSTOMER_DATE, "timezone", *CUSTOMER_BOOL, "email",
     "phone", "attributes"))}
C_SETS = {**{c: c for c in C_COLUMNS}, "birth_mmdd": "birth_date", "email_valid": "email",
          "phone_valid": "phone"}
C_INDEX = {name: i for i, name in enumerate(C_COLUMNS)}


def customer_builder(keys: tuple[str, ...], region: str, warnings: Counter[str]) -> Build:
    """The builder for batches of customer records with these fields."""
    present = set(keys)
    texts = [(C_INDEX[c], c) for c in CUSTOMER_TEXT if c in present]
    flags = [(C_INDEX[c], c) for c in CUSTOMER_BOOL if c in present]
    extras, bad_name = _extras(keys, CUSTOMER_COLUMNS)
    limits = _limits(Customer.__table__, C_COLUMNS, present)  # type: ignore[arg-type]
    assumed = f"phones had no country code and were read as {region} numbers"

    def build(cells: Cells) -> list[Column]:
        out: list[Column] = [None] * len(C_COLUMNS)
        out[0] = cells.required("external_id")
        for i, c in texts:
            out[i] = cells.text(c)
        if "birth_date" in present:
            days = out[7] = cells.dates("birth_date")
            out[8] = [None if d is None else int(d[5:7] + d[8:]) for d in days]
        if "registered_at" in present:
            out[9] = cells.dates("registered_at")
        if "timezone" in present:
            out[10] = cells.each("timezone", _zone, parse_timezone)
        for i, c in flags:
            out[i] = cells.each(c, _flag, parse_bool, _flags)
        if "email" in present:
            out[14], out[15], invalid = normalise_emails(cells.text("email"))
            if invalid:
                warnings["invalid email"] += invalid
        if "phone" in present:
            out[16], out[17], invalid, read_as = normalise_phones(cells.text("phone"), region)
            if invalid:
                warnings["invalid phone"] += invalid
            if read_as:
                warnings[assumed] += read_as
        if bad_name is not None:
            cells.errors.extend((i, str(bad_name)) for i in range(cells.count))
        if extras:
            out[18] = cells.attributes(extras)
        cells.too_long(out, limits)
        return out

    return build


CUSTOMERS = Kind("customers", Customer.__table__, C_COLUMNS, C_BITS, C_SETS,  # type: ignore[arg-type]
                 customer_builder)


# ---- invoices ------------------------------------------------------------------------------

I_COLUMNS = ("external_id", "customer_external_id", "amount", "currency", "due_date", "paid_at",
             "attributes")
# Every invoice gives its keys, amount, due date and payment date (none: unpaid); currency and
# attributes only when the record has them.
I_BITS = {"external_id": 1, "customer_external_id": 1, "amount": 1, "due_date": 1, "paid_at": 1,
          "currency": 2, "attributes": 4}
I_SETS = {c: c for c in I_COLUMNS}
I_LIMITS = _limits(Invoice.__table__, I_COLUMNS)  # type: ignore[arg-type]


def _amount(cell: str) -> Decimal | None:
    # the quick form: a plain number of at most 12 + 2 digits
    amount = Decimal(cell) if type(cell) is str else _raise()
    if not (0 <= amount < MAX_AMOUNT) or amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError
    return amount.quantize(CENT)


def invoice_builder(keys: tuple[str, ...], _region: str, _warnings: Counter[str]) -> Build:
    """The builder for batches of invoice records with these fields (other fields go to
    attributes)."""
    extras, bad_name = _extras(keys, INVOICE_COLUMNS)

    def build(cells: Cells) -> list[Column]:
        out: list[Column] = [None] * len(I_COLUMNS)
        out[0] = cells.required("external_id")
        out[1] = cells.required("customer_external_id")
        amounts = cells.required("amount", parse_amount, _amount)
        out[2] = [a if a is None else str(a) for a in amounts]
        if "currency" in keys:
            out[3] = cells.each("currency", _currency, parse_currency)
        out[4] = cells.required("due_date", _parse_date, _date)
        if "paid_at" in keys:
            out[5] = cells.dates("paid_at")
        if bad_name is not None:
            cells.errors.extend((i, str(bad_name)) for i in range(cells.count))
        if extras:
            out[6] = cells.attributes(extras)
        cells.too_long(out, I_LIMITS)
        cells.errors.extend(
            (i, f"amount: at most 12 digits before the decimal point, got {a}")
            for i, a in enumerate(amounts) if a is not None and abs(a) >= MAX_AMOUNT)
        return out

    return build


INVOICES = Kind("invoices", Invoice.__table__, I_COLUMNS, I_BITS, I_SETS,  # type: ignore[arg-type]
                invoice_builder)
