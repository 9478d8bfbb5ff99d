"""A big CSV file read by several processes at once: the file is cut at line breaks outside
any quoted cell, and each part is read and checked by its own process. On SQLite each part
writes its rows into a staging database file of its own, which the import then takes as its
staging table (Stage.adopt), so the rows never pass through a pipe; on PostgreSQL the parts
send their rows to the import, which copies them into its staging table (COPY) as they come.
On two cores the file is read in about half the time. What the parts found (row errors,
warnings, which fields) comes back through a pipe and is merged as if one process had read
the file."""

from __future__ import annotations

import csv
import multiprocessing
import re
import sqlite3
from collections.abc import Generator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from engine.errors import ValidationError
from engine.importing.parsing import CHUNK, Chunks, Parsed, parse, reporting
from engine.importing.reading import BLOCK, from_part
from engine.importing.shapes import Kind
from engine.importing.staging import insert_sql

BARE_CR = re.compile(rb"\r(?!\n)")  # a line break Python reads as one, which cut() cannot see


@dataclass(frozen=True)
class Part:
    start: int
    end: int
    lines_before: int


def cut(path: Path, parts: int) -> tuple[tuple[str, ...], list[Part]] | None:
    """The header's names and `parts` parts of about equal size, each starting just after a
    line break outside any quoted cell (an even number of quote characters before it: a
    doubled quote inside a cell counts twice). None when it cannot be cut so: a bare CR line
    break, a header longer than a block, or a part that would hold no line."""
    size = path.stat().st_size
    targets = [size * k // parts for k in range(1, parts)]
    cuts: list[tuple[int, int]] = [(0, 0)]  # (offset, lines before it)
    header: bytes | None = None
    quotes = lines = offset = 0
    with path.open("rb") as fh:
        while block := fh.read(BLOCK):
            if block.endswith(b"\r"):
                block += fh.read(1)
            if BARE_CR.search(block, 0, len(block) - block.endswith(b"\r")):
                return None
            pos = 0
            while header is None or (targets and offset + len(block) > targets[0]):
                goal = 0 if header is None else max(targets[0] - offset, pos)
                quotes += block.count(b'"', pos, goal)
                lines += block.count(b"\n", pos, goal)
                pos = max(goal, pos)
                while (newline := block.find(b"\n", pos)) >= 0:  # to a break outside quotes
                    quotes += block.count(b'"', pos, newline)
                    lines += 1
                    pos = newline + 1
                    if quotes % 2 == 0:
                        break
                else:
                    break  # none in this block
                if header is None:
                    if offset:
                        return None
                    header = block[:pos]
                else:
                    cuts.append((offset + pos, lines))
                    targets.pop(0)
            quotes += block.count(b'"', pos)
            lines += block.count(b"\n", pos)
            offset += len(block)
            if header is not None and not targets:
                break
    if header is None or targets or cuts[1][0] <= len(header) or cuts[-1][0] >= size:
        return None
    row = next(csv.reader([header.decode("utf-8-sig", errors="surrogateescape")]), [])
    bounds = [*cuts[1:], (size, 0)]
    return tuple(name.strip() for name in row), [
        Part(start, end, before) for (start, before), (end, _) in zip(cuts, bounds, strict=True)]


@dataclass
class Staged:
    """What reading the parts left: the staging files in file order, once every part ended."""

    files: list[Path]


def read_parts(path: Path, names: tuple[str, ...], parts: list[Part], kind: Kind, region: str,
               folder: Path | None, create: str, parsed: Parsed,
               staged: Staged) -> Chunks:
    """Read each part in a forked process: into its own file under `folder` (`create` makes
    the staging table; only each chunk's row errors are yielded, as the parts report them),
    or, with no folder, yielding each chunk's rows too. A part that finds the file
    unreadable (not UTF-8, a bad line) lets the others finish, and the first such part in
    the file is the one reported."""
    context = multiprocessing.get_context("fork")
    children, receivers, files = [], [], []
    for i, part in enumerate(parts):
        receive, send = context.Pipe(duplex=False)
        file = None if folder is None else folder / f"part-{i}.db"
        child = context.Process(
            target=_child, name=f"nudgeflow-import-part-{i}", daemon=True,
            args=(path, part, None if i == 0 else names, kind, region, file, create, send))
        child.start()
        send.close()
        children.append(child)
        receivers.append(receive)
        if file is not None:
            files.append(file)
    rows, done = [0] * len(parts), [0] * len(parts)
    ended: dict[int, Parsed] = {}
    refused: dict[int, tuple[Any, str]] = {}
    size = sum(part.end - part.start for part in parts)
    try:
        open_ = dict(enumerate(receivers))
        while open_:
            for ready in wait(list(open_.values())):
                i = receivers.index(ready)  # type: ignore[arg-type]
                try:
                    message: Any = receivers[i].recv()
                except EOFError:
                    raise RuntimeError("an import reader process stopped unexpectedly") from None
                if message[0] == "chunk":
                    _, staged_rows, problems, held, rows[i], done[i] = message
                    parsed.rows, parsed.done = sum(rows), sum(done) / size
                    yield staged_rows, problems, held
                    continue
                del open_[i]
                if message[0] == "end":
                    ended[i] = message[1]
                elif message[0] == "invalid":
                    refused[i] = (message[1], message[2])
                else:
                    raise RuntimeError(f"an import reader failed:\n{message[1]}")
        if refused:
            listed, title = refused[min(refused)]
            raise ValidationError(listed, title=title)
        _merge(parsed, [ended[i] for i in range(len(parts))])
        staged.files = files
    finally:
        for receiver in receivers:
            receiver.close()
        for child in children:
            child.join(timeout=5)
            if child.is_alive():
                child.kill()
                child.join()


def _merge(parsed: Parsed, parts: list[Parsed]) -> None:
    parsed.rows = sum(p.rows for p in parts)
    parsed.done = 1.0
    read = [p for p in parts if p.rows]
    for p in read:
        parsed.any_mask |= p.any_mask
        parsed.all_mask &= p.all_mask
        parsed.warnings.update(p.warnings)
    if not read:
        parsed.all_mask = 0


def _child(path: Path, part: Part, names: tuple[str, ...] | None, kind: Kind, region: str,
           file: Path | None, create: str, send: Connection) -> None:
    parsed = Parsed()
    with reporting(send):
        source = from_part(path, part.start, part.end, names, part.lines_before)
        chunks: Generator[Any, None, None] = parse(source, kind, region, parsed)
        if file is None:  # the rows go to the import
            for rows, problems, held in chunks:
                send.send(("chunk", rows, problems, held, parsed.rows, source.done))
            send.send(("end", parsed))
            return
        db = sqlite3.connect(file, isolation_level=None)
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.execute(create)
        db.execute("BEGIN")
        for rows, problems, held in chunks:
            if rows:
                db.executemany(insert_sql(held), rows)
            send.send(("chunk", [], problems, (), parsed.rows, source.done))
        db.execute("COMMIT")
        db.close()
        send.send(("end", parsed))


__all__ = ["CHUNK", "Part", "Staged", "cut", "read_parts"]
