"""A data set written as CSV or XLSX: a header row of the column names as given, then the rows;
dates ISO, amounts as numbers, null as an empty cell, formula-like text neutralised."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from engine.csvcells import SafeWriter, safe_cell

FORMATS = ("csv", "xlsx")
MIMETYPES = {"csv": "text/csv",
             "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def write_csv(out: IO[str], header: Sequence[str], rows: Iterable[Sequence[Any]],
              tick: Callable[[], None] = lambda: None) -> None:
    """CSV through engine.csvcells (a date's str() is ISO already); `tick` after each row."""
    writer = SafeWriter(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
        tick()


def write_xlsx(out: IO[bytes] | str, header: Sequence[str], rows: Iterable[Sequence[Any]],
               tick: Callable[[], None] = lambda: None) -> None:
    """XLSX in openpyxl's write-only mode: rows go to a temporary file as they come, so memory
    stays flat; the workbook is zipped into `out` at the end."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("data")
    ws.append([_text(h) for h in header])
    for row in rows:
        ws.append([_xlsx_cell(ws, v) for v in row])
        tick()
    wb.save(out)


def _text(value: str) -> str:
    # openpyxl refuses control characters a worksheet cannot hold; drop them.
    return ILLEGAL_CHARACTERS_RE.sub("", safe_cell(value))


def _xlsx_cell(ws: Any, value: Any) -> Any:
    if isinstance(value, str):
        # Neutralised like CSV: openpyxl would store text starting with "=" as a formula.
        return _text(value)
    if isinstance(value, date):
        cell = WriteOnlyCell(ws, value=value)
        cell.number_format = "yyyy-mm-dd"
        return cell
    return value
