"""The node registry: type name to class, built in full before it is published."""

from __future__ import annotations

from nodes.award_bonus import AwardBonus
from nodes.base import Node
from nodes.condition import Condition
from nodes.recipients import Recipients
from nodes.segment_select import SegmentSelect
from nodes.send_message import SendMessage
from nodes.split import Split
from nodes.triggers import Trigger
from nodes.wait import Wait


class RegistryError(Exception):
    pass


def build_registry(*classes: type[Node]) -> dict[str, type[Node]]:
    """Map each class's type_name to it; a duplicate name is an error, not a silent overwrite."""
    registry: dict[str, type[Node]] = {}
    for cls in classes:
        if cls.type_name in registry:
            raise RegistryError(
                f"node type {cls.type_name!r} registered twice: "
                f"{registry[cls.type_name].__qualname__} and {cls.__qualname__}")
        registry[cls.type_name] = cls
    return registry


REGISTRY = build_registry(Trigger, SegmentSelect, AwardBonus, SendMessage, Wait, Condition,
                          Split, Recipients)


def node_class(type_name: str) -> type[Node]:
    try:
        return REGISTRY[type_name]
    except KeyError:
        raise RegistryError(
            f"unknown node type {type_name!r} (expected one of {', '.join(sorted(REGISTRY))})"
        ) from None


__all__ = ["REGISTRY", "Node", "RegistryError", "build_registry", "node_class"]
