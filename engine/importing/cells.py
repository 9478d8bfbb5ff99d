"""One cell of an import file read into the value its column stores, or a RowError saying why
not. Each parser takes the cell as the file gives it (text from CSV, any JSON value from JSON
Lines or the API)."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.limits import value_problems
from engine.messaging.quiet_hours import is_zone

TRUE = {"yes", "y", "true", "t", "1"}
FALSE = {"no", "n", "false", "f", "0"}
FLAGS = {**dict.fromkeys(TRUE, True), **dict.fromkeys(FALSE, False), "": None}
NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")
ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CURRENCY = re.compile(r"[A-Za-z]{3}")


class RowError(ValueError):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(f"{column}: {message}")
        self.column = column


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_text(value: Any, column: str) -> str | None:
    if type(value) is str:  # the common case first: a CSV cell
        return value.strip() or None
    if _blank(value):
        return None
    if isinstance(value, (dict, list)):
        raise RowError(column, f"expected text, got {json.dumps(value)}")
    return str(value).strip()


def parse_bool(value: Any, column: str) -> bool | None:
    if type(value) is str and (text := value.strip().lower()) in FLAGS:
        return FLAGS[text]
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
    if type(value) is str and len(value) == 10:  # the common case first: 2020-01-31
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
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


def parse_currency(value: Any, column: str) -> str | None:
    currency = parse_text(value, column)
    if currency is not None and not CURRENCY.fullmatch(currency):
        raise RowError(column, f"expected a 3-letter ISO code, got {currency!r}")
    return currency.upper() if currency else None


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


def check_attribute_names(names: Any) -> None:
    for name in names:
        if not ATTRIBUTE_NAME.fullmatch(name):
            raise RowError(name, "extra column names must be letters, digits and _")


def attributes(record: dict[str, Any], known: set[str] | frozenset[str]) -> dict[str, Any]:
    """`{"attributes": {...}}` for a record's columns beyond the known ones (empty cells left
    out, so a re-import merges them into what is stored), or {} when it has none."""
    extras = {k: v for k, v in record.items() if k not in known}
    check_attribute_names(extras)
    if not extras:
        return {}
    return {"attributes": {k: attribute_value(v) for k, v in extras.items() if not _blank(v)}}
