"""Import files read as records, streamed: CSV with a header row, or JSON Lines. Each record
comes with its row number; a Source names a row for the user (FILE:LINE, or $[i] for records
sent to the API)."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from engine.errors import Problem, ValidationError
from engine.limits import strict_loads

NOT_UTF8 = re.compile("[\udc80-\udcff]")  # bytes decoded with surrogateescape
NEEDS_CHECK = re.compile("[\x00\udc80-\udcff]")  # NUL or a byte that is not UTF-8

Record = tuple[int, dict[str, Any]]


@dataclass
class Source:
    """Records to import and how to name a row: `where` (FILE:LINE, $[i]) heads its problems,
    `label` (line N, $[i]) names the row a duplicate first appeared on. `size` and `done` give
    the progress (characters of the file, or records); `plain` says the values are text (a
    CSV file) and need no JSON value checks unless `suspect` (the row just read holds a NUL)."""

    records: Callable[[], Iterator[Record]]
    where: Callable[[int], str]
    label: Callable[[int], str]
    size: int
    plain: bool = False
    suspect: bool = False
    done: int = 0

    def __iter__(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(where, label, record): the row-at-a-time form event ingest reads."""
        for number, record in self.records():
            yield self.where(number), self.label(number), record


def from_file(path: Path) -> Source:
    source = Source(lambda: read_records(path, source), lambda n: f"{path}:{n}",
                    lambda n: f"line {n}", max(path.stat().st_size, 1))
    return source


def from_list(records: list[Any]) -> Source:
    """Records sent to the API: each is named by its JSON path."""

    def each() -> Iterator[Record]:
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise ValidationError([Problem(f"$[{i}]", "expected an object")])
            source.done = i + 1
            yield i, record

    source = Source(each, lambda i: f"$[{i}]", lambda i: f"$[{i}]", max(len(records), 1))
    return source


def read_records(path: Path, source: Source | None = None) -> Iterator[Record]:
    """Yield (line number, record) from a CSV file with a header or a JSON Lines file."""
    # Bytes that are not UTF-8 come through as lone surrogates, so the line can be named.
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        first = fh.read(1)
        fh.seek(0)
        if path.suffix.lower() in (".jsonl", ".ndjson", ".json") or first in ("{", "["):
            yield from _json_lines(path, fh, source)
            return
        if source is not None:
            source.plain = True
        yield from _csv_records(path, fh, source)


def _json_lines(path: Path, fh: TextIO, source: Source | None) -> Iterator[Record]:
    done = 0
    for number, line in enumerate(fh, start=1):
        done += len(line)
        if source is not None:
            source.done = done
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


def _require_utf8(path: Path, line: int, text: str) -> None:
    if (found := NOT_UTF8.search(text)) is not None:
        byte = ord(found[0]) - 0xDC00
        raise ValidationError([Problem(f"{path}:{line}", f"not UTF-8 at line {line} (byte "
                                       f"0x{byte:02X}): save the file as UTF-8")],
                              title=f"{path}: not UTF-8")


class _Lines:
    """The file's lines for csv.reader, counting the characters read and noting a line with a
    NUL or a byte that is not UTF-8 (so only such rows are looked at closely)."""

    def __init__(self, fh: TextIO, source: Source | None) -> None:
        self.fh, self.source = fh, source
        self.done, self.suspect = 0, False

    def __iter__(self) -> Iterator[str]:
        needs_check = NEEDS_CHECK.search
        done = 0
        for line in self.fh:
            done += len(line)
            self.done = done
            if needs_check(line):
                self.suspect = True
            yield line


def _csv_records(path: Path, fh: TextIO, source: Source | None) -> Iterator[Record]:
    lines = _Lines(fh, source)
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
        if header is None:
            raise ValidationError([Problem(str(path), "empty file: expected a header row")])
        _require_utf8(path, 1, ",".join(header))
        names = [name.strip() for name in header]
        _check_header(path, names)
        width = len(names)
        lines.suspect = False
        for row in reader:
            if not row:  # a blank line, as csv.DictReader skips it
                continue
            if len(row) != width:
                if len(row) > width:
                    raise ValidationError(
                        [Problem(f"{path}:{reader.line_num}", "more cells than header columns")])
                row += [None] * (width - len(row))  # type: ignore[list-item]
            suspect = lines.suspect
            if suspect:  # a NUL (the value checks name its column) or not UTF-8
                _require_utf8(path, reader.line_num, ",".join(v or "" for v in row))
                lines.suspect = False
            if source is not None:
                source.done, source.suspect = lines.done, suspect
            yield reader.line_num, dict(zip(names, row, strict=True))
    except csv.Error as exc:  # the line it failed on is counted already
        raise ValidationError([Problem(f"{path}:{reader.line_num}", f"{exc} (a cell holds at "
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
