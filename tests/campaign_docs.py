"""Campaign documents used by the tests."""

from __future__ import annotations

import copy
from typing import Any

SEGMENTS = [{"key": "member-1y", "name": "Members for a year",
             "rules": {"field": "days_since_registration", "op": ">=", "value": 365}}]
TEMPLATES = [
    {"key": "bday-sms", "channel": "sms",
     "body": "Happy birthday {{ customer.first_name }}! {{ bonus.amount }} points."},
    {"key": "due-email", "channel": "email", "subject": "Invoice due",
     "body": "Invoice {{ invoice.external_id }} is due."},
]
BIRTHDAY = {
    "key": "birthday-bonus", "name": "Birthday bonus", "status": "active",
    "purpose": "marketing",
    "graph": {
        "nodes": [
            {"id": "t", "type": "trigger",
             "config": {"kind": "date", "field": "birth_date", "offset_days": 0}},
            {"id": "s", "type": "segment-select", "config": {"segment": "member-1y"}},
            {"id": "a", "type": "award-bonus", "config": {
                "amount": 100, "lifetime_days": 30, "legal_entity": "Main",
                "description": "Birthday bonus"}},
            {"id": "m", "type": "send-message",
             "config": {"template": "bday-sms", "send_at": {"mode": "at", "time": "09:00"}}},
        ],
        "edges": [["t", "s"], ["s", "a"], ["a", "m"]],
    },
}
REMINDER = {
    "key": "due-reminder", "name": "Due in 3 days", "status": "active", "purpose": "service",
    "graph": {
        "nodes": [
            {"id": "t", "type": "trigger", "config": {"kind": "invoice_due", "offset_days": -3}},
            {"id": "m", "type": "send-message", "config": {"template": "due-email"}},
        ],
        "edges": [["t", "m"]],
    },
}
MONTHLY = {
    "key": "month-end", "name": "Month end", "status": "active", "purpose": "service",
    "graph": {
        "nodes": [
            {"id": "t", "type": "trigger",
             "config": {"kind": "schedule", "every": "month", "day_of_month": 31}},
            {"id": "m", "type": "send-message",
             "config": {"channel": "email", "subject": "Statement", "body": "Your statement"}},
        ],
        "edges": [["t", "m"]],
    },
}


def document(*campaigns: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy({"version": 1, "segments": SEGMENTS, "templates": TEMPLATES,
                          "campaigns": list(campaigns)})


def daily(key: str, segment: str, status: str = "active") -> dict[str, Any]:
    """A campaign that emails every member of `segment` every day (segment `key`: everyone)."""
    return {
        "key": key, "name": key.title(), "status": status, "purpose": "service",
        "graph": {
            "nodes": [
                {"id": "t", "type": "trigger", "config": {"kind": "schedule", "every": "day"}},
                {"id": "s", "type": "segment-select", "config": {"segment": segment}},
                {"id": "m", "type": "send-message",
                 "config": {"channel": "email", "subject": "Hello", "body": "Hello"}},
            ],
            "edges": [["t", "s"], ["s", "m"]],
        },
    }


def daily_document(*campaigns: dict[str, Any]) -> dict[str, Any]:
    """Daily campaigns with their segments: each campaign's segment selects everyone."""
    keys = dict.fromkeys(c["graph"]["nodes"][1]["config"]["segment"] for c in campaigns)
    return {"version": 1, "segments": [{"key": k, "rules": {"all": []}} for k in keys],
            "templates": [], "campaigns": list(campaigns)}
