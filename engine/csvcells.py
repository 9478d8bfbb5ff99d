"""CSV that is safe to open in a spreadsheet: one writer for every CSV nudgeflow writes."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets
# (=HYPERLINK(...) runs when the file is opened). OWASP's advice: prefix a single quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# ... except a plain number, which runs nothing: -12.50 and an E.164 phone (+27821234567)
# stay as they are, readable by a spreadsheet and by any other program.
PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def safe_cell(value: Any) -> Any:
    """`value` for a CSV cell: None as empty, text that a spreadsheet would read as a formula
    with a leading single quote; numbers, plain numbers as text and dates as they are."""
    if value is None:
        return ""
    if (isinstance(value, str) and value.startswith(FORMULA_STARTS)
            and not PLAIN_NUMBER.fullmatch(value)):
        return "'" + value
    return value


class SafeWriter:
    """csv.writer whose rows pass through safe_cell."""

    def __init__(self, out: Any) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([safe_cell(v) for v in row])
