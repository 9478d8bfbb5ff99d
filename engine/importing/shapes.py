"""What a record becomes in the staging table: one list of values in a fixed column order,
with a bit mask of the columns the record gave (a column it did not give keeps the stored
value; one it gave empty is set to null). A file's rows share one shape, so the work of
deciding which columns a record has is done once per shape, not once per row."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Table

from engine.contacts import normalise_email, normalise_phone
from engine.importing.cells import (
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
from engine.models import Customer, Invoice

T = TypeVar("T")

CUSTOMER_TEXT = ("first_name", "last_name", "gender", "branch", "region", "status")
CUSTOMER_BOOL = ("email_opt_out", "sms_opt_out", "marketing_consent")
CUSTOMER_DATE = ("birth_date", "registered_at")
CUSTOMER_COLUMNS = frozenset({"external_id", "email", "phone", "timezone", *CUSTOMER_TEXT,
                              *CUSTOMER_BOOL, *CUSTOMER_DATE})
INVOICE_COLUMNS = frozenset({"external_id", "customer_external_id", "amount", "currency",
                             "due_date", "paid_at"})
MAX_AMOUNT = Decimal(10) ** 12  # Numeric(14, 2): 12 digits before the point

Build = Callable[[dict[str, Any]], list[Any]]


@dataclass(frozen=True)
class Kind:
    """One kind of import: its table, the staging columns in order, which record field sets
    which bit of the `given` mask, and a builder for each shape of record."""

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


def _too_long(out: list[Any], limits: list[tuple[int, str, int]]) -> list[tuple[str, str]]:
    return [(c, f"at most {n} characters, got {len(out[i])}") for i, c, n in limits
            if out[i] is not None and len(out[i]) > n]


def _extras(keys: tuple[str, ...], known: frozenset[str]
            ) -> tuple[list[str], RowError | None]:
    extras = [k for k in keys if k not in known]
    try:
        check_attribute_names(extras)
    except RowError as exc:
        return extras, exc
    return extras, None


def _attributes(record: dict[str, Any], extras: list[str]) -> str:
    """The record's non-empty extra columns as a JSON object (what json.dumps writes, written
    directly for text and numbers: json.dumps sets up an encoder on every call)."""
    parts = []
    for key in extras:
        value = record[key]
        if _blank(value):
            continue
        value = attribute_value(value)
        kind = type(value)
        if kind is str:
            parts.append(f"{_quote(key)}: {_quote(value)}")
        elif kind is int or kind is float:
            parts.append(f"{_quote(key)}: {value!r}")
        else:  # JSON Lines: lists, objects, booleans
            return json.dumps({k: attribute_value(v) for k in extras
                               if not _blank(v := record[k])})
    return "{" + ", ".join(parts) + "}"


_quote = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


class TooLong(RowError):
    """Values longer than their columns: every one of the row, not just the first."""

    def __init__(self, found: list[tuple[str, str]]) -> None:
        super().__init__(found[0][0], found[0][1])
        self.found = found


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
    """The builder for customer records with these fields."""
    present = set(keys)
    texts = [(C_INDEX[c], c) for c in CUSTOMER_TEXT if c in present]
    flags = [(C_INDEX[c], c) for c in CUSTOMER_BOOL if c in present]
    birth, registered = "birth_date" in present, "registered_at" in present
    zone, email, phone = "timezone" in present, "email" in present, "phone" in present
    extras, bad_name = _extras(keys, CUSTOMER_COLUMNS)
    width = len(C_COLUMNS)
    limits = _limits(Customer.__table__, C_COLUMNS, present)  # type: ignore[arg-type]
    assumed = f"phones had no country code and were read as {region} numbers"

    def build(record: dict[str, Any]) -> list[Any]:
        out: list[Any] = [None] * width
        external_id = _required(record, "external_id", parse_text)
        out[0] = external_id
        for i, c in texts:
            out[i] = parse_text(record[c], c)
        if birth and (day := parse_date(record["birth_date"], "birth_date")) is not None:
            out[7], out[8] = day.isoformat(), day.month * 100 + day.day
        if registered and (day := parse_date(record["registered_at"], "registered_at")):
            out[9] = day.isoformat()
        if zone:
            out[10] = parse_timezone(record["timezone"], "timezone")
        for i, c in flags:
            out[i] = parse_bool(record[c], c)
        if email:
            value, valid, _ = normalise_email(parse_text(record["email"], "email"))
            out[14], out[15] = value, valid
            if value is not None and not valid:
                warnings["invalid email"] += 1
        if phone:
            value, valid, read_as = normalise_phone(parse_text(record["phone"], "phone"), region)
            out[16], out[17] = value, valid
            if value is not None and not valid:
                warnings["invalid phone"] += 1
            if read_as is not None:
                warnings[assumed] += 1
        if bad_name is not None:
            raise bad_name
        if extras:
            out[18] = _attributes(record, extras)
        if too_long := _too_long(out, limits):
            raise TooLong(too_long)
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


def _required(record: dict[str, Any], field: str, parse: Callable[[Any, str], T | None]) -> T:
    """The field's parsed value; a row error when it is missing or empty."""
    value = parse(record.get(field), field)
    if value is None:
        raise RowError(field, "required")
    return value


def invoice_builder(keys: tuple[str, ...], _region: str, _warnings: Counter[str]) -> Build:
    """The builder for invoice records with these fields (other fields go to attributes)."""
    currency = "currency" in keys
    extras, bad_name = _extras(keys, INVOICE_COLUMNS)

    def build(record: dict[str, Any]) -> list[Any]:
        external_id = _required(record, "external_id", parse_text)
        customer = _required(record, "customer_external_id", parse_text)
        amount = _required(record, "amount", parse_amount)
        due = _required(record, "due_date", parse_date)
        paid = parse_date(record.get("paid_at"), "paid_at")
        out = [external_id, customer, str(amount),
               parse_currency(record["currency"], "currency") if currency else None,
               due.isoformat(), paid and paid.isoformat(), None]
        if bad_name is not None:
            raise bad_name
        if extras:
            out[6] = _attributes(record, extras)
        too_long = _too_long(out, I_LIMITS)
        if abs(amount) >= MAX_AMOUNT:
            too_long.append(("amount", f"at most 12 digits before the decimal point, got "
                                       f"{amount}"))
        if too_long:
            raise TooLong(too_long)
        return out

    return build


INVOICES = Kind("invoices", Invoice.__table__, I_COLUMNS, I_BITS, I_SETS,  # type: ignore[arg-type]
                invoice_builder)
