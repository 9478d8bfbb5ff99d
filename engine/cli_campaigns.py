"""CLI verbs for campaigns, runs, segments, the activity log and balances."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import click

from engine.cli import Workspace, cli, echo_json, import_group, parse_day, pass_ws
from engine.errors import Problem, ValidationError
from engine.limits import strict_loads
from engine.runlog import figures


@import_group.command("campaigns")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_ws
def import_campaigns_cmd(ws: Workspace, file: Path) -> None:
    """Upsert segments, templates and campaigns from a campaign file (all or nothing)."""
    from engine.campaigns import import_file

    done = import_file(ws.engine, file)
    click.echo(", ".join(f"{n} {kind}" for kind, n in done.items()) + " imported")


def _print_counts(counts: dict[str, dict[str, Any]], order: list[str] | None = None) -> None:
    """A run's figures, one node a line, nodes in `order` (else as given):
    `  m: passed 3, queued 2, skipped: opted out of this channel 1`."""
    rank = {node_id: i for i, node_id in enumerate(order or counts)}
    for node_id in sorted(counts, key=lambda n: (rank.get(n, len(rank)), n)):
        click.echo(f"  {node_id}: {figures(counts[node_id], ', ')}")


def _print_run(result: Any) -> None:
    head = f"{result.campaign} {result.run_date} {result.status}"
    head += " (dry run)" if result.dry_run else f" (attempt {result.attempt})"
    click.echo(head + (f": {result.error}" if result.error else ""))
    _print_counts(result.counts)
    for row in result.sample:
        click.echo(f"  sample: {row['external_id']} {row['first_name'] or ''} "
                   f"{row['last_name'] or ''}".rstrip())


@cli.command("run")
@click.option("--date", "day", callback=parse_day, help="Run date YYYY-MM-DD (default: today "
              "in each campaign's time zone).")
@click.option("--campaign", "key", help="One campaign (any status; default: all active).")
@click.option("--dry-run", is_flag=True, help="Count and sample, write nothing.")
@click.option("--json", "as_json", is_flag=True)
@pass_ws
def run_cmd(ws: Workspace, day: date | None, key: str | None, dry_run: bool,
            as_json: bool) -> None:
    """Run campaigns for a date: per-campaign and per-node counts."""
    from engine.executor import active_campaigns, run_many

    keys = [key] if key else active_campaigns(ws.engine)
    results = run_many(ws.engine, day, keys, dry_run=dry_run, manual=key is not None)
    if as_json:
        echo_json([r.as_dict() for r in results])
    else:
        for r in results:
            _print_run(r)
        if not results:
            click.echo("no active campaigns")
    failed = [r for r in results if r.status == "failed"]
    if failed:
        # Every campaign ran; the exit status says that some did not succeed, and which.
        click.echo(f"error: {len(failed)} of {len(results)} campaign run(s) failed: "
                   + ", ".join(f"{r.campaign} ({r.error})" for r in failed), err=True)
        raise SystemExit(1)


@cli.command("runs")
@click.option("--campaign", "key")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True)
@pass_ws
def runs_cmd(ws: Workspace, key: str | None, limit: int, as_json: bool) -> None:
    """The runs log, newest first: id, date, campaign, version, status; each node's counts (what
    every attempt created, added up) in graph order; and each attempt's own figures."""
    from engine.lookup import graph_order, list_runs

    with ws.engine.connect() as conn:
        rows = list_runs(conn, key, limit)
        order = graph_order(conn, {r["campaign"] for r in rows})
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"#{r['id']} {r['run_date']} {r['campaign']} v{r['version']} {r['status']}"
                   + (f": {r['error']}" if r["error"] else ""))
        _print_counts(r["counts"] or {}, order.get(r["campaign"]))
        if len(r["attempts"]) > 1 or any(a.get("folded") for a in r["attempts"]):
            for a in r["attempts"]:
                created = "; ".join(f"{n}: {figures(c, ', ')}" for n, c in a["counts"].items())
                folded = (f" (the last of {a['folded']} alike since "
                          f"{a['first_started_at'][:19]})" if a.get("folded") else "")
                click.echo(f"  attempt {a['attempt']} {a['started_at'][:19]} v{a['version']} "
                           f"{a['status']}{folded}" + (f": {a['error']}" if a["error"] else "")
                           + (f" ({created})" if created else ""))
    if not rows:
        click.echo("no runs yet")


@cli.command("activity")
@click.argument("external_id")
@click.option("--kind", "kinds", multiple=True, help="Only these kinds (repeatable).")
@click.option("--oldest-first", is_flag=True, help="Oldest first (default: newest first, as "
              "on the customer's page).")
@click.option("--json", "as_json", is_flag=True)
@pass_ws
def activity_cmd(ws: Workspace, external_id: str, kinds: tuple[str, ...], oldest_first: bool,
                 as_json: bool) -> None:
    """A customer's activity log, newest first: every message queued, skipped or sent, every
    award."""
    from engine.activity import customer_id, timeline

    with ws.engine.connect() as conn:
        rows = timeline(conn, customer_id(conn, external_id), list(kinds) or None,
                        newest_first=not oldest_first)
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['at']} {r['kind']:<17} {r['campaign'] or '-'}: {r['summary']}")


@cli.command("balance")
@click.argument("external_id")
@click.option("--date", "day", callback=parse_day, help="As of this date (default today).")
@click.option("--json", "as_json", is_flag=True)
@pass_ws
def balance_cmd(ws: Workspace, external_id: str, day: date | None, as_json: bool) -> None:
    """A customer's detailed bonus balance: pending, available, expiring within 30 days,
    expired and redeemed points, and every movement with what remains of it."""
    from engine.activity import customer_id
    from engine.campaigns import campaign_today
    from engine.cli_points import summary
    from engine.ledger import balance

    with ws.engine.connect() as conn:
        data = balance(conn, customer_id(conn, external_id),
                       day or campaign_today(ws.settings.timezone))
    if as_json:
        echo_json(data)
        return
    click.echo(summary(data))
    for e in data["entries"]:
        left = f" ({e['remaining']} left)" if e["status"] == "partly redeemed" else ""
        pending = (f" from {e['activates_on']}" if e["status"] == "pending" else "")
        click.echo(f"  {e['booked_on']} {e['kind']:<10} {e['amount']:>6}  "
                   f"{e['status'] + pending + left:<18} expires {e['expires_at'] or 'never'}  "
                   f"{e['description'] or ''}")


@cli.command("expire")
@click.option("--date", "day", callback=parse_day, help="As of this date (default today).")
@pass_ws
def expire_cmd(ws: Workspace, day: date | None) -> None:
    """Expire points whose expiry date has come (the daily job does this too)."""
    from engine.db import write_transaction
    from engine.ledger import expire

    with write_transaction(ws.engine) as conn:
        n = expire(conn, day or date.today())
    click.echo(f"{n} credit(s) expired")


@cli.group("segment")
def segment_group() -> None:
    """Segment tools."""


@segment_group.command("preview")
@click.option("--key", help="A saved segment's key.")
@click.option("--rules", "rules_json", help="Rules as JSON.")
@click.option("--date", "day", callback=parse_day, help="As of this date (default today).")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(0, 1000))
@click.option("--json", "as_json", is_flag=True)
@pass_ws
def segment_preview_cmd(ws: Workspace, key: str | None, rules_json: str | None,
                        day: date | None, limit: int, as_json: bool) -> None:
    """Count and sample the customers a segment selects as of a date."""
    from engine import segments

    if (key is None) == (rules_json is None):
        raise click.UsageError("give exactly one of --key or --rules")
    day = day or date.today()
    with ws.engine.connect() as conn:
        catalog = segments.load_catalog(conn)
        if key is not None:
            if key not in catalog:
                raise ValidationError([Problem("--key", f"unknown segment {key!r}")])
            rules: Any = {"segment": key}
        else:
            try:
                rules = strict_loads(rules_json or "")
            except ValueError as exc:
                raise ValidationError([Problem("--rules", str(exc))]) from None
        segments.validate_rules(rules, catalog)
        total = segments.count(conn, rules, day, catalog)
        sample = segments.sample(conn, rules, day, limit, catalog)
    if as_json:
        echo_json({"as_of": day.isoformat(), "count": total, "sample": sample})
        return
    click.echo(f"{total} customers as of {day}")
    for c in sample:
        click.echo(f"  {c['external_id']} {c['first_name'] or ''} {c['last_name'] or ''}".rstrip())


@cli.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file (default: standard output).")
@pass_ws
def export_cmd(ws: Workspace, output: Path | None) -> None:
    """Export every segment, template and campaign as a campaign file (import-compatible)."""
    from engine.campaigns import export_document

    with ws.engine.connect() as conn:
        text = json.dumps(export_document(conn), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"exported to {output}")
