"""Runs one campaign for one date, set-based: each node's output is SQL materialised into a
temporary table, every effect an INSERT ... SELECT under the exactly-once keys, all in one
transaction with the runs row, so a crash at any point leaves either the whole run or nothing."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.exc import DBAPIError

from engine import runlog
from engine.campaigns import campaign_today, graph_of, template_rows
from engine.db import write_transaction
from engine.errors import NotFound, NudgeflowError, PrunedDate
from engine.graph import Graph
from engine.metrics import RUN_DURATION
from engine.models import Campaign, Customer
from engine.models.base import utcnow
from engine.retention.prune import refuse_pruned
from engine.segments import load_catalog
from engine.sql import rowcount
from engine.workspace import workspace_settings
from nodes.base import CampaignInfo, RunContext

SAMPLE_SIZE = 10
ERROR_LENGTH = 2000
log = logging.getLogger("nudgeflow.executor")
_temp = MetaData()
PAIRS = Table(
    "nf_pairs", _temp,
    Column("node_id", String(64), nullable=False),
    Column("customer_id", Integer, nullable=False),
    Column("occurrence", String(64), nullable=False),
    Column("invoice_id", Integer),
    Column("branch", String(32)),  # the output a pair left on (condition, split)
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
    attempt: int = 0  # which attempt at this (campaign, date) it was; 0 for a dry run

    def as_dict(self) -> dict[str, Any]:
        out = {"campaign": self.campaign, "date": self.run_date.isoformat(),
               "status": self.status, "version": self.version, "dry_run": self.dry_run,
               "counts": self.counts, "timings": self.timings, "error": self.error,
               "seconds": round(self.seconds, 3), "attempt": self.attempt}
        if self.dry_run:
            out["sample"] = self.sample
        return out


def load_campaign_row(conn: Connection, key: str) -> Any:
    """A campaign by key; a blast (run once, when it is made: engine.blasts) is none."""
    row = conn.execute(select(Campaign.__table__).where(Campaign.key == key)).first()
    if row is None:
        raise NotFound(f"no campaign {key!r}")
    if row.kind != "campaign":
        raise NotFound(f"no campaign {key!r}: it is a blast, run once when it was made "
                       f"(see `nudgeflow blasts`)")
    return row


def run(engine: Engine, key: str, run_date: date, *, dry_run: bool = False,
        manual: bool = False, now: datetime | None = None,
        fold_attempts: bool = False) -> RunResult:
    """Run campaign `key` for `run_date`. Any failure (a bad saved segment the database rejects
    as much as our own errors) is recorded on the runs row as a failed attempt and returned,
    never raised: one broken campaign must not stop the others. `fold_attempts`: an attempt
    like the last one is folded into it (engine.runlog)."""
    started = time.perf_counter()
    now = now or utcnow()
    with engine.connect() as conn:
        campaign = load_campaign_row(conn, key)
        if not dry_run:
            refuse_pruned(conn, key, run_date)
    result = RunResult(key, run_date, "completed", campaign.version, dry_run)
    try:
        if dry_run:
            with engine.connect() as conn, conn.begin():
                graph = execute_graph(conn, campaign, run_date, None, now, result, manual)
                result.sample = _sample(conn, graph.order[-1])
                conn.rollback()
        else:
            with write_transaction(engine) as conn:
                claimed = runlog.claim(conn, campaign.id, campaign.version, run_date, now)
                # Again under the claim's row lock: a prune that began meanwhile wins.
                refuse_pruned(conn, key, run_date)
                execute_graph(conn, campaign, run_date, claimed.id, now, result, manual)
                result.attempt = runlog.finish(conn, claimed, campaign.version, now,
                                               counts=result.counts, timings=result.timings,
                                               fold=fold_attempts)
    except PrunedDate:
        raise  # refused, not failed: the runs row stays as it was
    except Exception as exc:
        result.status, result.error = "failed", describe_failure(exc)
        # The runs row and the caller report it; the traceback is for a developer's debug log.
        log.debug("run %s %s failed", key, run_date, exc_info=exc)
        if not dry_run:
            result.attempt = _record_failure(engine, campaign, run_date, now, result.error,
                                             fold_attempts)
    result.seconds = time.perf_counter() - started
    if not dry_run:
        RUN_DURATION.labels(result.status).observe(result.seconds)
    return result


def describe_failure(exc: Exception) -> str:
    """What went wrong, for the runs log: our errors say it themselves; the database's own
    message without the statement and its parameters (which may be huge)."""
    if isinstance(exc, NudgeflowError):
        return str(exc)
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        first_line = (str(exc.orig).strip().splitlines() or [""])[0]
        return f"database error: {type(exc.orig).__name__}: {first_line}"[:ERROR_LENGTH]
    return f"{type(exc).__name__}: {exc}"[:ERROR_LENGTH]


def _record_failure(engine: Engine, campaign: Any, run_date: date, now: datetime,
                    error: str, fold: bool = False) -> int:
    """Record a failed attempt; if even that fails (the database is gone), log it: the
    scheduler retries a date without a completed run."""
    try:
        with write_transaction(engine) as conn:
            claimed = runlog.claim(conn, campaign.id, campaign.version, run_date, now)
            return runlog.finish(conn, claimed, campaign.version, now, counts={}, error=error,
                                 fold=fold)
    except Exception as exc:
        log.warning("run %s %s: could not record the failure %r: %s", campaign.key, run_date,
                    error, describe_failure(exc))
        return 0


def execute_graph(conn: Connection, campaign: Any, run_date: date, run_id: int | None,
             now: datetime, result: RunResult, manual: bool,
             only_customer: int | None = None) -> Graph:
    graph = graph_of(conn, campaign)
    ctx = RunContext(
        conn=conn,
        campaign=CampaignInfo(campaign.id, campaign.key, campaign.name, campaign.purpose,
                              campaign.timezone),
        run_date=run_date, run_id=run_id, now=now, catalog=load_catalog(conn),
        templates=template_rows(conn), settings=workspace_settings(conn),
        dry_run=run_id is None, manual=manual, counts=result.counts,
        provides=graph.nodes[graph.trigger].provides(), exit_when=graph.exit_when,
        only_customer=only_customer,
    )
    # Created and dropped inside the run's transaction: a failure rolls it back with the rest.
    PAIRS.create(conn)
    children = Counter(p for parents in graph.parents.values() for p in parents)
    # A trigger feeding one node is not materialised: its SELECT (often "every customer" for a
    # schedule) is read once, inline, by that node; only its count is taken.
    inline: dict[str, Any] = {}
    for node_id in graph.order:
        inputs = graph.inputs[node_id]
        source = None
        if len(inputs) == 1 and inputs[0][0] in inline:
            source = inline[inputs[0][0]]
        elif inputs:
            source_q = select(PAIRS.c.customer_id, PAIRS.c.occurrence, PAIRS.c.invoice_id
                              ).where(or_(*(_leaving(p, label) for p, label in inputs)))
            source = (source_q.distinct() if len(inputs) > 1 else source_q).subquery("input")
        node = graph.nodes[node_id]
        started = time.perf_counter()
        out = node.execute(ctx, source)
        if node.is_trigger and only_customer is not None:
            fired = out.subquery("all_fired")
            out = select(*fired.c).where(fired.c.customer_id == only_customer)
        if node.is_trigger and children[node_id] == 1 and only_customer is None:
            inline[node_id] = out.subquery("fired")
            passed = conn.execute(select(func.count()).select_from(inline[node_id])).scalar_one()
        elif children[node_id] == 0 and run_id is not None and not node.outputs():
            # A last node's pairs are read by no other node (a dry run samples them): counted,
            # not copied.
            passed = conn.execute(select(func.count()).select_from(out.subquery())).scalar_one()
        else:
            columns = ["node_id", "customer_id", "occurrence", "invoice_id"]
            if node.outputs():
                columns.append("branch")
            passed = rowcount(conn, insert(PAIRS).from_select(
                columns, select(literal(node_id, String), *out.subquery().c)))
            if passed and conn.dialect.name == "postgresql":
                # Nothing analyses a temporary table: without its size PostgreSQL plans the
                # next node's join for a hundred pairs however many there are.
                conn.exec_driver_sql(f"ANALYZE {PAIRS.name}")
        ctx.count(node_id, "passed", int(passed))
        if node.outputs():
            per_branch: dict[str, int] = dict(conn.execute(
                select(PAIRS.c.branch, func.count()).where(PAIRS.c.node_id == node_id)
                .group_by(PAIRS.c.branch)).all())
            for name in node.outputs():
                ctx.count(node_id, name, int(per_branch.get(name, 0)))
        result.timings[node_id] = round(time.perf_counter() - started, 4)
    if run_id is not None:
        PAIRS.drop(conn)
    return graph


def _leaving(parent: str, label: str | None) -> Any:
    """The pairs that left `parent` on output `label` (all of them for an unnamed output)."""
    if label is None:
        return PAIRS.c.node_id == parent
    return and_(PAIRS.c.node_id == parent, PAIRS.c.branch == label)


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

