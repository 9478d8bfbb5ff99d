"""`nudgeflow explain`: why a customer did or did not get what a campaign does."""

from __future__ import annotations

from datetime import date
from typing import Any

import click

from engine.cli import Workspace, cli, echo_json, parse_day, pass_ws


@cli.command("explain")
@click.argument("external_id")
@click.argument("campaign")
@click.option("--date", "day", callback=parse_day,
              help="The run date to explain (default: today in the campaign's time zone).")
@click.option("--json", "as_json", is_flag=True)
@pass_ws
def explain_cmd(ws: Workspace, external_id: str, campaign: str, day: date | None,
                as_json: bool) -> None:
    """What CAMPAIGN does, or would do, for customer EXTERNAL_ID on a date, node by node in
    graph order: reached, passed (the branch, the wait), why, and the effects that exist.
    Computed by the run's own SQL for this customer alone; writes nothing. Marks: + passed,
    x stopped, > branch taken, ~ waiting, blank not reached."""
    from engine.campaigns import campaign_today
    from engine.executor import load_campaign_row
    from engine.journeys.explain import explain

    with ws.engine.connect() as conn:
        tz = load_campaign_row(conn, campaign).timezone
    data = explain(ws.engine, external_id, campaign, day or campaign_today(tz))
    if as_json:
        echo_json(data)
        return
    click.echo(f"{data['campaign']} v{data['version']} for {data['customer']} on {data['date']}")
    for node in data["nodes"]:
        click.echo(f"  {_mark(node)} {node['id']} ({node['title'] or node['type']}): "
                   f"{node['reason']}")
        for effect in node["effects"]:
            click.echo(f"      {_effect(effect)}")


def _mark(node: dict[str, Any]) -> str:
    if not node["reached"]:
        return " "
    if node["branch"]:
        return ">"
    if node["waiting_until"]:
        return "~"
    return "+" if node["passed"] else "x"


def _effect(effect: dict[str, Any]) -> str:
    if effect["kind"] == "message":
        reason = f" ({effect['skip_reason']})" if effect["skip_reason"] else ""
        return (f"message #{effect['id']} {effect['channel']} {effect['status']}{reason}, "
                f"run {effect['run_id']}, {effect['occurrence']}")
    until = f", valid until {effect['expires_at']}" if effect["expires_at"] else ""
    return f"{effect['amount']} points{until}, run {effect['run_id']}, {effect['occurrence']}"
