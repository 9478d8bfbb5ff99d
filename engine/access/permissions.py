"""The permissions a role can hold, and the built-in roles.

A built-in role's permissions are defined here, not in the database: a permission added in a
release reaches admin (and whichever built-in role it belongs to) with the upgrade. The `roles`
table holds their rows too (users.role refers to it), refreshed by `nudgeflow init`.
"""

from __future__ import annotations

# name -> what it allows (shown by `nudgeflow role list`, the roles page and the README).
PERMISSIONS: dict[str, str] = {
    "view": "read campaigns, segments, templates, customers, runs and messages",
    "campaigns.edit": "create and change campaigns and segments; validate and preview them",
    "campaigns.run": "activate, pause and archive campaigns; run one now",
    "datasets.send": "send a message to a data set",
    "messages.cancel": "cancel a campaign's queued and held messages",
    "templates.edit": "create, change, delete and preview templates; send tests",
    "senders.edit": "set or change a send node's sender and reply-to",
    "data.export": "download CSV and XLSX files (segment and run exports, data sets)",
    "contacts.view": "see customers' email addresses and phone numbers (masked otherwise) "
                     "and search by them",
    "customers.edit": "import and update customers and invoices, and post events (API)",
    "settings.manage": "workspace settings and channel credits; read /metrics",
    "users.manage": "users, roles and API tokens",
    "points.adjust": "add or remove a customer's points by hand",
}

VIEWER = ("view", "data.export", "contacts.view")
MARKETER = (*VIEWER, "campaigns.edit", "campaigns.run", "datasets.send", "messages.cancel",
            "templates.edit", "senders.edit", "customers.edit", "points.adjust")
BUILT_IN: dict[str, frozenset[str]] = {
    "viewer": frozenset(VIEWER),
    "marketer": frozenset(MARKETER),
    "admin": frozenset(PERMISSIONS),
}


def ordered(names: frozenset[str] | set[str] | list[str]) -> list[str]:
    """Permission names in PERMISSIONS' order (unknown names last, sorted)."""
    known = [p for p in PERMISSIONS if p in names]
    return known + sorted(set(names) - set(PERMISSIONS))
