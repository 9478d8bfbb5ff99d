"""Prints each message to standard output."""

from __future__ import annotations

import sys
from collections.abc import Generator, Sequence

from engine.channels.base import Channel, Outcome, Outgoing
from engine.channels.file import as_text


class ConsoleChannel(Channel):
    max_batch = 500

    def send(self, batch: Sequence[Outgoing]) -> Generator[list[Outcome], None, None]:
        for m in batch:
            sys.stdout.write(f"----- {m.channel} #{m.message_id}\n{as_text(m)}\n")
        sys.stdout.flush()
        yield [Outcome(m.message_id, "sent", provider_id=f"console:{m.message_id}")
               for m in batch]
