"""Records checked and built into staging rows, in chunks. A big file is read in a child
process, so that reading and checking (one core) overlap with the database's work on the
chunks before (the other core); records sent to the API are read in this process."""

from __future__ import annotations

import multiprocessing
import traceback
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from engine.errors import ValidationError
from engine.importing.cells import RowError
from engine.importing.reading import Source
from engine.importing.shapes import Build, Kind, TooLong
from engine.limits import value_problems

CHUNK = 5000  # rows held in memory before they go to the staging table
MAX_SHAPES = 256  # builders kept for records of different fields (JSON Lines)

Chunk = tuple[list[tuple[Any, ...]], list[tuple[int, str]]]  # (staging rows, row errors)
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
    the row errors, CHUNK rows at a time."""
    builders: dict[tuple[str, ...], tuple[Build, int]] = {}
    chunk: list[tuple[Any, ...]] = []
    problems: list[tuple[int, str]] = []
    warnings = parsed.warnings
    rows = 0
    for number, record in source.records():
        rows += 1
        if not source.plain or source.suspect:
            if bad := value_problems(record):
                problems.extend((number, f"{p.where.removeprefix('$.')}: {p.message}")
                                for p in bad)
                continue
        keys = tuple(record)
        entry = builders.get(keys)
        if entry is None:
            if len(builders) >= MAX_SHAPES:
                builders.clear()
            entry = builders[keys] = (kind.make(keys, region, warnings), kind.mask(keys))
            parsed.any_mask |= entry[1]
            parsed.all_mask &= entry[1]
        try:
            values = entry[0](record)
        except TooLong as exc:
            problems.extend((number, f"{column}: {message}") for column, message in exc.found)
            continue
        except RowError as exc:
            problems.append((number, str(exc)))
            continue
        chunk.append((number, entry[1], *values))
        if len(chunk) >= CHUNK:
            parsed.rows, parsed.done = rows, source.done / source.size
            yield chunk, problems
            chunk, problems = [], []
    parsed.rows, parsed.done = rows, 1.0
    if parsed.all_mask == -1:
        parsed.all_mask = 0
    yield chunk, problems


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
                _, rows, problems, parsed.rows, parsed.done = message
                yield rows, problems
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
    try:
        for rows, problems in parse(source, kind, region, parsed):
            send.send(("chunk", rows, problems, parsed.rows, parsed.done))
        send.send(("end", parsed))
    except ValidationError as exc:
        send.send(("invalid", exc.problems, exc.title))
    except BaseException:
        send.send(("crash", traceback.format_exc()))
    finally:
        send.close()
