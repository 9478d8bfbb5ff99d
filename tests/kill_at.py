"""Run `nudgeflow ARGS...` and SIGKILL this process just before its Nth database step
(a statement or a commit). Prints the number of steps to stderr when it finishes instead.

    python -m tests.kill_at N run --date 2025-07-01
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

steps = 0


def main() -> None:
    kill_at = int(sys.argv[1])

    def step(*_args: Any, **_kw: Any) -> None:
        global steps
        steps += 1
        if steps == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    event.listen(Engine, "before_cursor_execute", step)
    event.listen(Engine, "commit", step)
    from engine.cli import main as cli_main

    try:
        cli_main(sys.argv[2:])
    finally:
        print(f"steps={steps}", file=sys.stderr)


if __name__ == "__main__":
    main()
