"""Records checked and built into staging rows, in chunks. A big file is read in a child
process, so that reading and checking (one core) overlap with the database's work on the
chunks before (the other core); records sent to the API are read in this process."""

from __future__ import annotations

import multiprocessing
import traceback
from collections import Counter
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from typing import Any

from engine.errors import ValidationError
from engine.importing.reading import Batch, Source
from engine.importing.shapes import Build, Cells, Kind
from engine.limits import value_problems

CHUNK = 5000  # records read, checked and sent to the staging table at a time
MAX_SHAPES = 256  # builders kept for records of different fields (JSON Lines)

# (staging rows, row errors, the staging columns the rows hold: rowno, given, then those of
# the kind's columns a batch's records gave values for)
Chunk = tuple[list[tuple[Any, ...]], list[tuple[int, str]], tuple[str, ...]]
Chunks = Generator[Chunk, None, None]


@dataclass
class Parsed:
    """What reading found besides the rows: how many, the union and intersection of their
    `given` masks, the warnings, and how far through the file it is."""

    rows: int = 0
    any_mask: int = 0
    all_mask: int = -1
    warnings: Counter[str] = field(default_factory=Counter)
    done: float = 0.0


def parse(source: Source, kind: Kind, region: str, parsed: Parsed) -> Chunks:
    """Check every record; yield the good ones as staging rows (rowno, given, values...) and
    the row errors, a batch of at most CHUNK records at a time."""
    builders: dict[tuple[str, ...], tuple[Build, int]] = {}
    warnings = parsed.warnings
    for batch in source.batches(CHUNK):
        problems: list[tuple[int, str]] = []
        numbers, rows = batch.numbers, batch.rows
        parsed.rows += len(rows)
        if batch.check:  # values no database takes: NUL, NaN, numbers out of range
            numbers, rows = _storable(batch, problems)
        entry = builders.get(batch.keys)
        if entry is None:
            if len(builders) >= MAX_SHAPES:
                builders.clear()
            entry = builders[batch.keys] = (kind.make(batch.keys, region, warnings),
                                            kind.mask(batch.keys))
            parsed.any_mask |= entry[1]
            parsed.all_mask &= entry[1]
        build, mask = entry
        cells = Cells(batch.keys, rows)
        built = build(cells)
        held = ("rowno", "given", *(c for c, v in zip(kind.columns, built, strict=True)
                                    if v is not None))
        staged = list(zip(numbers, repeat(mask), *(v for v in built if v is not None)))
        if cells.errors:
            cells.errors.sort(key=itemgetter(0))  # stable: a row's errors in column order
            problems.extend((numbers[i], message) for i, message in cells.errors)
            failed = {i for i, _ in cells.errors}
            staged = [row for i, row in enumerate(staged) if i not in failed]
        parsed.done = source.done / source.size
        yield staged, problems, held
    parsed.done = 1.0
    if parsed.all_mask == -1:
        parsed.all_mask = 0


def _storable(batch: Batch, problems: list[tuple[int, str]]
              ) -> tuple[list[int], list[Sequence[Any]]]:
    """The batch's rows whose values every database can store; the others' problems."""
    numbers, rows = [], []
    for number, row in zip(batch.numbers, batch.rows, strict=True):
        if bad := value_problems(dict(zip(batch.keys, row, strict=True))):
            problems.extend((number, f"{p.where.removeprefix('$.')}: {p.message}")
                            for p in bad)
        else:
            numbers.append(number)
            rows.append(row)
    return numbers, rows


def parse_apart(source: Source, kind: Kind, region: str, parsed: Parsed) -> Chunks:
    """parse() run in a child process (forked: it inherits the source and sends the chunks
    back through a pipe, whose buffer bounds how far ahead it reads)."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(source, kind, region, send), daemon=True,
                            name="nudgeflow-import-reader")
    child.start()
    send.close()
    try:
        while True:
            try:
                message = receive.recv()
            except EOFError:
                raise RuntimeError("the import's reader process stopped unexpectedly") from None
            if message[0] == "chunk":
                _, rows, problems, held, parsed.rows, parsed.done = message
                yield rows, problems, held
            elif message[0] == "end":
                state: Parsed = message[1]
                parsed.rows, parsed.any_mask, parsed.all_mask = (
                    state.rows, state.any_mask, state.all_mask)
                parsed.warnings.update(state.warnings)
                parsed.done = 1.0
                return
            elif message[0] == "invalid":
                raise ValidationError(message[1], title=message[2])
            else:
                raise RuntimeError(f"the import's reader failed:\n{message[1]}")
    finally:
        receive.close()
        child.join(timeout=5)
        if child.is_alive():
            child.kill()
            child.join()


def _child(source: Source, kind: Kind, region: str, send: Any) -> None:
    parsed = Parsed()
    with reporting(send):
        for rows, problems, held in parse(source, kind, region, parsed):
            send.send(("chunk", rows, problems, held, parsed.rows, parsed.done))
        send.send(("end", parsed))


@contextmanager
def reporting(send: Any) -> Iterator[None]:
    """In a reader process: a file refused or a crash sent to the import as its last message,
    and the pipe closed."""
    try:
        yield
    except ValidationError as exc:
        send.send(("invalid", exc.problems, exc.title))
    except BaseException:
        send.send(("crash", traceback.format_exc()))
    finally:
        send.close()
