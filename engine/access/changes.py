"""What saving a campaign needs beyond campaigns.edit: changing its status needs campaigns.run
(a saved document carries a status, so a save could otherwise activate it), and setting or
changing a send node's sender or reply-to needs senders.edit."""

from __future__ import annotations

from typing import Any

SENDER_FIELDS = ("sender", "reply_to")


def senders_of(graph: Any) -> dict[str, tuple[Any, ...]]:
    """Each send-message node's (sender, reply_to), by node id."""
    nodes = (graph or {}).get("nodes") or [] if isinstance(graph, dict) else []
    return {n["id"]: tuple((n.get("config") or {}).get(f) for f in SENDER_FIELDS)
            for n in nodes if isinstance(n, dict) and n.get("type") == "send-message"}


def campaign_save_needs(before: Any, after: dict[str, Any]) -> set[str]:
    """The permissions a save of `after` needs over the saved campaign `before` (a row with
    status and graph, or None for a new campaign), besides campaigns.edit."""
    needs = set()
    if after["status"] != (before.status if before is not None else "draft"):
        needs.add("campaigns.run")
    old = senders_of(before.graph if before is not None else None)
    blank = (None,) * len(SENDER_FIELDS)
    if any(pair != old.get(node, blank) for node, pair in senders_of(after["graph"]).items()):
        needs.add("senders.edit")
    return needs
