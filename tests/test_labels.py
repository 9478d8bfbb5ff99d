"""The label table covers every name a marketer reads, so a field, kind or node type added later
without a label is caught here rather than shown raw."""

from __future__ import annotations

from engine.labels import ACTIVITY_KINDS, FIELDS, NODE_TYPES, label, node_title
from engine.models.effects import ACTIVITY_KINDS as KINDS
from engine.segments.fields import FIELDS as RULE_FIELDS
from nodes import REGISTRY


def test_every_field_kind_and_node_type_has_a_label() -> None:
    assert set(FIELDS) == set(RULE_FIELDS)
    assert set(ACTIVITY_KINDS) == set(KINDS)
    assert set(NODE_TYPES) == set(REGISTRY)


def test_labels_and_their_fallbacks() -> None:
    assert label("days_past_due", "fields") == "Days past due"
    assert label("message_queued", "activity_kinds") == "Message queued"
    assert label("opted_out", "skip_reasons") == "opted out of this channel"
    assert label("attributes.loyalty_tier", "fields") == "loyalty_tier (imported)"
    assert label("journey_exited", "activity_kinds") == "Left the journey"
    assert label("points_redeemed", "activity_kinds") == "Points redeemed"  # not named yet


def test_node_titles_name_what_the_node_uses() -> None:
    names = {"segments": {"past-due-30": "Past due 30 days"},
             "templates": {"past-due-email": "Past-due email"}}
    assert node_title({"type": "trigger", "config": {"kind": "manual"}}, names) == "Trigger"
    assert node_title({"type": "send-message", "config": {"template": "past-due-email"}},
                      names) == "Send message: Past-due email"
    assert node_title({"type": "segment-select", "config": {"segment": "gone"}},
                      names) == "Segment select: gone"
    assert node_title({"type": "send-message", "config": {"channel": "sms", "body": "x"}},
                      names) == "Send message"
