"""CLI verbs for points: `nudgeflow points adjust` (add or redeem by hand)."""

from __future__ import annotations

import getpass
import re
from datetime import date
from typing import Any

import click
from marshmallow import ValidationError as SchemaError

from engine.cli import Workspace, cli, echo_json, parse_day, pass_ws
from engine.errors import Problem, ValidationError, flatten_messages

# The schema's fields as the command line names them.
NAMES = {"$.amount": "AMOUNT", "$.reason": "--reason", "$.expires_at": "--expires",
         "$.lifetime_days": "--lifetime-days", "$.legal_entity": "--legal-entity",
         "$.reference": "--reference"}


@cli.group("points")
def points_group() -> None:
    """Loyalty points booked by hand."""


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (a container)
        return "cli"


@points_group.command("adjust", context_settings={"ignore_unknown_options": True})
@click.argument("external_id")
@click.argument("amount")
@click.option("--reason", required=True, help="Why (kept as the movement's description).")
@click.option("--expires", "expires_at", callback=parse_day,
              help="Points added expire on this date (YYYY-MM-DD).")
@click.option("--lifetime-days", type=int, help="Or: points added expire N days from today.")
@click.option("--legal-entity", help="The legal entity the movement belongs to.")
@click.option("--reference", help="Idempotency key: the same key again books nothing.")
@click.option("--by", "by", help="Who books it (default: cli:<your login>).")
@click.option("--json", "as_json", is_flag=True)
@pass_ws
def adjust_cmd(ws: Workspace, external_id: str, amount: str, reason: str,
               expires_at: date | None, lifetime_days: int | None, legal_entity: str | None,
               reference: str | None, by: str | None, as_json: bool) -> None:
    """Add AMOUNT points (positive) or redeem them (negative, e.g. -60: taken from the points
    that expire first; refused when fewer are available). Prints the movement and the new
    balance."""
    from engine.activity import customer_id
    from engine.campaigns import campaign_today
    from engine.db import write_transaction
    from engine.points import PointsSchema, adjust, balance

    raw: dict[str, Any] = {
        "amount": int(amount) if re.fullmatch(r"[+-]?[0-9]{1,30}", amount) else amount,
        "reason": reason, "expires_at": expires_at.isoformat() if expires_at else None,
        "lifetime_days": lifetime_days, "legal_entity": legal_entity, "reference": reference}
    try:
        fields = PointsSchema().load({k: v for k, v in raw.items() if v is not None})
    except SchemaError as exc:
        raise ValidationError(Problem(NAMES.get(p, p), m)
                              for p, m in flatten_messages(exc.messages)) from None
    today = campaign_today(ws.settings.timezone)
    try:
        with write_transaction(ws.engine) as conn:
            booked = adjust(conn, customer_id(conn, external_id), fields, today,
                            by or _who())
            after = balance(conn, customer_id(conn, external_id), today)
    except ValidationError as exc:
        raise ValidationError(Problem(NAMES.get(p.where, p.where), p.message)
                              for p in exc.problems) from None
    if as_json:
        echo_json({"movement": booked.movement, "replayed": booked.replayed,
                   "balance": after})
        return
    m = booked.movement
    again = " (already booked with this reference; nothing new)" if booked.replayed else ""
    if m["kind"] == "redemption":
        took = ", ".join(f"{t['amount']} from #{t['credit']} (expires "
                         f"{t['expires_at'] or 'never'})" for t in m["took"])
        click.echo(f"redeemed {-m['amount']} points for {external_id}: {took}{again}")
    else:
        click.echo(f"added {m['amount']} points for {external_id}, expires "
                   f"{m['expires_at'] or 'never'}{again}")
    click.echo(summary(after))


def summary(data: dict[str, Any]) -> str:
    """One line of balance totals."""
    return (f"available {data['available']}, pending {data['pending']}, expiring within 30 "
            f"days {data['expiring_30']}, expired {data['expired']}, redeemed "
            f"{data['redeemed']} (as of {data['as_of']})")
