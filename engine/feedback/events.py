"""What a provider reported, in our words."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# An event's effect on the message's delivery_status. The highest rank wins, whatever order
# the events arrive in (a late `deferred` never hides `delivered`); on a tie, the latest.
STATUS_RANK = {"deferred": 0, "delivered": 1, "bounced": 2, "dropped": 2, "undelivered": 2,
               "failed": 2, "complained": 3}
# The timeline entry of each kind, at most one per message and kind.
ACTIVITY_OF = {"delivered": "message_delivered", "bounced": "message_bounced",
               "dropped": "message_undelivered", "undelivered": "message_undelivered",
               "failed": "message_undelivered", "opened": "message_opened",
               "clicked": "message_clicked", "complained": "message_complained"}


@dataclass(frozen=True)
class Event:
    """One provider event.

    kind: delivered, bounced, dropped, deferred, opened, clicked, complained, unsubscribed,
    undelivered, failed, or what the provider called it when it means nothing to us (stored
    only). message_id: our id as the event names it (checked against the outbox before use).
    address: the recipient the provider names (a message whose address differs is not ours).
    invalid_address: the address is gone for good (a hard bounce). opt_out: the recipient
    asked for no more of the channel (a spam report, an unsubscribe)."""

    provider: str
    event_id: str
    kind: str
    at: datetime
    message_id: int | None = None
    address: str | None = None
    reason: str | None = None
    invalid_address: bool = False
    opt_out: bool = False
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class Received:
    """What a webhook call did: events posted, stored for the first time, already stored,
    naming no message of ours."""

    received: int = 0
    new: int = 0
    duplicates: int = 0
    unknown_message: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"received": self.received, "new": self.new, "duplicates": self.duplicates,
                "unknown_message": self.unknown_message}
