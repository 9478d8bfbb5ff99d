"""Import files read as records, streamed: CSV with a header row, or JSON Lines. Each record
comes with its row number; a Source names a row for the user (FILE:LINE, or $[i] for records
sent to the API)."""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from engine.errors import Problem, ValidationError
from engine.limits import strict_loads

NOT_UTF8 = re.compile("[\udc80-\udcff]")  # bytes decoded with surrogateescape
NEEDS_CHECK = re.compile("[\x00\udc80-\udcff]")  # NUL or a byte that is not UTF-8
BLOCK = 1 << 20  # characters read at a time

Record = tuple[int, dict[str, Any]]


@dataclass
class Batch:
    """Up to `size` records that share their fields: `keys` names them, each row holds its
    values in that order, `numbers` the rows' numbers. `check`: some row may hold a value no
    database takes (JSON records, or a CSV line with a NUL), so each is looked at closely."""

    keys: tuple[str, ...]
    numbers: list[int]
    rows: Sequence[Sequence[Any]]
    check: bool


@dataclass
class Source:
    """Records to import and how to name a row: `where` (FILE:LINE, $[i]) heads its problems,
    `label` (line N, $[i]) names the row a duplicate first appeared on. `size` and `done` give
    the progress (characters of the file, or records). A CSV file is read in batches
    (`read_batches`); other records are grouped into batches as they come."""

    records: Callable[[], Iterator[Record]]
    where: Callable[[int], str]
    label: Callable[[int], str]
    size: int
    done: int = 0
    read_batches: Callable[[int], Iterator[Batch]] | None = None
    path: Path | None = None  # a CSV file, which can be read in parts (importing.split)

    def __iter__(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(where, label, record): the row-at-a-time form event ingest reads."""
        for number, record in self.records():
            yield self.where(number), self.label(number), record

    def batches(self, size: int) -> Iterator[Batch]:
        if self.read_batches is not None:
            yield from self.read_batches(size)
            return
        keys: tuple[str, ...] | None = None
        numbers: list[int] = []
        rows: list[tuple[Any, ...]] = []
        for number, record in self.records():
            if keys != tuple(record) or len(rows) >= size:
                if keys is not None:
                    yield Batch(keys, numbers, rows, True)
                keys, numbers, rows = tuple(record), [], []
            numbers.append(number)
            rows.append(tuple(record.values()))
        if keys is not None:
            yield Batch(keys, numbers, rows, True)


def from_file(path: Path) -> Source:
    source = Source(lambda: read_records(path, source), lambda n: f"{path}:{n}",
                    lambda n: f"line {n}", max(path.stat().st_size, 1))
    if not _is_json(path):
        source.read_batches = lambda size: _csv_file(path, source, size)
        source.path = path
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
    if _is_json(path):
        with _open(path) as fh:
            yield from _json_lines(path, fh, source)
        return
    for batch in _csv_file(path, source, 1000):
        for number, row in zip(batch.numbers, batch.rows, strict=True):
            yield number, dict(zip(batch.keys, row, strict=True))


def _open(path: Path) -> TextIO:
    # Bytes that are not UTF-8 come through as lone surrogates, so the line can be named.
    return path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")


def _is_json(path: Path) -> bool:
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return True
    with _open(path) as fh:
        return fh.read(1) in ("{", "[")


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


class _Blocks:
    """The file's lines for csv.reader, a block of whole lines at a time (each an in-memory
    file, so lines are split as the file object would split them), counting the characters
    read and noting a block with a NUL or a byte that is not UTF-8 (only the rows read while
    such a block is in play are looked at closely)."""

    def __init__(self, fh: TextIO, source: Source | None) -> None:
        self.fh, self.source = fh, source
        self.done, self.suspect = 0, False
        self.seen = 0  # blocks with a NUL or a byte that is not UTF-8

    def __iter__(self) -> Iterator[str]:
        return itertools.chain.from_iterable(self._blocks())

    def _blocks(self) -> Iterator[io.StringIO]:
        carry, before = "", False
        while block := self.fh.read(BLOCK):
            cut = block.rfind("\n") + 1
            whole, carry = (carry + block[:cut], block[cut:]) if cut else ("", carry + block)
            if not whole:
                continue
            self.done += len(whole)
            now = NEEDS_CHECK.search(whole) is not None
            self.suspect, before = now or before, now  # a row may start in the last block
            self.seen += now
            yield io.StringIO(whole, newline="")
        if carry:
            self.done += len(carry)
            now = NEEDS_CHECK.search(carry) is not None
            self.suspect = self.suspect or now
            self.seen += now
            yield io.StringIO(carry, newline="")


def _csv_file(path: Path, source: Source | None, size: int) -> Iterator[Batch]:
    with _open(path) as fh:
        yield from _csv_batches(path, fh, source, size)


def from_part(path: Path, start: int, end: int, names: tuple[str, ...] | None = None,
              lines_before: int = 0) -> Source:
    """The rows of a CSV file from byte `start` to `end`: from the header (start 0), or from
    the start of a line outside any quoted cell with the header's `names` given, named by
    their line numbers in the whole file."""

    def batches(size: int) -> Iterator[Batch]:
        with path.open("rb") as raw:
            raw.seek(start)
            part = io.BufferedReader(_Range(raw, end - start), BLOCK)  # type: ignore[arg-type]
            fh = io.TextIOWrapper(part, encoding="utf-8" if start else "utf-8-sig",
                                  errors="surrogateescape", newline="")
            yield from _csv_batches(path, fh, source, size, names, lines_before)

    source = Source(lambda: iter(()), lambda n: f"{path}:{n}", lambda n: f"line {n}",
                    max(end - start, 1), read_batches=batches)
    return source


class _Range(io.RawIOBase):
    """The next `left` bytes of a binary file."""

    def __init__(self, raw: BinaryIO, left: int) -> None:
        self.raw, self.left = raw, left

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)[:self.left]
        got = self.raw.readinto(view)  # type: ignore[attr-defined]
        self.left -= got
        return got


def _csv_batches(path: Path, fh: TextIO, source: Source | None, size: int,
                 names: tuple[str, ...] | None = None, lines_before: int = 0
                 ) -> Iterator[Batch]:
    """Batches of a CSV file's rows; its header is read first unless `names` are given (a
    part of the file, which starts after `lines_before` lines)."""
    lines = _Blocks(fh, source)
    reader = csv.reader(lines)
    try:
        if names is None:
            header = next(reader, None)
            if header is None:
                raise ValidationError([Problem(str(path), "empty file: expected a header row")])
            _require_utf8(path, 1, ",".join(header))
            names = tuple(name.strip() for name in header)
            _check_header(path, names)
        width = len(names)
        while True:
            seen, suspect = lines.seen, lines.suspect
            numbers: list[int] = []
            rows: list[list[Any]] = []
            number, row_ = numbers.append, rows.append
            for row in itertools.islice(reader, size):
                number(reader.line_num)
                row_(row)
            if source is not None:
                source.done = lines.done
            if not rows:
                return
            if lines_before:
                numbers = [lines_before + n for n in numbers]
            if set(map(len, rows)) != {width}:
                numbers, rows = _regular(path, numbers, rows, width)
            # a NUL (the value checks name its column) or a byte that is not UTF-8
            check = (suspect or lines.suspect or lines.seen != seen) and _suspects(
                path, numbers, rows)
            yield Batch(names, numbers, rows, check)
    except csv.Error as exc:  # the line it failed on is counted already
        raise ValidationError([Problem(f"{path}:{lines_before + reader.line_num}",
                                       f"{exc} (a cell holds at "
                                       f"most {csv.field_size_limit() // 1024} KB)")]) from None


def _regular(path: Path, numbers: list[int], rows: list[list[Any]], width: int
             ) -> tuple[list[int], list[list[Any]]]:
    """Rows of `width` cells: blank lines left out (as csv.DictReader does), short rows
    padded with missing cells; a row with more cells than the header is refused."""
    kept_numbers, kept = [], []
    for number, row in zip(numbers, rows, strict=True):
        if not row:
            continue
        if len(row) > width:
            raise ValidationError([Problem(f"{path}:{number}", "more cells than header columns")])
        kept_numbers.append(number)
        kept.append(row + [None] * (width - len(row)))
    return kept_numbers, kept


def _suspects(path: Path, numbers: list[int], rows: list[list[Any]]) -> bool:
    """Whether a row holds a NUL (its checks will name the column); a byte that is not
    UTF-8 refuses the file."""
    found = False
    for number, row in zip(numbers, rows, strict=True):
        if any(v and NEEDS_CHECK.search(v) for v in row):
            _require_utf8(path, number, ",".join(v or "" for v in row))
            found = True
    return found


def _check_header(path: Path, names: tuple[str, ...]) -> None:
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
