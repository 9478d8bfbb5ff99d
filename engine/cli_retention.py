"""`nudgeflow prune`: remove old months of messages and activities (engine.retention)."""

from __future__ import annotations

from datetime import date

import click

from engine.cli import Workspace, cli, echo_json, parse_day, pass_ws


@cli.command()
@click.option("--before", "before", required=True, callback=parse_day, metavar="DATE",
              help="Remove the messages of runs of dates before DATE, and activities logged "
                   "before it; runs of those dates are refused from then on.")
@click.option("--dry-run", is_flag=True, help="Count what would go; remove nothing.")
@click.option("--json", "as_json", is_flag=True)
@pass_ws
def prune(ws: Workspace, before: date, dry_run: bool, as_json: bool) -> None:
    """Remove old messages and activities, keeping the runs log and the points ledger."""
    from engine.campaigns import campaign_today
    from engine.retention.prune import prune as prune_before

    done = prune_before(ws.engine, before, today=campaign_today(ws.settings.timezone),
                        catchup_days=ws.settings.catchup_days, dry_run=dry_run)
    if as_json:
        echo_json(done.as_dict())
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {done.messages} message(s) and {done.activities} activit(ies) before "
               f"{before.isoformat()}"
               + ("" if dry_run else f"; dates before {before.isoformat()} can no longer be run"))
