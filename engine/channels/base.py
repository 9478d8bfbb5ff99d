"""The channel contract: a provider that sends rendered messages and says what happened."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True)
class Outgoing:
    """A rendered message ready for a provider."""

    message_id: int
    channel: str
    to: str
    body: str
    subject: str | None = None
    html: bool = False
    sender: str | None = None
    reply_to: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: What the provider should track (email): "opens", "clicks"; nothing by default.
    tracking: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Outcome:
    """What a provider did with one message.

    status: `sent` (accepted; provider_id when known), `retry` (429, 5xx, timeout or connection
    error: try again later) or `failed` (rejected for good: other 4xx)."""

    message_id: int
    status: str
    provider_id: str | None = None
    error: str | None = None
    #: What a `failed` outcome says about the recipient (engine.feedback.refusals):
    #: "opted_out" (they asked the sender to stop) or "bad_address" (no such recipient).
    refusal: str | None = None


class Channel(ABC):
    """A provider for one channel (email or SMS)."""

    #: How many messages `send` accepts at once.
    max_batch: ClassVar[int] = 1

    @abstractmethod
    def send(self, batch: Sequence[Outgoing]) -> Generator[list[Outcome], None, None]:
        """Send up to `max_batch` messages, one provider request after another, yielding each
        request's outcomes (one Outcome per message it carried) as soon as its answer arrives.

        The caller records what a request yielded before it asks for the next, so a crash can
        repeat at most the request that was open; it may stop (close the generator) between
        requests, when its lease is no longer safe, and then nothing more may be sent. Every
        message of the batch gets exactly one Outcome over all the yields.

        Must not raise for provider or network errors, nor for a malformed or truncated answer:
        classify them as `retry` (429, 5xx, timeout, connection or protocol error) or `failed`
        (other 4xx) with the provider's words in `error`. Must not retry by itself; the outbox
        schedules retries with backoff and counts attempts. Must not touch the database."""
