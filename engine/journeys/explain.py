"""`nudgeflow explain`: what a campaign does, or would do, for one customer on a date, node by
node in graph order: whether the customer reached each node and passed it (the branch taken at
a condition or split, the release date at a wait), why, in words and as data, and the effects
that exist for it. The run's own SQL computes it, as a dry run restricted to the customer, in a
transaction that is rolled back: it writes nothing."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, select

from engine.campaigns import template_rows
from engine.errors import NotFound
from engine.executor import PAIRS, RunResult, execute_graph, load_campaign_row
from engine.graph import Graph
from engine.journeys.rule_detail import explain_rules
from engine.labels import NODE_TYPES, label
from engine.models import BonusLedger, Customer, Invoice, JourneyWait, Message
from engine.models.base import utcnow
from engine.segments import load_catalog
from engine.workspace import workspace_settings
from nodes.base import CampaignInfo, Node, RunContext
from nodes.split import branch_of

Pair = dict[str, Any]
NOT_REACHED = "not reached: no earlier node passed the customer on to it"


def explain(engine: Engine, external_id: str, key: str, run_date: date,
            now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    with engine.connect() as conn, conn.begin():
        customer = conn.execute(select(Customer.id, Customer.external_id)
                                .where(Customer.external_id == external_id)).first()
        if customer is None:
            raise NotFound(f"no customer {external_id!r}")
        campaign = load_campaign_row(conn, key)
        result = RunResult(key, run_date, "completed", campaign.version, dry_run=True)
        graph = execute_graph(conn, campaign, run_date, None, now, result, manual=False,
                              only_customer=customer.id)
        ctx = RunContext(
            conn=conn, run_date=run_date, run_id=None, now=now, catalog=load_catalog(conn),
            campaign=CampaignInfo(campaign.id, campaign.key, campaign.name, campaign.purpose,
                                  campaign.timezone),
            templates=template_rows(conn), settings=workspace_settings(conn), dry_run=True,
            provides=graph.nodes[graph.trigger].provides(), exit_when=graph.exit_when)
        left = _pairs_by_node(conn)
        nodes = [_node(ctx, graph, node_id, customer, left) for node_id in graph.order]
        conn.rollback()
    return {"customer": external_id, "campaign": key, "date": run_date.isoformat(),
            "version": campaign.version, "nodes": nodes}


def _pairs_by_node(conn: Connection) -> dict[str, list[Pair]]:
    out: dict[str, list[Pair]] = {}
    rows = conn.execute(select(PAIRS.c.node_id, PAIRS.c.occurrence, PAIRS.c.invoice_id,
                               PAIRS.c.branch, Invoice.external_id.label("invoice"))
                        .outerjoin(Invoice, Invoice.id == PAIRS.c.invoice_id)
                        .order_by(PAIRS.c.occurrence))
    for r in rows:
        out.setdefault(r.node_id, []).append(dict(r._mapping))
    return out


def _arrived(graph: Graph, node_id: str, left: dict[str, list[Pair]]) -> list[Pair]:
    """The pairs that reached a node: those that left its parents on the edges into it."""
    seen: dict[str, Pair] = {}
    for parent, output in graph.inputs[node_id]:
        for pair in left.get(parent, []):
            if output is None or pair["branch"] == output:
                seen.setdefault(pair["occurrence"], pair)
    return list(seen.values())


def _node(ctx: RunContext, graph: Graph, node_id: str, customer: Any,
          left: dict[str, list[Pair]]) -> dict[str, Any]:
    node = graph.nodes[node_id]
    out = left.get(node_id, [])
    entry: dict[str, Any] = {
        "id": node_id, "type": node.type_name, "title": NODE_TYPES.get(node.type_name),
        "reached": node.is_trigger or bool(_arrived(graph, node_id, left)),
        "passed": bool(out), "branch": None, "waiting_until": None, "reason": "",
        "detail": None, "effects": _effects(ctx, node, customer.id),
        "occurrences": [p["occurrence"] for p in out],
    }
    arrived = out if node.is_trigger else _arrived(graph, node_id, left)
    if node.type_name == "wait":  # it also passes on pairs parked on earlier days
        _wait(ctx, node, customer, arrived, out, entry)
    elif not entry["reached"]:
        entry["reason"] = NOT_REACHED
    else:
        EXPLAINERS.get(node.type_name, _action)(ctx, node, customer, arrived, out, entry)
    return entry


def _trigger(ctx: RunContext, node: Node, customer: Any, arrived: list[Pair],
             out: list[Pair], entry: dict[str, Any]) -> None:
    cfg = node.config
    kind = cfg["kind"]
    if out:
        what = ", ".join(p["invoice"] or p["occurrence"] for p in out)
        entry["reason"] = f"fired ({kind}): {what}"
        return
    shift = cfg.get("offset_days", 0)
    event_day = (ctx.run_date - timedelta(days=shift)).isoformat()
    entry["reason"] = {
        "date": f"did not fire: {cfg.get('field')} has no {cfg.get('repeat', 'yearly')} "
                f"date on {event_day}" + (f" ({shift:+d} days)" if shift else ""),
        "invoice_due": f"did not fire: no invoice of the customer due on {event_day} and "
                       f"unpaid on {ctx.run_date.isoformat()}",
        "schedule": f"did not fire: the schedule does not run on {ctx.run_date.isoformat()}",
        "manual": "did not fire: a manual campaign fires only when run by hand",
        "event": f"did not fire: no {cfg.get('name')!r} event of the customer on "
                 f"{ctx.run_date.isoformat()}" + (" that matches where" if cfg.get("where")
                                                  else ""),
    }.get(kind, "did not fire")
    entry["detail"] = {"kind": kind, **{k: v for k, v in cfg.items() if k != "kind"}}


def _rules(ctx: RunContext, node: Node, customer: Any, arrived: list[Pair],
           out: list[Pair], entry: dict[str, Any]) -> None:
    rules = node.rules()  # type: ignore[attr-defined]
    details = [explain_rules(ctx.conn, rules, ctx.catalog, ctx.run_date, customer.id,
                             p["invoice_id"]) | {"occurrence": p["occurrence"]}
               for p in arrived]
    entry["detail"] = details[0] if len(details) == 1 else details
    source = (f"segment {node.config['segment']!r}" if "segment" in node.config
              else "the rules")
    matched = [d for d in details if d["matched"]]
    if node.type_name == "condition":
        entry["branch"] = "yes" if matched else "no"
        if len(details) > 1:
            entry["branch"] = ", ".join(("yes" if d["matched"] else "no") for d in details)
        entry["reason"] = (f"{source} matched: on to yes" if matched
                           else f"{source} did not match: on to no")
        if len(details) > 1:
            entry["reason"] = f"{source}: " + "; ".join(
                f"{d['occurrence']} {'yes' if d['matched'] else 'no'}" for d in details)
        return
    failing = [c for d in details if not d["matched"] for c in d["conditions"]
               if not c["matched"]]
    entry["reason"] = f"in {source}" if matched else f"not in {source}" + (
        ": " + "; ".join(_condition_words(c) for c in failing[:3]) if failing else "")


def _condition_words(c: dict[str, Any]) -> str:
    value = "" if c["value"] is None else f" {json.dumps(c['value'], ensure_ascii=False)}"
    return (f"{label(c['field'], 'fields')} {c['op']}{value} does not hold (the customer's: "
            f"{json.dumps(c['customer_value'], ensure_ascii=False)})")


def _split(ctx: RunContext, node: Node, customer: Any, arrived: list[Pair],
           out: list[Pair], entry: dict[str, Any]) -> None:
    branches = node.config["branches"]
    branch = branch_of(branches, ctx.campaign.key, node.id, customer.external_id)
    entry["branch"] = branch
    share = next(b["percent"] for b in branches if b["name"] == branch)
    entry["reason"] = (f"branch {branch!r} ({share}% of customers), fixed for this customer "
                       f"by a hash of campaign, node and customer id")
    entry["detail"] = {"branches": branches}


def _wait(ctx: RunContext, node: Node, customer: Any, arrived: list[Pair],
          out: list[Pair], entry: dict[str, Any]) -> None:
    days = node.config["days"]
    until = ctx.run_date + timedelta(days=days)
    rows = ctx.conn.execute(select(JourneyWait.occurrence, JourneyWait.parked_on,
                                   JourneyWait.release_on, JourneyWait.status,
                                   JourneyWait.ended_on)
                            .where(JourneyWait.campaign_id == ctx.campaign.id,
                                   JourneyWait.node_id == node.id,
                                   JourneyWait.customer_id == customer.id)).all()
    entry["detail"] = {"days": days, "parked": [
        {"occurrence": r.occurrence, "parked_on": r.parked_on.isoformat(),
         "release_on": r.release_on.isoformat(), "status": r.status,
         "ended_on": r.ended_on.isoformat() if r.ended_on else None} for r in rows]}
    waiting = [r for r in rows if r.status == "waiting" and r.release_on > ctx.run_date]
    exited = [r for r in rows if r.status == "exited" or (
        r.status == "waiting" and r.release_on <= ctx.run_date
        and r.occurrence not in {p["occurrence"] for p in out})]
    if out:
        entry["reason"] = f"waited {days} days: released on {ctx.run_date.isoformat()}"
    elif exited:
        entry["reason"] = "left the journey here: the campaign's exit rules matched"
        entry["detail"]["exit_when"] = ctx.exit_when
    elif arrived:
        entry["waiting_until"] = until.isoformat()
        entry["reason"] = f"parked on {ctx.run_date.isoformat()}: waits {days} days, " \
                          f"until {until.isoformat()}"
    elif waiting:
        entry["waiting_until"] = min(r.release_on for r in waiting).isoformat()
        entry["reason"] = f"waiting until {entry['waiting_until']}"
    else:
        entry["reason"] = NOT_REACHED
        return
    entry["reached"] = True


def _action(ctx: RunContext, node: Node, customer: Any, arrived: list[Pair],
            out: list[Pair], entry: dict[str, Any]) -> None:
    done = {e["occurrence"]: e for e in entry["effects"]}
    reasons = []
    for pair in arrived:
        if (effect := done.get(pair["occurrence"])) is not None:
            what = effect.get("status") or effect["kind"]
            reasons.append(f"already done in run {effect['run_id']}: {what}")
        elif node.type_name == "send-message":
            reason = ctx.conn.execute(select(node.address(ctx)[1])  # type: ignore[attr-defined]
                                      .where(Customer.id == customer.id)).scalar()
            if reason is not None:
                reasons.append(f"would be skipped: {label(reason, 'skip_reasons')}")
                entry["detail"] = {"skip_reason": reason}
            else:
                reasons.append("would be queued")
        else:
            reasons.append(f"would award {node.config['amount']} points")
    entry["reason"] = "; ".join(dict.fromkeys(reasons))


def _effects(ctx: RunContext, node: Node, customer_id: int) -> list[dict[str, Any]]:
    """The effects that exist at this node for this customer, from earlier runs."""
    if node.type_name == "send-message":
        rows = ctx.conn.execute(select(Message.id, Message.occurrence, Message.run_id,
                                       Message.status, Message.skip_reason, Message.channel)
                                .where(and_(Message.campaign_id == ctx.campaign.id,
                                            Message.node_id == node.id,
                                            Message.customer_id == customer_id)))
        return [{"kind": "message", **dict(r._mapping)} for r in rows]
    if node.type_name == "award-bonus":
        rows = ctx.conn.execute(select(BonusLedger.id, BonusLedger.occurrence,
                                       BonusLedger.run_id, BonusLedger.amount,
                                       BonusLedger.expires_at)
                                .where(BonusLedger.campaign_id == ctx.campaign.id,
                                       BonusLedger.node_id == node.id,
                                       BonusLedger.customer_id == customer_id,
                                       BonusLedger.kind == "accrual"))
        return [{"kind": "accrual", **dict(r._mapping),
                 "expires_at": r.expires_at.isoformat() if r.expires_at else None}
                for r in rows]
    return []


EXPLAINERS = {"trigger": _trigger, "segment-select": _rules, "condition": _rules,
              "split": _split}
