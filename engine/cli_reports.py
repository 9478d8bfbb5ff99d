"""CLI verbs for reports: `nudgeflow report messages|points`, as a table, CSV or JSON."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import date
from typing import Any

import click

from engine.cli import Workspace, cli, echo_json, parse_day, pass_ws
from engine.models.campaigns import CHANNELS
from engine.models.effects import LEDGER_KINDS, MESSAGE_STATUSES


@cli.group("report")
def report_group() -> None:
    """Reports: messages by day, campaign, channel and status; bonus ledger movements."""


def _dates(fn: Any) -> Any:
    fn = click.option("--to", "until", callback=parse_day, help="The last day (YYYY-MM-DD).")(fn)
    return click.option("--from", "since", callback=parse_day,
                        help="The first day (YYYY-MM-DD).")(fn)


def _check(since: date | None, until: date | None) -> None:
    if since and until and since > until:
        raise click.BadParameter(f"must be on or after --from ({since})", param_hint="--to")


def _output(fn: Any) -> Any:
    fn = click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)
    return click.option("--csv", "as_csv", is_flag=True,
                        help="Print CSV (every row) to standard output.")(fn)


def _table(header: Sequence[str], rows: list[Sequence[Any]]) -> None:
    cells = [[str("" if v is None else v) for v in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


@report_group.command("messages")
@_dates
@click.option("--campaign", help="A campaign key.")
@click.option("--channel", type=click.Choice(CHANNELS))
@click.option("--status", type=click.Choice(MESSAGE_STATUSES))
@click.option("--by", default="day,campaign,channel,status", show_default=True,
              help="The groups, comma-separated.")
@_output
@pass_ws
def report_messages_cmd(ws: Workspace, since: date | None, until: date | None,
                        campaign: str | None, channel: str | None, status: str | None, by: str,
                        as_csv: bool, as_json: bool) -> None:
    """Messages, SMS parts and credits used by day (NUDGEFLOW_TIMEZONE), campaign, channel
    and status."""
    from engine.datasets.files import write_csv
    from engine.reports import messages

    _check(since, until)
    names = [n.strip() for n in by.split(",")]
    if not names or any(n not in messages.DIMENSIONS for n in names):
        raise click.BadParameter(f"expected some of {', '.join(messages.DIMENSIONS)}, got {by!r}",
                                 param_hint="--by")
    dims = tuple(d for d in messages.DIMENSIONS if d in names)
    f = messages.MessageFilter(ws.settings.timezone, since, until, campaign, channel, status)
    header = [*dims, *messages.FIGURES]
    with ws.engine.connect() as conn:
        if as_csv:
            write_csv(sys.stdout, header, conn.execute(messages.statement(conn, f, dims)))
            return
        report = messages.report(conn, f, dims, limit=10**9)
    if as_json:
        echo_json(report)
        return
    _table(header, [[r[k] for k in header] for r in report["rows"]])
    t = report["totals"]
    click.echo(f"total: {t['messages']} messages, {t['sms_parts']} SMS parts, "
               f"{t['credits']} credits (days in {f.timezone})")


@report_group.command("points")
@click.option("--description", help="Text the description contains, in any case.")
@click.option("--legal-entity", help="The legal entity's whole name, in any case.")
@click.option("--campaign", help="A campaign key.")
@click.option("--customer", help="A customer's external id.")
@click.option("--kind", type=click.Choice(LEDGER_KINDS))
@_dates
@_output
@pass_ws
def report_points_cmd(ws: Workspace, description: str | None, legal_entity: str | None,
                      campaign: str | None, customer: str | None, kind: str | None,
                      since: date | None, until: date | None, as_csv: bool,
                      as_json: bool) -> None:
    """Bonus ledger movements, latest booking first, with totals per kind."""
    from engine.datasets.files import write_csv
    from engine.reports import points

    _check(since, until)
    f = points.PointsFilter(description, legal_entity, campaign, customer, kind, since, until)
    with ws.engine.connect() as conn:
        if as_csv:
            write_csv(sys.stdout, points.COLUMNS, conn.execution_options(
                stream_results=True, yield_per=2000).execute(points.statement(f)))
            return
        rows = [dict(r._mapping) for r in conn.execute(points.statement(f))]
        totals = points.totals(conn, f)
    if as_json:
        echo_json({"items": rows, "totals": totals})
        return
    _table(points.COLUMNS, [[r[k] for k in points.COLUMNS] for r in rows])
    kinds = ", ".join(f"{k} {t['points']} ({t['rows']})" for k, t in totals["kinds"].items())
    click.echo(f"total: {totals['rows']} movements, net {totals['net']} points; {kinds}")
