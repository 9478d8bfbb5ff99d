"""What input nudgeflow accepts, checked in one place for the API, the CLI and imports.

Text must hold no NUL and no lone surrogate (PostgreSQL refuses NUL in text and JSON, and no
database driver can encode a lone surrogate); whole numbers fit in 64 bits (SQLite's and
PostgreSQL's widest integer); numbers are finite (NaN and Infinity are not JSON: stored, they
break every JSON function that reads the document); documents nest at most MAX_DEPTH levels;
and text fits the column it is stored in (PostgreSQL refuses longer text, SQLite keeps it).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from marshmallow import validate
from sqlalchemy import FromClause, Numeric, String

from engine.errors import Problem

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MAX = 2**31 - 1
MAX_DEPTH = 64
MAX_PROBLEMS = 100
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """Why a string cannot be stored (NUL, a lone surrogate), or None."""
    if "\x00" in text:
        return "text may not contain a NUL character (\\u0000)"
    if (found := _SURROGATE.search(text)) is not None:
        return (f"text may not contain a lone surrogate ({json.dumps(found[0])}): "
                "it is not a character")
    return None


def member(path: str, key: str) -> str:
    """The JSON path of an object's member: `$.name`, or `$["odd key"]` with escapes."""
    return f"{path}.{key}" if _IDENTIFIER.fullmatch(key) else f"{path}[{json.dumps(key)}]"


def value_problems(value: Any, path: str = "$", depth: int = 0) -> list[Problem]:
    """Every part of a JSON value that cannot be stored, each named by its path."""
    problems: list[Problem] = []
    _walk(value, path, depth, problems)
    return problems[:MAX_PROBLEMS]


def _walk(value: Any, path: str, depth: int, problems: list[Problem]) -> None:
    if len(problems) >= MAX_PROBLEMS:
        return
    if isinstance(value, str):
        if (why := text_problem(value)) is not None:
            problems.append(Problem(path, why))
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            problems.append(Problem(path, f"whole number out of range ({INT64_MIN} to "
                                          f"{INT64_MAX})"))
    elif isinstance(value, float):
        if not math.isfinite(value):
            problems.append(Problem(path, f"expected a finite number, got {value}"))
    elif isinstance(value, Mapping | list):
        if depth >= MAX_DEPTH:
            problems.append(Problem(path, f"nested deeper than {MAX_DEPTH} levels"))
            return
        if isinstance(value, list):
            for i, item in enumerate(value):
                _walk(item, f"{path}[{i}]", depth + 1, problems)
            return
        for key, item in value.items():
            where = member(path, str(key))
            if isinstance(key, str) and (why := text_problem(key)) is not None:
                problems.append(Problem(where, f"key: {why}"))
            _walk(item, where, depth + 1, problems)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def strict_loads(text: str | bytes) -> Any:
    """json.loads without NaN/Infinity and without a RecursionError on deep nesting; every
    failure is a ValueError whose message says what is wrong."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(f"nested too deeply (at most {MAX_DEPTH} levels)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON at line {exc.lineno} column {exc.colno}: "
                         f"{exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 (byte {exc.start})") from None


# ---- column sizes ----------------------------------------------------------------------------

def column_length(column: Any) -> int | None:
    """The most characters a String column holds (None: unbounded)."""
    type_ = column.type
    return type_.length if isinstance(type_, String) else None


def fits(column: Any, min_length: int = 0) -> validate.Length:
    """A marshmallow validator: text no longer than the model's column."""
    return validate.Length(min=min_length or None, max=column_length(column))


def column_problems(table: FromClause, values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(column, message) for each value too long or too large for its column of `table`."""
    out = []
    for name, value in values.items():
        if name not in table.c or value is None:
            continue
        column = table.c[name]
        length = column_length(column)
        if length is not None and isinstance(value, str) and len(value) > length:
            out.append((name, f"at most {length} characters, got {len(value)}"))
        elif isinstance(column.type, Numeric) and isinstance(value, Decimal):
            precision, scale = column.type.precision, column.type.scale
            if precision is not None and abs(value) >= Decimal(10) ** (precision - (scale or 0)):
                out.append((name, f"at most {precision - (scale or 0)} digits before the "
                                  f"decimal point, got {value}"))
    return out
