"""Operator semantics on plain Python values, NULL rules included (see fields.py)."""

from __future__ import annotations

from typing import Any


def apply_op(op: str, x: Any, value: Any) -> bool:
    if op == "is_null":
        return x is None
    if op == "not_null":
        return x is not None
    if x is None:
        return op in ("!=", "not_in")
    if op == "=":
        return bool(x == value)
    if op == "!=":
        return bool(x != value)
    if op == "<":
        return bool(x < value)
    if op == "<=":
        return bool(x <= value)
    if op == ">":
        return bool(x > value)
    if op == ">=":
        return bool(x >= value)
    if op == "in":
        return x in value
    if op == "not_in":
        return x not in value
    if op == "between":
        return bool(value[0] <= x <= value[1])
    if op == "contains":
        return str(value).lower() in str(x).lower()
    if op == "starts_with":
        return str(x).lower().startswith(str(value).lower())
    raise ValueError(f"unknown operator {op!r}")
