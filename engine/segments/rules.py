"""The rule language: validation that names the JSON path, and compilation to one SQL boolean.

    {"all": [...]}  {"any": [...]}  {"not": {...}}  {"segment": "key"}
    {"field": "days_past_due", "op": ">=", "value": 30}
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from marshmallow import Schema, fields, validate, validates_schema
from marshmallow import ValidationError as SchemaError
from sqlalchemy import and_, false, not_, or_, true

from engine.errors import Problem, ValidationError, flatten_messages
from engine.limits import text_problem, value_problems
from engine.segments import scoped
from engine.segments.fields import FIELDS, TYPE_OPS, Bool, compare
from engine.segments.scoped import SCOPES, Scope
from engine.segments.sqlfuncs import attr

ALL_OPS = sorted(set().union(*TYPE_OPS.values()))
NO_VALUE = {"is_null", "not_null"}
LIST_OPS = {"in", "not_in"}
ATTRIBUTE = re.compile(r"attributes\.([A-Za-z_][A-Za-z0-9_]*)")
ATTRIBUTE_OPS = {
    "number": TYPE_OPS["number"],
    "text": TYPE_OPS["string"] | {"<", "<=", ">", ">=", "between"},
    "bool": TYPE_OPS["bool"],
}
GROUP_KEYS = ("all", "any", "not", "segment")
# Rules compile to one SQL expression: SQLite refuses expressions deeper than 1,000 and a long
# OR chain is that deep, and every value is a bound parameter (PostgreSQL takes 65,535).
MAX_RULE_DEPTH = 32
MAX_LIST = 1000
Catalog = Mapping[str, Any]


def _is_type(type_: str, v: Any) -> bool:
    if type_ == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if type_ == "number":
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    if type_ == "bool":
        return isinstance(v, bool)
    if type_ == "date":
        if not isinstance(v, str):
            return False
        try:
            date.fromisoformat(v)
        except ValueError:
            return False
        return len(v) == 10
    return isinstance(v, str)


TYPE_NAMES = {"int": "a whole number", "number": "a number", "bool": "true or false",
              "date": "a date YYYY-MM-DD", "string": "text", "text": "text"}


def attribute_kind(value: Any) -> str:
    """The JSON type an attribute condition compares as, read off its value."""
    sample = value[0] if isinstance(value, list) and value else value
    if isinstance(sample, bool):
        return "bool"
    if isinstance(sample, int | float):
        return "number"
    return "text"


class ConditionSchema(Schema):
    field = fields.String(required=True)
    op = fields.String(required=True, validate=validate.OneOf(ALL_OPS))
    value = fields.Raw(allow_none=True, load_default=None)

    @validates_schema
    def _check(self, data: dict[str, Any], **_kw: Any) -> None:
        name, op, value = data["field"], data["op"], data.get("value")
        if ATTRIBUTE.fullmatch(name) or scoped.attribute_of(name):
            type_ = {"text": "string"}.get(kind := attribute_kind(value), kind)
            ops = ATTRIBUTE_OPS[kind]
        elif name in FIELDS or scoped.field_type(name):
            type_ = FIELDS[name].type if name in FIELDS else scoped.INVOICE_FIELDS[name]
            ops = TYPE_OPS[type_]
        elif name.startswith("invoice."):
            raise SchemaError(f"unknown invoice field {name!r} (expected one of "
                              f"{', '.join(scoped.INVOICE_FIELDS)} or invoice.attributes.NAME)",
                              "field")
        elif name.startswith("event."):
            raise SchemaError(f"unknown event field {name!r} (expected "
                              f"event.properties.NAME)", "field")
        else:
            raise SchemaError(
                f"unknown field {name!r} (a customer column, attributes.NAME or a derived "
                f"field such as days_past_due)", "field")
        if op not in ops:
            raise SchemaError(
                f"operator {op!r} does not apply to {name} ({TYPE_NAMES[type_]}); "
                f"use one of {', '.join(sorted(ops))}", "op")
        expected = TYPE_NAMES[type_]
        if op in NO_VALUE:
            if value is not None:
                raise SchemaError(f"{op} takes no value", "value")
        elif op in LIST_OPS:
            if not isinstance(value, list) or not value:
                raise SchemaError(f"{op} needs a non-empty list of {expected}", "value")
            if len(value) > MAX_LIST:
                raise SchemaError(f"{op} takes at most {MAX_LIST} values, got {len(value)} "
                                  f"(for more, import them as an attribute and test that)",
                                  "value")
            for i, item in enumerate(value):
                if not _is_type(type_, item):
                    raise SchemaError(f"item {i}: expected {expected}, got {item!r}", "value")
        elif op == "between":
            if not (isinstance(value, list) and len(value) == 2
                    and all(_is_type(type_, v) for v in value)):
                raise SchemaError(f"between needs [low, high], each {expected}", "value")
            if value[0] > value[1]:
                raise SchemaError(f"between: low {value[0]!r} is above high {value[1]!r}", "value")
        elif op in ("contains", "starts_with"):
            if not isinstance(value, str) or not value:
                raise SchemaError(f"{op} needs non-empty text", "value")
        elif not _is_type(type_, value):
            raise SchemaError(f"expected {expected} for {name}, got {value!r}", "value")


_condition_schema = ConditionSchema()


def check_shape(node: Any, path: str, problems: list[Problem], refs: list[tuple[str, str]],
                depth: int = 0, scopes: frozenset[str] = frozenset(SCOPES)) -> None:
    """Collect every problem of a rule tree and the segment references it makes; fields of a
    scope not in `scopes` (invoice.*, event.properties.*) are problems."""
    if depth > MAX_RULE_DEPTH:
        problems.append(Problem(path, f"rules nest at most {MAX_RULE_DEPTH} levels deep"))
        return
    if not isinstance(node, dict):
        problems.append(Problem(path, "expected an object: all, any, not, segment or a condition"))
        return
    groups = [k for k in GROUP_KEYS if k in node]
    if groups:
        key = groups[0]
        if len(node) != 1:
            problems.append(Problem(path, f"{key!r} must be the object's only key"))
            return
        inner = node[key]
        if key in ("all", "any"):
            if not isinstance(inner, list):
                problems.append(Problem(f"{path}.{key}", "expected a list of rules"))
                return
            for i, child in enumerate(inner):
                check_shape(child, f"{path}.{key}[{i}]", problems, refs, depth + 1, scopes)
        elif key == "not":
            check_shape(inner, f"{path}.not", problems, refs, depth + 1, scopes)
        elif not isinstance(inner, str) or not inner:
            problems.append(Problem(f"{path}.segment", "expected a segment key"))
        elif (why := text_problem(inner)) is not None:
            problems.append(Problem(f"{path}.segment", why))
        else:
            refs.append((f"{path}.segment", inner))
        return
    # Values the database cannot take (NUL, 65-bit numbers, NaN) first: the schema's
    # messages quote the values, and a NUL in them would cut a PostgreSQL error short.
    if bad := value_problems(node, path, depth):
        problems.extend(bad)
        return
    try:
        _condition_schema.load(node)
    except SchemaError as exc:
        problems.extend(Problem(p, m) for p, m in flatten_messages(exc.messages, path))
        return
    if (needed := scoped.scope_of(node["field"])) is not None and needed not in scopes:
        problems.append(Problem(f"{path}.field", scoped.WHERE[needed]))


def validate_rules(rules: Any, catalog: Catalog, key: str | None = None, path: str = "$",
                   scopes: frozenset[str] = frozenset()) -> None:
    """Raise ValidationError naming each bad path: shape, fields, operators, value types,
    unknown segment references and reference cycles (`key` is the segment being saved).
    `scopes` are what the rules may read besides the customer ("invoice", "event")."""
    problems: list[Problem] = []
    refs: list[tuple[str, str]] = []
    check_shape(rules, path, problems, refs, scopes=scopes)
    for where, ref in refs:
        if ref not in catalog and ref != key:
            problems.append(Problem(where, f"unknown segment {ref!r}"))
    if not problems and key is not None:
        cycle = _find_cycle({**catalog, key: rules}, key)
        if cycle:
            problems.append(Problem(path, "segment references form a cycle: " + " -> ".join(cycle)))
    if problems:
        raise ValidationError(problems, title="invalid segment rules")


def references(rules: Any) -> list[str]:
    refs: list[tuple[str, str]] = []
    check_shape(rules, "$", [], refs)
    return [r for _, r in refs]


def scopes_read(rules: Any) -> set[str]:
    """The scopes ("invoice", "event") that fields of these (inline) rules read."""
    found: set[str] = set()

    def visit(node: Any) -> None:
        if not isinstance(node, dict):
            return
        for key in ("all", "any"):
            if isinstance(node.get(key), list):
                for child in node[key]:
                    visit(child)
        if "not" in node:
            visit(node["not"])
        if isinstance(node.get("field"), str) and (s := scoped.scope_of(node["field"])):
            found.add(s)

    visit(rules)
    return found


def _find_cycle(catalog: Catalog, start: str) -> list[str] | None:
    def visit(key: str, trail: list[str]) -> list[str] | None:
        if key in trail:
            return [*trail[trail.index(key):], key]
        for ref in references(catalog.get(key, {"all": []})):
            if (found := visit(ref, [*trail, key])) is not None:
                return found
        return None

    return visit(start, [])


def compile_rules(rules: Any, as_of: date, catalog: Catalog, scope: Scope | None = None,
                  _stack: tuple[str, ...] = ()) -> Bool:
    """One SQL boolean over `customers` (and the tables of `scope`), true for those the rules
    select as of `as_of`.

    Expects validated rules; a reference cycle still raises rather than recursing forever."""
    if "all" in rules:
        parts = [compile_rules(r, as_of, catalog, scope, _stack) for r in rules["all"]]
        return and_(*parts) if parts else true()
    if "any" in rules:
        parts = [compile_rules(r, as_of, catalog, scope, _stack) for r in rules["any"]]
        return or_(*parts) if parts else false()
    if "not" in rules:
        return not_(compile_rules(rules["not"], as_of, catalog, scope, _stack))
    if "segment" in rules:
        ref = rules["segment"]
        if ref in _stack:
            raise ValidationError([Problem("$", "segment references form a cycle: "
                                           + " -> ".join([*_stack, ref]))])
        if ref not in catalog:
            raise ValidationError([Problem("$.segment", f"unknown segment {ref!r}")])
        return compile_rules(catalog[ref], as_of, catalog, scope, (*_stack, ref))
    return compile_condition(rules["field"], rules["op"], rules.get("value"), as_of, scope)


def compile_condition(name: str, op: str, value: Any, as_of: date,
                      scope: Scope | None = None) -> Bool:
    if scoped.scope_of(name) is not None:
        kind = attribute_kind(value) if scoped.attribute_of(name) else None
        return scoped.compile_scoped(name, op, value, kind, as_of, scope)
    if (m := ATTRIBUTE.fullmatch(name)) is not None:
        if op in NO_VALUE:
            present = attr("present", m[1])
            return present if op == "not_null" else not_(present)
        return compare(attr(attribute_kind(value), m[1]), op, value)
    spec = FIELDS[name]
    if spec.type == "date" and op not in NO_VALUE:
        value = [date.fromisoformat(v) for v in value] if isinstance(value, list) \
            else date.fromisoformat(value)
    return spec.compile(op, value, as_of)
