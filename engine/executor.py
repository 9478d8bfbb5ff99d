"""Runs one campaign for one date, set-based: each node's output is SQL materialised into a
temporary table, every effect an INSERT ... SELECT under the exactly-once keys, all in one
transaction with the runs row, so a crash at any point leaves either the whole run or nothing."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from engine.campaigns import graph_of, template_rows
from engine.db import write_transaction
from engine.errors import NotFound, NudgeflowError
from engine.graph import Graph
from engine.models import Campaign, Customer, Run
from engine.models.base import utcnow
from engine.segments import load_catalog
from engine.sql import rowcount
from engine.workspace import workspace_settings
from nodes.base import CampaignInfo, RunContext

SAMPLE_SIZE = 10
_temp = MetaData()
PAIRS = Table(
    "nf_pairs", _temp,
    Column("node_id", String(64), nullable=False),
    Column("customer_id", Integer, nullable=False),
    Column("occurrence", String(64), nullable=False),
    Column("invoice_id", Integer),
    prefixes=["TEMPORARY"],
)
Index("nf_pairs_node_customer", PAIRS.c.node_id, PAIRS.c.customer_id)


@dataclass
class RunResult:
    campaign: str
    run_date: date
    status: str
    version: int
    dry_run: bool
    counts: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    sample: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out = {"campaign": self.campaign, "date": self.run_date.isoformat(),
               "status": self.status, "version": self.version, "dry_run": self.dry_run,
               "counts": self.counts, "timings": self.timings, "error": self.error,
               "seconds": round(self.seconds, 3)}
        if self.dry_run:
            out["sample"] = self.sample
        return out


def campaign_today(timezone: str, now: datetime | None = None) -> date:
    """Today's date in a campaign's time zone."""
    moment = (now or utcnow()).replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(ZoneInfo(timezone)).date()


def load_campaign_row(conn: Connection, key: str) -> Any:
    row = conn.execute(select(Campaign.__table__).where(Campaign.key == key)).first()
    if row is None:
        raise NotFound(f"no campaign {key!r}")
    return row


def run(engine: Engine, key: str, run_date: date, *, dry_run: bool = False,
        manual: bool = False, now: datetime | None = None) -> RunResult:
    """Run campaign `key` for `run_date`. A failure is recorded on the runs row and returned."""
    started = time.perf_counter()
    now = now or utcnow()
    with engine.connect() as conn:
        campaign = load_campaign_row(conn, key)
    result = RunResult(key, run_date, "completed", campaign.version, dry_run)
    try:
        if dry_run:
            with engine.connect() as conn, conn.begin():
                graph = _execute(conn, campaign, run_date, None, now, result, manual)
                result.sample = _sample(conn, graph.order[-1])
                conn.rollback()
        else:
            with write_transaction(engine) as conn:
                run_id = _claim_run(conn, campaign, run_date, now)
                _execute(conn, campaign, run_date, run_id, now, result, manual)
                conn.execute(update(Run).where(Run.id == run_id).values(
                    status="completed", counts=result.counts, timings=result.timings,
                    error=None, finished_at=utcnow()))
    except NudgeflowError as exc:
        result.status, result.error = "failed", str(exc)
        if not dry_run:
            _record_failure(engine, campaign, run_date, now, str(exc))
    result.seconds = time.perf_counter() - started
    return result


def _claim_run(conn: Connection, campaign: Any, run_date: date, now: datetime) -> int:
    """Insert or take over the runs row of (campaign, date). On PostgreSQL the upsert's row lock
    makes a concurrent run of the same campaign and date wait for this one to finish."""
    ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    values = {"campaign_id": campaign.id, "run_date": run_date, "version": campaign.version,
              "status": "running", "counts": {}, "started_at": now}
    stmt = ins(Run).values(**values)
    upsert = stmt.on_conflict_do_update(
        index_elements=["campaign_id", "run_date"],
        set_={"status": "running", "version": campaign.version, "started_at": now,
              "finished_at": None, "error": None},
    ).returning(Run.id)
    return int(conn.execute(upsert).scalar_one())


def _record_failure(engine: Engine, campaign: Any, run_date: date, now: datetime,
                    error: str) -> None:
    with write_transaction(engine) as conn:
        run_id = _claim_run(conn, campaign, run_date, now)
        conn.execute(update(Run).where(Run.id == run_id).values(
            status="failed", error=error, finished_at=utcnow()))


def _execute(conn: Connection, campaign: Any, run_date: date, run_id: int | None,
             now: datetime, result: RunResult, manual: bool) -> Graph:
    graph = graph_of(conn, campaign)
    ctx = RunContext(
        conn=conn,
        campaign=CampaignInfo(campaign.id, campaign.key, campaign.name, campaign.purpose,
                              campaign.timezone),
        run_date=run_date, run_id=run_id, now=now, catalog=load_catalog(conn),
        templates=template_rows(conn), settings=workspace_settings(conn),
        dry_run=run_id is None, manual=manual, counts=result.counts,
    )
    # Created and dropped inside the run's transaction: a failure rolls it back with the rest.
    PAIRS.create(conn)
    children = Counter(p for parents in graph.parents.values() for p in parents)
    # A trigger feeding one node is not materialised: its SELECT (often "every customer" for a
    # schedule) is read once, inline, by that node; only its count is taken.
    inline: dict[str, Any] = {}
    for node_id in graph.order:
        parents = graph.parents[node_id]
        source = None
        if len(parents) == 1 and parents[0] in inline:
            source = inline[parents[0]]
        elif parents:
            source_q = select(PAIRS.c.customer_id, PAIRS.c.occurrence, PAIRS.c.invoice_id
                              ).where(PAIRS.c.node_id.in_(parents))
            source = (source_q.distinct() if len(parents) > 1 else source_q).subquery("input")
        node = graph.nodes[node_id]
        started = time.perf_counter()
        out = node.execute(ctx, source)
        if node.is_trigger and children[node_id] == 1:
            inline[node_id] = out.subquery("fired")
            passed = conn.execute(select(func.count()).select_from(inline[node_id])).scalar_one()
        else:
            passed = rowcount(conn, insert(PAIRS).from_select(
                ["node_id", "customer_id", "occurrence", "invoice_id"],
                select(literal(node_id, String), *out.subquery().c),
            ))
        ctx.count(node_id, "passed", int(passed))
        result.timings[node_id] = round(time.perf_counter() - started, 4)
    if run_id is not None:
        PAIRS.drop(conn)
    return graph


def _sample(conn: Connection, last_node: str) -> list[dict[str, Any]]:
    """A few customers who reach the last node of the graph."""
    stmt = (select(Customer.external_id, Customer.first_name, Customer.last_name,
                   PAIRS.c.occurrence)
            .join(Customer, Customer.id == PAIRS.c.customer_id)
            .where(PAIRS.c.node_id == last_node).order_by(Customer.id).limit(SAMPLE_SIZE))
    return [dict(r._mapping) for r in conn.execute(stmt)]


def active_campaigns(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(Campaign.key).where(Campaign.status == "active")
                                 .order_by(Campaign.key)).scalars())


def run_many(engine: Engine, run_date: date | None, keys: list[str], *, dry_run: bool = False,
             manual: bool = False) -> list[RunResult]:
    results = []
    for key in keys:
        with engine.connect() as conn:
            tz = load_campaign_row(conn, key).timezone
        results.append(run(engine, key, run_date or campaign_today(tz), dry_run=dry_run,
                           manual=manual))
    return results

