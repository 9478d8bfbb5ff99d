"""CLI verbs for the outbox: dispatch, credits and cancel."""

from __future__ import annotations

import time

import click

from engine.cli import Workspace, cli, echo_json, pass_ws
from engine.db import write_transaction


@cli.command("dispatch")
@click.option("--once", is_flag=True, help="Dispatch what is due now, then exit.")
@click.option("--interval", default=30, show_default=True, type=click.IntRange(1, 86_400),
              help="Seconds between rounds.")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 10_000),
              help="Messages per claimed batch.")
@pass_ws
def dispatch_cmd(ws: Workspace, once: bool, interval: int, batch_size: int) -> None:
    """Send due messages through the configured providers."""
    from engine.channels import channels_for
    from engine.outbox import dispatch

    channels = channels_for(ws.settings)
    while True:
        stats = dispatch(ws.engine, ws.settings, channels, batch_size=batch_size)
        # The line's first five figures keep their form; the others show only when they happen.
        cancelled = (f", cancelled {stats.cancelled} (opted out since queued)"
                     if stats.cancelled else "")
        quiet = f", {stats.deferred} wait for quiet hours to end" if stats.deferred else ""
        click.echo(f"claimed {stats.claimed}, sent {stats.sent}, retry later {stats.retried}, "
                   f"failed {stats.failed}, held for credit {stats.held}{cancelled}{quiet}")
        if once:
            return
        time.sleep(interval)


@cli.group("credits")
def credits_group() -> None:
    """Prepaid credits per channel (one per email, one per SMS part)."""


@credits_group.command("add")
@click.argument("channel", type=click.Choice(["email", "sms"]))
@click.argument("units", type=click.IntRange(1))
@pass_ws
def credits_add(ws: Workspace, channel: str, units: int) -> None:
    """Add credit; messages held for lack of it go out on the next dispatch."""
    from engine import credits

    with write_transaction(ws.engine) as conn:
        balance = credits.add(conn, channel, units)
    click.echo(f"{channel}: {balance} credits")


@credits_group.command("show")
@click.option("--json", "as_json", is_flag=True)
@pass_ws
def credits_show(ws: Workspace, as_json: bool) -> None:
    """Balance per channel ("unmetered" until credit is first added)."""
    from engine import credits

    with ws.engine.connect() as conn:
        data = credits.balances(conn)
    if as_json:
        echo_json(data)
        return
    for channel, balance in data.items():
        click.echo(f"{channel}: {'unmetered' if balance is None else balance}")


@cli.group("messages")
def messages_group() -> None:
    """The outbox."""


@messages_group.command("cancel")
@click.option("--campaign", "key", required=True, help="Campaign key.")
@click.option("--run", "run_id", type=click.IntRange(1, 2**31 - 1),
              help="Only messages of this run id.")
@pass_ws
def messages_cancel(ws: Workspace, key: str, run_id: int | None) -> None:
    """Cancel a campaign's queued and held messages (the STOP button), with activities.

    Messages a dispatcher already holds are left to it: each ends as the provider answers."""
    from engine.cancel import cancel_messages

    done = cancel_messages(ws.engine, key, run_id)
    click.echo(f"{done.cancelled} message(s) cancelled, {done.on_their_way} already on their "
               "way (they end as the provider answers)")
