"""A progress bar for an import on a terminal: how far through the file, rows and rows/s.
On anything else (a pipe, a log file, the API) it writes nothing."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 24


class Progress:
    def __init__(self, label: str, stream: TextIO | None = None, every: float = 0.25) -> None:
        self.stream = stream
        self.label, self.every = label, every
        self.started = self.shown = time.monotonic()
        self.drawn = False

    @classmethod
    def on_terminal(cls, label: str) -> Progress:
        """Drawn on stderr when it is a terminal; silent otherwise."""
        return cls(label, sys.stderr if sys.stderr.isatty() else None)

    def update(self, fraction: float, rows: int) -> None:
        now = time.monotonic()
        if self.stream is None or now - self.shown < self.every:
            return
        self.shown = now
        fraction = min(max(fraction, 0.0), 1.0)
        filled = int(fraction * WIDTH)
        rate = rows / max(now - self.started, 1e-6)
        self._draw(f"{self.label} [{'#' * filled}{'.' * (WIDTH - filled)}] {fraction:4.0%} "
                   f"{rows:,} rows, {rate:,.0f} rows/s")

    def phase(self, what: str, rows: int) -> None:
        """A step after the file is read (checking, writing): named, with the rows so far."""
        if self.stream is not None:
            self._draw(f"{self.label}: {rows:,} rows read; {what}")

    def close(self) -> None:
        if self.stream is not None and self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def _draw(self, line: str) -> None:
        assert self.stream is not None
        self.stream.write(f"\r\x1b[K{line}")
        self.stream.flush()
        self.drawn = True
