"""The words a marketer reads for the engine's names: node types, customer fields, activity
kinds and skip reasons. One table: the pages use it through the `label` filter and the scripts
get it embedded in every page (nf.label in api.js)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nodes.send_message import SKIP_SUMMARIES

NODE_TYPES = {
    "trigger": "Trigger",
    "segment-select": "Segment select",
    "award-bonus": "Award bonus",
    "send-message": "Send message",
    "wait": "Wait",
    "condition": "Condition",
    "split": "Split",
    "recipients": "Chosen rows",
}

FIELDS = {
    "external_id": "Customer id",
    "first_name": "First name",
    "last_name": "Last name",
    "email": "Email",
    "phone": "Phone",
    "gender": "Gender",
    "branch": "Branch",
    "region": "Region",
    "status": "Status",
    "birth_date": "Birth date",
    "registered_at": "Registered on",
    "email_opt_out": "Opted out of email",
    "sms_opt_out": "Opted out of SMS",
    "marketing_consent": "Marketing consent",
    "age": "Age",
    "days_since_registration": "Days since registration",
    "days_until_birthday": "Days until birthday",
    "has_valid_email": "Has a valid email",
    "has_valid_phone": "Has a valid phone",
    "days_past_due": "Days past due",
    "overdue_amount": "Overdue amount",
    "outstanding_amount": "Outstanding amount",
    "unpaid_invoices": "Unpaid invoices",
    "bonus_balance": "Bonus balance",
    "days_since_last_message": "Days since last message",
    "next_due_date": "Next due date",
    "next_amount_due": "Next amount due",
    "last_payment_date": "Last payment date",
    "days_since_last_payment": "Days since last payment",
    "owed_next_30": "Owed in the next 30 days",
    "owed_31_60": "Owed in 31-60 days",
    "owed_61_90": "Owed in 61-90 days",
    "owed_91_120": "Owed in 91-120 days",
    "owed_over_120": "Owed after 120 days",
    "overdue_invoices": "Overdue invoices",
    "paid_ratio": "Share paid",
    "paid_up_on": "Paid up on",
}

ACTIVITY_KINDS = {
    "message_queued": "Message queued",
    "message_skipped": "Message skipped",
    "message_sent": "Message sent",
    "message_failed": "Message failed",
    "message_cancelled": "Message cancelled",
    "bonus_awarded": "Bonus awarded",
    "bonus_expired": "Bonus expired",
    "bonus_adjusted": "Points added",
    "bonus_redeemed": "Points redeemed",
    "unsubscribed": "Unsubscribed",
    "event_received": "Event received",
    "journey_exited": "Left the journey",
    "message_delivered": "Message delivered",
    "message_bounced": "Message bounced",
    "message_opened": "Message opened",
    "message_clicked": "Link clicked",
    "message_complained": "Marked as spam",
    "message_undelivered": "Message not delivered",
    "opted_out": "Opted out",
    "opted_in": "Opted back in",
    "profile_changed": "Profile changed",
}

LABELS: dict[str, Mapping[str, str]] = {
    "node_types": NODE_TYPES,
    "fields": FIELDS,
    "activity_kinds": ACTIVITY_KINDS,
    "skip_reasons": SKIP_SUMMARIES,
}


def label(name: str, group: str) -> str:
    """The label of `name` in `group`; a name the table does not know yet (a kind added later,
    an imported attribute) reads as words: "journey_exited" -> "Journey exited"."""
    known = LABELS[group].get(name)
    if known is not None:
        return known
    if group == "fields" and name.startswith("attributes."):
        return f"{name.removeprefix('attributes.')} (imported)"
    return name.replace("_", " ").replace("-", " ").capitalize()


def node_title(node: Mapping[str, Any], names: Mapping[str, Mapping[str, str]]) -> str:
    """A node as the editor titles it: its type, and the saved segment or template it uses
    ("Send message: Past-due email"); `names` maps "segments"/"templates" to key -> name.
    editor.js's title() follows the same rule."""
    kind = NODE_TYPES.get(node.get("type", ""), node.get("type", ""))
    config = node.get("config") or {}
    for ref, group in (("segment", "segments"), ("template", "templates")):
        if config.get(ref):
            return f"{kind}: {names.get(group, {}).get(config[ref]) or config[ref]}"
    return kind
