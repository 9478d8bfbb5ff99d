"""Saving segments, templates and campaigns (every campaign save is a new version), and the
campaign file import: all-or-nothing, every error named by its JSON path."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from marshmallow import Schema, fields
from marshmallow import ValidationError as SchemaError
from sqlalchemy import Connection, Engine, func, insert, select, update

from engine.db import write_transaction
from engine.errors import InUse, NotFound, Problem, ValidationError
from engine.graph import KEY, Graph, build_graph, load_campaign
from engine.journeys.waits import end_removed_waits
from engine.limits import fits, strict_loads, value_problems
from engine.models import Campaign, CampaignVersion, Message, Segment, Template
from engine.models.base import utcnow
from engine.segments import validate_rules
from engine.segments.rules import references as rule_references
from engine.templates import TemplateSchema
from nodes import REGISTRY
from nodes.base import References
from nodes.send_message import reads

# Version 2 adds output labels to edges (["c", "sms", "yes"]); version 1 files read unchanged.
FILE_VERSION = 2
READS = (1, 2)
NODE_INDEX = re.compile(r"\$\.graph\.nodes\[(\d+)\]")


def campaign_today(timezone: str, now: datetime | None = None) -> date:
    """Today's date in a campaign's time zone (`now`: naive UTC, default the clock)."""
    moment = (now or utcnow()).replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(ZoneInfo(timezone)).date()


class SegmentSchema(Schema):
    key = fields.String(required=True, validate=KEY)
    name = fields.String(validate=fits(Segment.name, min_length=1))
    rules = fields.Dict(required=True)


def references(conn: Connection, extra_segments: set[str] | None = None,
               extra_templates: list[dict[str, Any]] | None = None) -> References:
    """The saved segments and templates, plus those of a file being imported (which win)."""
    segments = set(conn.execute(select(Segment.key)).scalars()) | (extra_segments or set())
    templates = [*(dict(r._mapping) for r in conn.execute(
        select(Template.key, Template.channel, Template.subject, Template.body))),
        *(extra_templates or [])]
    return References(frozenset(segments), {t["key"]: t["channel"] for t in templates},
                      {t["key"]: reads(t.get("subject"), t["body"]) for t in templates})


def template_rows(conn: Connection) -> dict[str, dict[str, Any]]:
    return {r.key: dict(r._mapping) for r in conn.execute(select(
        Template.id, Template.key, Template.channel, Template.subject, Template.body,
        Template.transliterate))}


def graph_of(conn: Connection, campaign: Campaign | Any) -> Graph:
    """The runnable graph of a saved campaign (validated again against today's references)."""
    graph, _ = build_graph(campaign.graph, references(conn))
    return graph


def _insert_id(conn: Connection, stmt: Any) -> int:
    key = conn.execute(stmt).inserted_primary_key
    assert key is not None
    return int(key[0])


def _upsert(conn: Connection, model: Any, key: str, values: dict[str, Any]) -> tuple[Any, bool]:
    found = conn.execute(select(model.id).where(model.key == key)).scalar_one_or_none()
    if found is None:
        return _insert_id(conn, insert(model).values(key=key, **values)), True
    conn.execute(update(model).where(model.key == key).values(
        **values, updated_at=utcnow()))
    return found, False


def save_segment(conn: Connection, data: dict[str, Any]) -> int:
    return _upsert(conn, Segment, data["key"],
                   {"name": data.get("name") or data["key"], "rules": data["rules"]})[0]


def save_template(conn: Connection, data: dict[str, Any]) -> int:
    values = {k: data[k] for k in ("channel", "subject", "body", "transliterate")}
    return _upsert(conn, Template, data["key"], {"name": data.get("name") or data["key"], **values})[0]


def save_campaign(conn: Connection, clean: dict[str, Any], saved_by: str | None = None) -> int:
    """Insert or update a validated campaign; a changed graph becomes a new version."""
    current = conn.execute(
        select(Campaign.__table__).where(Campaign.key == clean["key"])).first()
    if current is not None and current.kind != "campaign":
        raise ValidationError([Problem("$.key", f"{clean['key']!r} is a blast's key")])
    values = {k: clean[k] for k in ("name", "status", "purpose", "timezone", "graph")}
    today = campaign_today(clean["timezone"])  # the first date the schedule runs it
    if current is None:
        values |= {"version": 1, "active_since": today if clean["status"] == "active" else None}
        campaign_id = _insert_id(conn, insert(Campaign).values(key=clean["key"], **values))
        version = 1
    else:
        campaign_id = current.id
        version = current.version + (current.graph != clean["graph"])
        if clean["status"] == "active" and current.status != "active":
            values["active_since"] = today
        conn.execute(update(Campaign).where(Campaign.id == campaign_id).values(
            **values, version=version, updated_at=utcnow()))
        if version == current.version:
            return int(campaign_id)
        end_removed_waits(conn, campaign_id, clean["graph"], version, today)
    conn.execute(insert(CampaignVersion).values(
        campaign_id=campaign_id, version=version, graph=clean["graph"], saved_at=utcnow(),
        saved_by=saved_by))
    return int(campaign_id)


def _load_list(items: Any, schema: Schema, path: str, problems: list[Problem]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not isinstance(items, list):
        problems.append(Problem(path, "expected a list"))
        return out
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        try:
            data = schema.load(item)
        except SchemaError as exc:
            problems.extend(ValidationError.from_messages(exc.messages, f"{path}[{i}]").problems)
            continue
        if data["key"] in seen:
            problems.append(Problem(f"{path}[{i}].key",
                                    f"duplicate key {data['key']!r} (also at [{seen[data['key']]}])"))
            continue
        seen[data["key"]] = i
        out.append(data)
    return out


def validate_document(conn: Connection, doc: Any) -> dict[str, list[dict[str, Any]]]:
    """Validate a whole campaign file against itself and the database; raise with every problem."""
    if not isinstance(doc, dict):
        raise ValidationError([Problem("$", "expected a JSON object with segments, templates "
                                            "and campaigns")])
    if doc.get("version") not in READS:
        raise ValidationError([Problem("$.version", f"this nudgeflow reads campaign files of "
                                       f"version 1 and 2; got {doc.get('version')!r}")])
    unknown = sorted(set(doc) - {"version", "segments", "templates", "campaigns"})
    problems = [Problem(f"$.{k}", "unknown key") for k in unknown]
    if doc["version"] == 1:
        problems.extend(_labelled_edges(doc.get("campaigns")))
    segments = _load_list(doc.get("segments", []), SegmentSchema(), "$.segments", problems)
    templates = _load_list(doc.get("templates", []), TemplateSchema(), "$.templates", problems)
    catalog: dict[str, Any] = dict(conn.execute(select(Segment.key, Segment.rules)).all())
    catalog |= {s["key"]: s["rules"] for s in segments}
    for i, seg in enumerate(segments):
        try:
            validate_rules(seg["rules"], catalog, key=seg["key"], path=f"$.segments[{i}].rules")
        except ValidationError as exc:
            problems.extend(exc.problems)
    refs = references(conn, {s["key"] for s in segments}, templates)
    campaigns = []
    raw_campaigns = doc.get("campaigns", [])
    if not isinstance(raw_campaigns, list):
        problems.append(Problem("$.campaigns", "expected a list"))
        raw_campaigns = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_campaigns):
        try:
            clean, _ = load_campaign(raw, refs, f"$.campaigns[{i}]")
        except ValidationError as exc:
            problems.extend(exc.problems)
            continue
        if clean["key"] in seen:
            problems.append(Problem(f"$.campaigns[{i}].key", f"duplicate key {clean['key']!r}"))
        seen.add(clean["key"])
        campaigns.append(clean)
    if problems:
        raise ValidationError(problems, title="invalid campaign file")
    return {"segments": segments, "templates": templates, "campaigns": campaigns}


def _labelled_edges(campaigns: Any) -> list[Problem]:
    """Edges with an output label in a version 1 file, which has none."""
    if not isinstance(campaigns, list):
        return []
    return [Problem(f"$.campaigns[{i}].graph.edges[{j}]",
                    'an edge with an output label needs a campaign file of "version": 2')
            for i, c in enumerate(campaigns) if isinstance(c, dict)
            and isinstance(c.get("graph"), dict) and isinstance(c["graph"].get("edges"), list)
            for j, e in enumerate(c["graph"]["edges"]) if isinstance(e, list) and len(e) == 3]


def import_file(engine: Engine, path: Path, saved_by: str | None = None) -> dict[str, int]:
    try:
        doc = strict_loads(path.read_bytes())
    except ValueError as exc:
        raise ValidationError([Problem(str(path), str(exc))],
                              title="invalid campaign file") from None
    if bad := value_problems(doc):
        raise ValidationError(bad, title="invalid campaign file")
    with write_transaction(engine) as conn:
        clean = validate_document(conn, doc)
        for seg in clean["segments"]:
            save_segment(conn, seg)
        for tpl in clean["templates"]:
            save_template(conn, tpl)
        for campaign in clean["campaigns"]:
            save_campaign(conn, campaign, saved_by)
        check_campaigns_using(conn, {t["key"]: f"$.templates[{i}]"
                                     for i, t in enumerate(clean["templates"])})
    return {k: len(v) for k, v in clean.items()}



def save_document(conn: Connection, raw: Any, key: str | None = None,
                  saved_by: str | None = None) -> dict[str, Any]:
    """Validate one campaign document against the saved segments and templates and save it."""
    clean, _ = load_campaign(raw, references(conn))
    if key is not None:
        require_key(key, clean["key"])
    save_campaign(conn, clean, saved_by)
    return clean


def set_status(conn: Connection, key: str, status: str) -> None:
    """Activate, pause or archive; activation starts the catch-up window that day."""
    current = conn.execute(select(Campaign.id, Campaign.status, Campaign.timezone)
                           .where(Campaign.key == key, Campaign.kind == "campaign")).first()
    if current is None:
        raise NotFound(f"no campaign {key!r}")
    values: dict[str, Any] = {"status": status, "updated_at": utcnow()}
    if status == "active" and current.status != "active":
        values["active_since"] = campaign_today(current.timezone)
    conn.execute(update(Campaign).where(Campaign.id == current.id).values(**values))


def require_key(expected: str, given: str) -> None:
    """A document saved at a key (the URL's) must carry that key."""
    if given != expected:
        raise ValidationError([Problem("$.key", f"expected {expected!r} (the key in the URL), "
                                                f"got {given!r}")])


def get_by_key(conn: Connection, model: Any, columns: Any, key: str) -> dict[str, Any]:
    """One segment, template or campaign by key, as a dict of the given columns."""
    row = conn.execute(select(*columns).where(model.key == key)).first()
    if row is None:
        raise NotFound(f"no {model.__tablename__[:-1]} {key!r}")
    return dict(row._mapping)


def campaigns_using(conn: Connection, kind: str, keys: set[str]) -> list[tuple[str, Any]]:
    """(key, graph) of the campaigns, not archived, whose graph names one of these segment or
    template keys."""
    found = []
    for ckey, graph in conn.execute(select(Campaign.key, Campaign.graph)
                                    .where(Campaign.status != "archived")
                                    .order_by(Campaign.key)):
        for node in graph.get("nodes", []):
            uses = REGISTRY[node["type"]](node["id"], node["config"]).uses()
            if any((kind, key) in uses for key in keys):
                found.append((ckey, graph))
                break
    return found


def check_campaigns_using(conn: Connection, templates: dict[str, str]) -> None:
    """A saved campaign stays valid: after templates are saved ({key: the JSON path to name in
    an error}), the campaigns that use them are checked again against them (a template that
    now reads `invoice` in a campaign without invoices is refused)."""
    refs = references(conn)
    problems = []
    for ckey, graph in campaigns_using(conn, "template", set(templates)):
        try:
            build_graph(graph, refs)
        except ValidationError as exc:
            for p in exc.problems:
                # Named at the template the failing node uses, else the first one saved.
                found = NODE_INDEX.match(p.where)
                node = graph["nodes"][int(found[1])] if found else None
                used = REGISTRY[node["type"]](node["id"], node["config"]).uses() if node else set()
                where = next((path for key, path in templates.items() if ("template", key) in used),
                             next(iter(templates.values())))
                problems.append(Problem(where, f"campaign {ckey!r}, {p.message}"))
    if problems:
        raise ValidationError(problems, title="a campaign that uses the template would no "
                                              "longer be valid")


def users_of(conn: Connection, kind: str, key: str) -> list[str]:
    """What still needs segment or template `key`: campaigns that are not archived (their
    graph names it), other segments (their rules refer to it), and messages waiting to be
    rendered with it."""
    found = [f"campaign {ckey!r}" for ckey, _ in campaigns_using(conn, kind, {key})]
    if kind == "segment":
        found += [f"segment {other!r}" for other, rules in conn.execute(
            select(Segment.key, Segment.rules).where(Segment.key != key).order_by(Segment.key))
            if key in rule_references(rules)]
    else:
        waiting = conn.execute(
            select(func.count()).select_from(Message)
            .join(Template, Template.id == Message.template_id)
            .where(Template.key == key, Message.status.in_(("queued", "held", "sending")))
        ).scalar_one()
        if waiting:
            found.append(f"{waiting} message(s) waiting to be sent")
    return found


def delete_by_key(conn: Connection, model: Any, key: str) -> None:
    """Delete a segment or template, unless something still needs it (InUse names what)."""
    from sqlalchemy import delete

    kind = model.__tablename__[:-1]
    if needed := users_of(conn, kind, key):
        raise InUse(f"{kind} {key!r} is still used by {', '.join(needed)}")
    if kind == "template":  # the messages it rendered keep their text, not the reference
        conn.execute(update(Message).where(Message.template_id.in_(
            select(Template.id).where(Template.key == key).scalar_subquery()))
            .values(template_id=None))
    if conn.execute(delete(model).where(model.key == key)
                    .execution_options(preserve_rowcount=True)).rowcount == 0:
        raise NotFound(f"no {kind} {key!r}")


def export_document(conn: Connection) -> dict[str, Any]:
    """Every segment, template and campaign as one campaign file (what `import campaigns` reads)."""
    segments = [{"key": r.key, "name": r.name, "rules": r.rules} for r in conn.execute(
        select(Segment.key, Segment.name, Segment.rules).order_by(Segment.key))]
    templates = []
    for r in conn.execute(select(Template.key, Template.name, Template.channel, Template.subject,
                                 Template.body, Template.transliterate).order_by(Template.key)):
        item = {"key": r.key, "name": r.name, "channel": r.channel, "body": r.body,
                "transliterate": r.transliterate}
        if r.subject is not None:
            item["subject"] = r.subject
        templates.append(item)
    campaigns = [{"key": r.key, "name": r.name, "status": r.status, "purpose": r.purpose,
                  "timezone": r.timezone, "graph": r.graph} for r in conn.execute(
        select(Campaign.key, Campaign.name, Campaign.status, Campaign.purpose, Campaign.timezone,
               Campaign.graph).where(Campaign.kind == "campaign").order_by(Campaign.key))]
    return {"version": FILE_VERSION, "segments": segments, "templates": templates,
            "campaigns": campaigns}
