"""One campaign's runs over time: per run date, how many the trigger reached, the messages
sent, failed and skipped (by reason), and the points awarded and, of those, expired since.

The figures come from the effects themselves (messages and ledger rows carry their run), in
three grouped queries, whatever the number of customers; `reached` is the trigger's figure in
the run's counts."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import aliased

from engine.errors import NotFound
from engine.models import BonusLedger, Campaign, CampaignVersion, Message, Run


def series(conn: Connection, key: str, since: date | None = None,
           until: date | None = None) -> dict[str, Any]:
    """The campaign's runs from `since` to `until` (run dates), oldest first."""
    campaign = conn.execute(select(Campaign.id, Campaign.key, Campaign.name, Campaign.graph)
                            .where(Campaign.key == key)).first()
    if campaign is None:
        raise NotFound(f"no campaign {key!r}")
    picked = select(Run.id).where(Run.campaign_id == campaign.id)
    if since:
        picked = picked.where(Run.run_date >= since)
    if until:
        picked = picked.where(Run.run_date <= until)
    runs = conn.execute(select(Run.id, Run.run_date, Run.status, Run.version, Run.counts)
                        .where(Run.id.in_(picked)).order_by(Run.run_date)).all()
    triggers = _trigger_ids(conn, campaign)
    messages: dict[int | None, dict[str, Any]] = {}
    for run_id, status, reason, n in conn.execute(
            select(Message.run_id, Message.status, Message.skip_reason, func.count())
            .where(Message.campaign_id == campaign.id, Message.run_id.in_(picked))
            .group_by(Message.run_id, Message.status, Message.skip_reason)):
        mine = messages.setdefault(run_id, {"messages": 0, "statuses": {}, "skipped": {}})
        mine["messages"] += n
        mine["statuses"][status] = mine["statuses"].get(status, 0) + n
        if status == "skipped":
            why = reason or "unknown"
            mine["skipped"][why] = mine["skipped"].get(why, 0) + n
    awarded: dict[int | None, Any] = {run: points for run, points in conn.execute(
        select(BonusLedger.run_id, func.sum(BonusLedger.amount))
        .where(BonusLedger.campaign_id == campaign.id, BonusLedger.kind == "accrual",
               BonusLedger.run_id.in_(picked))
        .group_by(BonusLedger.run_id))}
    accrual, expiry = aliased(BonusLedger), aliased(BonusLedger)
    expired: dict[int | None, Any] = {run: points for run, points in conn.execute(
        select(accrual.run_id, -func.sum(expiry.amount))
        .join(expiry, expiry.reverses_id == accrual.id)
        .where(accrual.campaign_id == campaign.id, accrual.kind == "accrual",
               accrual.run_id.in_(picked))
        .group_by(accrual.run_id))}
    items = []
    for r in runs:
        mine = messages.get(r.id, {"messages": 0, "statuses": {}, "skipped": {}})
        trigger = triggers[r.version]
        reached = (r.counts or {}).get(trigger, {}).get("passed") if trigger else None
        items.append({
            "run_id": r.id, "date": r.run_date, "status": r.status, "reached": reached,
            "messages": mine["messages"], "sent": mine["statuses"].get("sent", 0),
            "failed": mine["statuses"].get("failed", 0),
            "skipped": sum(mine["skipped"].values()), "skipped_by_reason": mine["skipped"],
            "points_awarded": int(awarded.get(r.id) or 0),
            "points_expired": int(expired.get(r.id) or 0)})
    return {"campaign": campaign.key, "name": campaign.name, "from": since, "to": until,
            "runs": items}


def _trigger_ids(conn: Connection, campaign: Any) -> dict[int, str | None]:
    """The trigger node's id in each saved version of the campaign's graph (any other version:
    the current graph's)."""
    found: dict[int, str | None] = {}
    for version, graph in conn.execute(select(CampaignVersion.version, CampaignVersion.graph)
                                       .where(CampaignVersion.campaign_id == campaign.id)):
        if (trigger := _trigger(graph)) is not None:
            found[version] = trigger
    current = _trigger(campaign.graph)
    return defaultdict(lambda: current, found)


def _trigger(graph: Any) -> str | None:
    return next((n["id"] for n in (graph or {}).get("nodes", []) if n.get("type") == "trigger"),
                None)
