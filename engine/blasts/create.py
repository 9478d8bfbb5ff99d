"""Creating a blast: one write transaction makes its campaign row (kind 'blast'), the blasts
row, the chosen recipients, and runs its graph once for its date through the executor, so
the messages go the way every campaign's go (consent, opt-outs, addresses with logged skip
reasons; the outbox's credits, caps, quiet hours; STOP). Either all of it or nothing.

Exactly once: messages carry (campaign, node, customer, occurrence) like any campaign's, so a
customer gets one message per blast; the idempotency key (blasts.client_token, unique) makes a
repeated submission find the blast it made instead of making another."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from itertools import pairwise
from typing import Any

from sqlalchemy import Connection, Engine, Integer, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from engine import runlog, segments
from engine.blasts.request import BlastRequest
from engine.campaigns import references
from engine.db import write_transaction
from engine.errors import IdempotencyConflict, Problem, ValidationError
from engine.executor import RunResult, execute_graph
from engine.graph import load_campaign, node_name
from engine.models import Blast, BlastRecipient, Campaign, CampaignVersion, Customer
from engine.models.base import utcnow
from engine.sql import among

CHUNK = 10_000
SHOWN = 20  # unknown customers named one by one; the rest are counted
SEND, SELECT, CHOSEN = "send", "select", "chosen"
NODE_PATH = re.compile(r"^\$\.graph\.nodes\[(\d+)\]\.config")


class _DryRun(Exception):
    """Raised to roll a preview back."""


def graph_for(req: BlastRequest) -> dict[str, Any]:
    """trigger (manual: everyone) -> [chosen rows] -> the data set's rules -> send."""
    select_config = {"segment": req.source["segment"]} if req.by_key else {"rules": req.source}
    nodes: list[dict[str, Any]] = [{"id": "trigger", "type": "trigger",
                                    "config": {"kind": "manual"}}]
    if req.customers is not None:
        nodes.append({"id": CHOSEN, "type": "recipients", "config": {}})
    nodes += [{"id": SELECT, "type": "segment-select", "config": select_config},
              {"id": SEND, "type": "send-message", "config": req.message}]
    return {"nodes": nodes, "edges": [[a["id"], b["id"]] for a, b in pairwise(nodes)]}


def _document(conn: Connection, req: BlastRequest, tz: str) -> dict[str, Any]:
    """The blast's campaign document, validated as every campaign is; problems are named at
    the blast's own fields ($.template, $.segment, $.rules...)."""
    source = req.source.get("segment") if req.by_key else "inline rules"
    # Validated under a stand-in key: the row's is blast-<its id>, which users may not take.
    doc = {"key": "blast", "name": req.name or f"Blast of {source} as of {req.as_of}",
           "status": "archived", "purpose": req.purpose, "timezone": tz,
           "graph": graph_for(req)}
    try:
        clean, _ = load_campaign(doc, references(conn), blast=True)
    except ValidationError as exc:
        raise ValidationError([_named(p, doc) for p in exc.problems],
                              title="invalid blast") from None
    return clean


def _named(problem: Problem, doc: dict[str, Any]) -> Problem:
    found = NODE_PATH.match(problem.where)
    if not found:
        return problem
    node = doc["graph"]["nodes"][int(found[1])]
    rest = problem.where[found.end():]
    where = f"${rest}" if node["id"] == SEND or (node["id"] == SELECT and rest) else "$"
    # A campaign's message names the node and the field ("node 'send' (Send message):
    # template: ..."); a blast's path says both.
    field = rest.removeprefix(".")
    named = node_name(node["id"], node["type"])
    prefix = f"{named}: {field}: " if field else f"{named}: "
    return Problem(where, problem.message.removeprefix(prefix))


def _existing(conn: Connection, req: BlastRequest) -> int | None:
    """The blast this idempotency key made, if any (IdempotencyConflict for another request)."""
    if req.client_token is None:
        return None
    found = conn.execute(select(Blast.campaign_id, Blast.request_hash)
                         .where(Blast.client_token == req.client_token)).first()
    if found is None:
        return None
    if found.request_hash != req.fingerprint():
        raise IdempotencyConflict(f"idempotency key {req.client_token!r} was used for "
                                  f"another blast (blast-{found.campaign_id})")
    return int(found.campaign_id)


def _selection(conn: Connection, req: BlastRequest, campaign_id: int) -> tuple[int, list[str]]:
    """(rows asked for, listed customers outside the data set), with the chosen members
    stored as the recipients of `campaign_id`. Unknown customers and an empty selection are
    errors naming the field."""
    catalog = segments.load_catalog(conn)
    member = segments.compile_rules(req.source, req.as_of, catalog)
    if req.customers is None:
        total = segments.count(conn, req.source, req.as_of, catalog)
        if total == 0:
            raise ValidationError([Problem(req.source_path, f"empty selection: the data set "
                                                            f"has no rows as of {req.as_of}")],
                                  title="invalid blast")
        return total, []
    listed = list(req.customers)
    known: set[str] = set()
    members: set[str] = set()
    for i in range(0, len(listed), CHUNK):
        chunk = listed[i:i + CHUNK]
        mine = among(conn, Customer.external_id, chunk)
        known.update(conn.execute(select(Customer.external_id).where(mine)).scalars())
        members.update(conn.execute(select(Customer.external_id).where(mine, member)).scalars())
        conn.execute(insert(BlastRecipient).from_select(
            ["campaign_id", "customer_id"],
            select(literal(campaign_id, Integer), Customer.id).where(mine, member)))
    unknown = [(i, ext) for i, ext in enumerate(req.customers) if ext not in known]
    if unknown:
        problems = [Problem(f"$.customers[{i}]", f"unknown customer {ext!r}")
                    for i, ext in unknown[:SHOWN]]
        if len(unknown) > SHOWN:
            problems.append(Problem("$.customers", f"{len(unknown)} unknown customers in all"))
        raise ValidationError(problems, title="invalid blast")
    if not members:
        raise ValidationError([Problem("$.customers", f"empty selection: none of the "
                                       f"{len(listed)} customers listed is in the data set "
                                       f"as of {req.as_of}")], title="invalid blast")
    return len(listed), [ext for ext in listed if ext not in members]


def create(engine: Engine, req: BlastRequest, tz: str, *, created_by: str | None = None,
           now: datetime | None = None, dry_run: bool = False) -> tuple[dict[str, Any], bool]:
    """Create and run a blast (or, `dry_run`, count what it would do and write nothing).
    Returns (what engine.blasts.views.describe shows, or the preview; whether it is new)."""
    from engine.blasts.views import describe

    now = now or utcnow()
    try:
        with write_transaction(engine) as conn:
            if (found := _existing(conn, req)) is not None:
                return describe(conn, found), False
            outcome = _create(conn, req, tz, created_by, now, dry_run)
            if dry_run:
                raise _DryRun(outcome)
            return describe(conn, outcome["id"]), True
    except _DryRun as preview:
        return preview.args[0], False
    except IntegrityError:
        # A concurrent submission with the same key committed first: that is the blast.
        with engine.connect() as conn:
            if (found := _existing(conn, req)) is None:
                raise
            return describe(conn, found), False


def _create(conn: Connection, req: BlastRequest, tz: str, created_by: str | None,
            now: datetime, dry_run: bool) -> dict[str, Any]:
    clean = _document(conn, req, tz)
    values = {k: clean[k] for k in ("name", "status", "purpose", "timezone", "graph")}
    campaign_id = conn.execute(insert(Campaign).values(
        key=f"blast-new-{uuid.uuid4().hex}", kind="blast", version=1, **values)).inserted_primary_key[0]  # type: ignore[index]
    key = f"blast-{campaign_id}"
    conn.execute(update(Campaign).where(Campaign.id == campaign_id).values(key=key))
    conn.execute(insert(CampaignVersion).values(campaign_id=campaign_id, version=1,
                                                graph=clean["graph"], saved_at=now,
                                                saved_by=created_by))
    requested, not_members = _selection(conn, req, campaign_id)
    conn.execute(insert(Blast).values(
        campaign_id=campaign_id, client_token=req.client_token,
        request_hash=req.fingerprint(), as_of=req.as_of, source=req.source,
        selection="all" if req.customers is None else "list", requested=requested,
        not_members=not_members, created_by=created_by, created_at=now))
    campaign = conn.execute(select(Campaign.__table__).where(Campaign.id == campaign_id)).one()
    result = RunResult(key, req.as_of, "completed", 1, dry_run)
    if dry_run:
        execute_graph(conn, campaign, req.as_of, None, now, result, manual=True)
    else:
        claimed = runlog.claim(conn, campaign_id, 1, req.as_of, now)
        execute_graph(conn, campaign, req.as_of, claimed.id, now, result, manual=True)
        runlog.finish(conn, claimed, 1, now, counts=result.counts, timings=result.timings)
    return {"id": campaign_id, "dry_run": dry_run, "date": req.as_of.isoformat(),
            "selection": "all" if req.customers is None else "list",
            "requested": requested, "not_members": not_members,
            "counts": sent_counts(result.counts)}


def sent_counts(counts: dict[str, Any]) -> dict[str, Any]:
    """A blast's figures from its run's per-node counts: rows that reached the send node,
    messages queued, skipped by reason, and created (new rows of this attempt)."""
    send = counts.get(SEND, {})
    return {"recipients": int(send.get("passed", 0)), "queued": int(send.get("queued", 0)),
            "skipped": dict(send.get("skipped") or {})}
