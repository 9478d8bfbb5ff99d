"""CLI verbs for blasts: send a template to a data set's rows (all, or those listed) once, and
list the blasts made."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path
from typing import Any

import click

from engine.cli import Workspace, cli, echo_json, parse_day, pass_ws
from engine.errors import Problem, ValidationError
from engine.runlog import figures


def read_customers(path: Path) -> list[str]:
    """External ids from a file: one a line, or a CSV whose header has `external_id` (a data
    set's CSV works as it is)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError([Problem(str(path), f"cannot read it: {exc}")]) from None
    lines = text.splitlines()
    if lines and "," in lines[0]:
        reader = csv.DictReader(io.StringIO(text))
        if "external_id" not in (reader.fieldnames or []):
            raise ValidationError([Problem(f"{path}:1", "a CSV needs an external_id column")])
        return [row["external_id"].strip() for row in reader if row["external_id"].strip()]
    ids = [line.strip() for line in lines if line.strip()]
    return ids[1:] if ids[:1] == ["external_id"] else ids


def _summary(made: dict[str, Any]) -> str:
    counts = made["counts"]
    parts = [f"{made['requested']} {'listed' if made['selection'] == 'list' else 'rows'}",
             f"{counts['recipients']} in the data set as of {made['date']}",
             figures({"queued": counts["queued"], "skipped": counts["skipped"]}, ", ")]
    return "; ".join(parts)


@cli.command("blast")
@click.argument("segment", required=False)
@click.option("--rules", "rules_json", help="Inline rules as JSON instead of SEGMENT.")
@click.option("--template", help="The template to send (or --channel and --body).")
@click.option("--channel", type=click.Choice(["email", "sms"]), help="Inline message channel.")
@click.option("--subject", help="Inline email subject.")
@click.option("--body", help="Inline message body.")
@click.option("--date", "day", callback=parse_day,
              help="The data set as of this date (default today in NUDGEFLOW_TIMEZONE).")
@click.option("--all", "every_row", is_flag=True, help="Send to every row of the data set.")
@click.option("--customers", help="Only these customers: external ids, comma-separated.")
@click.option("--customers-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Only these customers: one external id a line, or a CSV with external_id.")
@click.option("--at", "at", help="Send at this date and time (ISO 8601; UTC unless it has an "
                                 "offset), at most 14 days ahead.")
@click.option("--in", "hours", type=click.IntRange(1, 14 * 24), help="Send in this many hours.")
@click.option("--purpose", type=click.Choice(["marketing", "service"]), default="marketing",
              show_default=True, help="Marketing needs consent (unless the workspace ignores it).")
@click.option("--reply-to", help="Reply-to address for email.")
@click.option("--sender", help="Sender: an email address, or an SMS sender.")
@click.option("--name", help="A name for the blast.")
@click.option("--token", help="Idempotency key: the same key makes the blast once.")
@click.option("--dry-run", is_flag=True, help="Count what it would send; write nothing.")
@click.option("--json", "as_json", is_flag=True)
@pass_ws
def blast_cmd(ws: Workspace, segment: str | None, rules_json: str | None, template: str | None,
              channel: str | None, subject: str | None, body: str | None, day: date | None,
              every_row: bool, customers: str | None, customers_file: Path | None,
              at: str | None, hours: int | None, purpose: str, reply_to: str | None,
              sender: str | None, name: str | None, token: str | None, dry_run: bool,
              as_json: bool) -> None:
    """Send a message once to a data set's rows: all (--all) or those listed; prints the
    blast's id and its counts (queued, skipped by reason)."""
    from engine import blasts
    from engine.campaigns import campaign_today
    from engine.limits import strict_loads

    if (segment is None) == (rules_json is None):
        raise click.UsageError("give exactly one of SEGMENT or --rules")
    if sum((every_row, customers is not None, customers_file is not None)) != 1:
        raise click.UsageError("choose the rows: --all, --customers or --customers-file")
    if at is not None and hours is not None:
        raise click.UsageError("give --at or --in, not both")
    raw: dict[str, Any] = {"purpose": purpose}
    if segment is not None:
        raw["segment"] = segment
    else:
        try:
            raw["rules"] = strict_loads(rules_json or "")
        except ValueError as exc:
            raise ValidationError([Problem("--rules", str(exc))]) from None
    optional = {"template": template, "channel": channel, "subject": subject, "body": body,
                "reply_to": reply_to, "sender": sender, "name": name, "client_token": token}
    raw |= {k: v for k, v in optional.items() if v is not None}
    if day is not None:
        raw["date"] = day.isoformat()
    if every_row:
        raw["all"] = True
    else:
        raw["customers"] = (read_customers(customers_file) if customers_file is not None
                            else [c.strip() for c in (customers or "").split(",") if c.strip()])
    if at is not None:
        raw["send_at"] = {"mode": "datetime", "value": at}
    elif hours is not None:
        raw["send_at"] = {"mode": "delay", "hours": hours}
    tz = ws.settings.timezone
    req = blasts.load_request(raw, campaign_today(tz))
    made, new = blasts.create(ws.engine, req, tz, dry_run=dry_run)
    if as_json:
        echo_json({**made, "created": new})
        return
    if dry_run:
        click.echo(f"dry run, nothing written: {_summary(made)}")
    else:
        state = "created" if new else "already made with this token"
        click.echo(f"{made['key']} {state}: {_summary(made)}")
    if made["not_members"]:
        shown = ", ".join(made["not_members"][:20])
        more = f" and {len(made['not_members']) - 20} more" if len(made["not_members"]) > 20 else ""
        click.echo(f"not in the data set as of {made['date']}, not sent: {shown}{more}")
    if not dry_run:
        click.echo(f"stop it with: nudgeflow messages cancel --campaign {made['key']}")


@cli.command("blasts")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True)
@pass_ws
def blasts_cmd(ws: Workspace, limit: int, as_json: bool) -> None:
    """The blasts, newest first: key, date, data set, rows, counts and messages by status."""
    from engine.blasts import list_blasts

    with ws.engine.connect() as conn:
        rows = list_blasts(conn, limit)
    if as_json:
        echo_json(rows)
        return
    for b in rows:
        source = b["segment"] or "inline rules"
        statuses = ", ".join(f"{s} {n}" for s, n in sorted(b["messages"].items()))
        click.echo(f"{b['key']} {b['date']} {source} {b['template'] or b['channel']} "
                   f"{b['purpose']}: {_summary(b)}" + (f"; messages: {statuses}" if statuses
                                                       else ""))
    if not rows:
        click.echo("no blasts yet")
