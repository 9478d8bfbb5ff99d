"""Campaign graphs: validated with marshmallow (each node's config by its type's schema) and
networkx (one trigger as the only root, acyclic, everything reachable). Errors name the node id
and the JSON path."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import networkx as nx
from marshmallow import Schema, fields, validate, validates
from marshmallow import ValidationError as SchemaError

from engine.errors import Problem, ValidationError, flatten_messages
from engine.labels import NODE_TYPES
from engine.limits import fits
from engine.models import Campaign
from nodes import REGISTRY, Node
from nodes.base import References

# Also the `pattern` of the key inputs on the pages, which browsers compile with the `v` flag:
# there a `-` inside a class must be escaped.
KEY_PATTERN = r"[a-z0-9][a-z0-9_\-]{0,99}"
KEY = validate.Regexp(f"^{KEY_PATTERN}$",
                      error="expected lower-case letters, digits, - and _ (at most 100)")
# The keys of blasts' campaign rows (engine/blasts): blast-7, and blast-new-<hex> while made.
BLAST_KEY = re.compile(r"^blast-(\d+|new-[0-9a-f]+)$")
BLAST_ONLY = "recipients (chosen data set rows) is for blasts, not campaigns"
NODE_ID = validate.Regexp(r"^[A-Za-z0-9_-]{1,64}$",
                          error="expected letters, digits, - and _ (at most 64)")


class PositionSchema(Schema):
    x = fields.Float(required=True)
    y = fields.Float(required=True)


class NodeSchema(Schema):
    id = fields.String(required=True, validate=NODE_ID)
    # `recipients` is let through here and refused in load_campaign unless for a blast; the
    # message offers what a campaign may use.
    type = fields.String(required=True, validate=validate.OneOf(
        sorted(REGISTRY), error="Must be one of: " + ", ".join(
            sorted(t for t in REGISTRY if t != "recipients")) + "."))
    config = fields.Dict(load_default=dict)
    position = fields.Nested(PositionSchema, load_default=None)


EDGE = validate.Length(min=2, max=3, error="expected [from, to] or [from, to, output label]")


class GraphSchema(Schema):
    nodes = fields.List(fields.Nested(NodeSchema), required=True,
                        validate=validate.Length(min=1))
    edges = fields.List(fields.List(fields.String(), validate=EDGE), load_default=list)
    # Rules that end a journey: a customer waiting at a wait node who matches them when the
    # wait ends leaves the campaign. Written at the campaign's level in files and the API,
    # kept here so that it is versioned with the graph.
    exit_when = fields.Dict(load_default=None, allow_none=True)


class CampaignSchema(Schema):
    key = fields.String(required=True, validate=KEY)
    name = fields.String(required=True, validate=fits(Campaign.name, min_length=1))
    status = fields.String(load_default="draft",
                           validate=validate.OneOf(("draft", "active", "paused", "archived")))
    purpose = fields.String(load_default="service",
                            validate=validate.OneOf(("marketing", "service")))
    timezone = fields.String(load_default="UTC", validate=fits(Campaign.timezone))
    graph = fields.Nested(GraphSchema, required=True)
    exit_when = fields.Dict(load_default=None, allow_none=True)

    @validates("key")
    def _not_a_blast(self, value: str, **_kw: Any) -> None:
        if BLAST_KEY.match(value):
            raise SchemaError("blast-N and blast-new-... name blasts; choose another key")

    @validates("timezone")
    def _tz(self, value: str, **_kw: Any) -> None:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise SchemaError(f"unknown IANA time zone {value!r}") from None


@dataclass(frozen=True)
class Graph:
    """A validated campaign graph, its nodes built and topologically ordered. `inputs` names
    each node's parents with the output label of the edge (None for a node's only output)."""

    nodes: dict[str, Node]
    parents: dict[str, list[str]]
    order: list[str]
    trigger: str
    inputs: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)
    exit_when: Any = None


def load_campaign(doc: Any, refs: References, path: str = "$",
                  blast: bool = False) -> tuple[dict[str, Any], Graph]:
    """Validate one campaign document; return the clean document and its graph.

    `exit_when` may be given at the campaign's level (the file format) or in the graph; it is
    kept in the graph, so that a change to it is a new version like any change to the graph.
    Only a blast's graph (engine.blasts) may hold a `recipients` node: in a campaign, which
    has no chosen rows, it would silently keep nobody."""
    try:
        clean = CampaignSchema().load(doc)
    except SchemaError as exc:
        raise ValidationError.from_messages(exc.messages, path) from None
    if not blast and (found := [Problem(f"{path}.graph.nodes[{i}].type", BLAST_ONLY)
                                for i, n in enumerate(clean["graph"]["nodes"])
                                if n["type"] == "recipients"]):
        raise ValidationError(found)
    exit_when = clean.pop("exit_when")
    if exit_when is not None:
        clean["graph"]["exit_when"] = exit_when
    if clean["graph"].get("exit_when") is None:
        clean["graph"].pop("exit_when", None)
    graph, configs = build_graph(clean["graph"], refs, f"{path}.graph")
    for node in clean["graph"]["nodes"]:
        node["config"] = configs[node["id"]]
        if node["position"] is None:
            del node["position"]
    return clean, graph


def build_graph(graph: dict[str, Any], refs: References,
                path: str = "$.graph") -> tuple[Graph, dict[str, dict[str, Any]]]:
    problems: list[Problem] = []
    nodes: dict[str, Node] = {}
    configs: dict[str, dict[str, Any]] = {}
    g: nx.DiGraph = nx.DiGraph()
    for i, raw in enumerate(graph["nodes"]):
        where, node_id = f"{path}.nodes[{i}]", raw["id"]
        named = node_name(node_id, raw["type"])
        if node_id in nodes:
            problems.append(Problem(f"{where}.id", f"{named}: duplicate node id"))
            continue
        cls = REGISTRY[raw["type"]]
        try:
            config = cls.schema().load(raw["config"])
        except SchemaError as exc:
            problems.extend(_config_problem(named, f"{where}.config", p, m)
                            for p, m in flatten_messages(exc.messages, f"{where}.config"))
            config = None
        g.add_node(node_id, index=i)
        if config is not None:
            node = cls(node_id, config)
            # Stored as JSON: the schema's dump (defaults filled, datetimes as ISO text).
            nodes[node_id], configs[node_id] = node, cls.schema().dump(config)
            problems.extend(_config_problem(named, f"{where}.config",
                                            f"{where}.config.{p.where}", p.message)
                            for p in node.check_references(refs))
        else:
            nodes[node_id] = cls(node_id, {})
    labels: dict[tuple[str, str], list[str | None]] = {}
    for j, edge in enumerate(graph["edges"]):
        src, dst = edge[0], edge[1]
        for end, name in ((0, src), (1, dst)):
            if name not in g:
                problems.append(Problem(f"{path}.edges[{j}][{end}]",
                                        f"edge to unknown node {name!r}"))
        if src in g and dst in g:
            label = edge[2] if len(edge) == 3 else None
            if (why := _label_problem(nodes[src], label)) is not None:
                problems.append(Problem(f"{path}.edges[{j}]", why))
            elif label in labels.get((src, dst), []):
                problems.append(Problem(f"{path}.edges[{j}]", "the same edge twice"))
            g.add_edge(src, dst)
            labels.setdefault((src, dst), []).append(label)
    problems.extend(_structure(g, nodes, path))
    triggers = [node for node in nodes.values() if node.is_trigger and node.config]
    exit_when = graph.get("exit_when")
    if len(triggers) == 1:
        provided = triggers[0].provides()
        for n, node in nodes.items():
            if node.config:
                where = f"{path}.nodes[{g.nodes[n]['index']}].config"
                problems.extend(_config_problem(node_name(n, node.type_name), where,
                                                f"{where}.{p.where}", p.message)
                                for p in node.check_variables(provided, refs))
        if exit_when is not None:
            problems.extend(_exit_problems(exit_when, nodes, provided, refs, path))
    if problems:
        raise ValidationError(problems, title="invalid campaign")
    trigger = next(n for n, node in nodes.items() if node.is_trigger)
    parents = {n: sorted(g.predecessors(n), key=lambda p: g.nodes[p]["index"]) for n in g}
    inputs = {n: [(p, label) for p in ps for label in labels[(p, n)]]
              for n, ps in parents.items()}
    order = list(nx.lexicographical_topological_sort(g, key=lambda n: g.nodes[n]["index"]))
    return Graph(nodes, parents, order, trigger, inputs, exit_when), configs


def _label_problem(source: Node, label: str | None) -> str | None:
    """Edges out of a node with named outputs (condition: yes/no; split: its branches) carry
    the output's name; edges out of any other node carry none."""
    if not source.config:  # its config is invalid (reported): its outputs are unknown
        return None
    outputs = source.outputs()
    named = node_name(source.id, source.type_name)
    if not outputs:
        if label is None:
            return None
        return f"{named} has a single output: an edge from it takes no label (got {label!r})"
    choices = " or ".join(repr(o) for o in outputs)
    if label is None:
        return f"an edge out of {named} needs the output it leaves from: {choices}"
    if label not in outputs:
        return f"{named} has no output {label!r} (expected {choices})"
    return None


def _exit_problems(rules: Any, nodes: dict[str, Node], provided: frozenset[str],
                   refs: References, path: str) -> list[Problem]:
    from engine.segments import validate_rules  # here: engine.segments imports the models

    where = f"{path}.exit_when"
    if not any(node.type_name == "wait" for node in nodes.values()):
        return [Problem(where, "exit_when applies when a customer's wait ends, and this "
                               "campaign has no wait node")]
    catalog: dict[str, Any] = {key: {"all": []} for key in refs.segments}
    try:
        validate_rules(rules, catalog, path=where, scopes=provided & {"invoice"})
    except ValidationError as exc:
        return exc.problems
    return []


def node_name(node_id: str, type_name: str) -> str:
    """How messages name a node: its id and what it is, "node 'm' (Send message)"."""
    return f"node {node_id!r} ({NODE_TYPES.get(type_name, type_name)})"


def _config_problem(named: str, config_path: str, path: str, message: str) -> Problem:
    """A problem in a node's config, its message naming the node and the field, so that it
    reads whole wherever it is shown: "node 'm' (Send message): template: required"."""
    field = path.removeprefix(config_path).removeprefix(".")
    return Problem(path, f"{named}: {field}: {message}" if field else f"{named}: {message}")


def _structure(g: nx.DiGraph, nodes: dict[str, Node], path: str) -> list[Problem]:
    def at(n: str) -> str:
        return f"{path}.nodes[{g.nodes[n]['index']}]"

    def named(n: str) -> str:
        return node_name(n, nodes[n].type_name)

    problems: list[Problem] = []
    triggers = [n for n, node in nodes.items() if node.is_trigger]
    if len(triggers) != 1:
        found = ", ".join(repr(t) for t in triggers) or "none"
        problems.append(Problem(f"{path}.nodes",
                                f"a campaign needs exactly one trigger node (found {found})"))
    for t in triggers:
        if g.in_degree(t):
            problems.append(Problem(at(t), f"{named(t)}: a trigger cannot have incoming edges"))
    if not nx.is_directed_acyclic_graph(g):
        cycle = nx.find_cycle(g)
        loop = " -> ".join([*(repr(a) for a, _ in cycle), repr(cycle[0][0])])
        problems.append(Problem(f"{path}.edges", f"the graph has a cycle: {loop}"))
    if len(triggers) == 1:
        reachable = nx.descendants(g, triggers[0]) | {triggers[0]}
        for n in g:
            if n not in reachable:
                problems.append(Problem(at(n), f"{named(n)}: not connected to the trigger"))
    return problems
