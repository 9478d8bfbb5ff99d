"""The `nudgeflow` command line. Bad input ends with a message on stderr and a non-zero exit."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from engine.config import Settings, load_settings
from engine.db import make_engine
from engine.errors import NudgeflowError, ValidationError
from engine.limits import text_problem


class Workspace:
    """Settings and the database engine, made on first use so `--help` needs neither."""

    @cached_property
    def settings(self) -> Settings:
        return load_settings()

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)


pass_ws = click.make_pass_decorator(Workspace, ensure=True)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def parse_day(_ctx: Any, _param: Any, value: str | None) -> date | None:
    if value is None:
        return None
    from engine.segments.dates import day_problem

    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected YYYY-MM-DD, got {value!r}") from None
    if (why := day_problem(day)) is not None:
        raise click.BadParameter(why)
    return day


@click.group()
def cli() -> None:
    """nudgeflow: campaign automation, exactly once."""


@cli.command()
@pass_ws
def init(ws: Workspace) -> None:
    """Create or upgrade the database named by NUDGEFLOW_DATABASE_URL."""
    from engine.schema import upgrade

    upgrade(ws.engine)
    click.echo(f"database ready: {ws.engine.url.render_as_string(hide_password=True)}")


@cli.group("import")
def import_group() -> None:
    """Import customers, invoices, events (CSV or JSON Lines) or campaigns (JSON)."""


def _print_import(result: Any, as_json: bool) -> None:
    if as_json:
        echo_json(result.as_dict())
        return
    warnings = ", ".join(f"{n} {w}" for w, n in sorted(result.warnings.items()))
    click.echo(
        f"{result.kind}: {result.rows} rows, {result.inserted} inserted, {result.updated} updated"
        + (f", {result.unchanged} unchanged" if result.unchanged else "")
        + (f"; warnings: {warnings}" if warnings else "")
    )


@import_group.command("customers")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_ws
def import_customers_cmd(ws: Workspace, file: Path, as_json: bool) -> None:
    """Upsert customers by external_id; one bad row and nothing changes. Rows that change
    nothing are not written. On a terminal a progress bar shows rows/s."""
    from engine.importing import import_customers
    from engine.importing.progress import Progress

    _print_import(import_customers(ws.engine, file, ws.settings.default_region,
                                   Progress.on_terminal("customers")), as_json)


@import_group.command("invoices")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_ws
def import_invoices_cmd(ws: Workspace, file: Path, as_json: bool) -> None:
    """Upsert invoices by external_id; their customers must exist. Rows that change nothing
    are not written. On a terminal a progress bar shows rows/s."""
    from engine.importing import import_invoices
    from engine.importing.progress import Progress

    _print_import(import_invoices(ws.engine, file, Progress.on_terminal("invoices")), as_json)


@import_group.command("events")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_ws
def import_events_cmd(ws: Workspace, file: Path, as_json: bool) -> None:
    """Store events (CSV: id, customer, name, at, properties.NAME...; or JSON Lines); an id
    already stored is a duplicate; one bad row and nothing is stored."""
    from engine.journeys.events import import_events

    result = import_events(ws.engine, file)
    if as_json:
        echo_json(result.as_dict())
    else:
        click.echo(f"events: {result.received} received, {result.created} stored, "
                   f"{result.duplicates} duplicate(s)")


@cli.command("seed-demo")
@click.option("--customers", "count", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=42, show_default=True, help="Random seed (same seed, same data).")
@pass_ws
def seed_demo_cmd(ws: Workspace, count: int, seed: int) -> None:
    """Fill the database with realistic demo customers and invoices."""
    from engine.seed import seed_demo

    summary = seed_demo(ws.engine, count, ws.settings.default_region, seed=seed)
    click.echo(f"demo data: {summary['customers']} customers, {summary['invoices']} invoices")


def main(argv: list[str] | None = None) -> None:
    """Entry point: turn our errors into a message and an exit code, never a traceback."""
    from engine import (  # noqa: F401  (register them)
        cli_access,
        cli_blasts,
        cli_campaigns,
        cli_datasets,
        cli_journeys,
        cli_messages,
        cli_points,
        cli_reports,
        cli_retention,
    )

    ws = Workspace()
    for number, arg in enumerate(sys.argv[1:] if argv is None else argv, start=1):
        # Bytes that are not UTF-8 arrive as lone surrogates, which no database can store.
        if (why := text_problem(arg)) is not None:
            click.echo(f"error: argument {number}: {why} (is it UTF-8?)", err=True)
            sys.exit(2)
    try:
        cli.main(args=argv, prog_name="nudgeflow", standalone_mode=False, obj=ws)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ValidationError as exc:
        click.echo(f"error: {exc.title}", err=True)
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(exc.exit_code)
    except NudgeflowError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except OperationalError as exc:
        hint = " (run `nudgeflow init` first)" if "no such table" in str(exc.orig) else ""
        click.echo(f"error: database: {str(exc.orig).strip()}{hint}", err=True)
        sys.exit(1)
    finally:
        if "engine" in ws.__dict__:
            ws.engine.dispose()


class _EchoHandler(logging.Handler):
    """Log records as lines on standard output (found at each write, as click finds it)."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(self.format(record))


def _report_to_stdout(log_format: str = "text") -> None:
    """The scheduler's and the dispatcher's reports (runs, failures, skipped days, the
    leader) go to standard output, as text or as JSON lines (NUDGEFLOW_LOG_FORMAT)."""
    from engine.logs import formatter

    logger = logging.getLogger("nudgeflow")
    handler = next((h for h in logger.handlers if isinstance(h, _EchoHandler)), None)
    if handler is None:
        handler = _EchoHandler()
        logger.addHandler(handler)
    handler.setFormatter(formatter(log_format))
    logger.setLevel(logging.INFO)


@contextmanager
def _scheduling(ws: Workspace, dispatch_interval: int = 30) -> Iterator[None]:
    """Catch up (when this process leads the scheduler), dispatch what is due, then keep the
    scheduler's jobs running until the block ends."""
    from engine.scheduler import TICK_SECONDS, Schedule, build_scheduler, dispatch_due

    _report_to_stdout(ws.settings.log_format)
    schedule = Schedule(ws.engine, ws.settings)
    caught = schedule.tick(full=True)
    if caught is None:
        click.echo("standby: another nudgeflow process leads the scheduler; this one "
                   "dispatches messages and takes over if that one stops")
    else:
        click.echo(f"caught up: {caught.summary()}")
    dispatch_due(ws.engine, ws.settings)
    scheduler = build_scheduler(schedule, dispatch_seconds=dispatch_interval)
    scheduler.start()
    click.echo(f"scheduler running: daily run at {ws.settings.run_at:%H:%M} "
               f"{ws.settings.timezone}, due runs checked every {TICK_SECONDS} s, outbox "
               f"dispatched every {dispatch_interval} s")
    try:
        yield
    finally:
        scheduler.shutdown(wait=False)
        schedule.stop()


@cli.command()
@click.option("--dispatch-interval", default=30, show_default=True, type=click.IntRange(1, 3600),
              help="Seconds between the dispatcher's rounds.")
@pass_ws
def worker(ws: Workspace, dispatch_interval: int) -> None:
    """Run the scheduler (when this process leads) and the dispatcher: catch up missed days,
    then run daily at NUDGEFLOW_RUN_AT. Stops on Ctrl-C or SIGTERM."""
    import signal
    import threading

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with _scheduling(ws, dispatch_interval):
        click.echo("Ctrl-C to stop")
        try:
            stopped.wait()
        except KeyboardInterrupt:
            pass


def _demo_dispatch(ws: Workspace) -> None:
    """Send what is due now, and say what waits for its time (a birthday SMS at 09:00)."""
    from sqlalchemy import func, select

    from engine.channels import channels_for
    from engine.models import Message
    from engine.outbox import dispatch

    stats = dispatch(ws.engine, ws.settings, channels_for(ws.settings))
    with ws.engine.connect() as conn:
        later, first = conn.execute(select(func.count(), func.min(Message.send_after))
                                    .where(Message.status == "queued")).one()
    waiting = (f"; {later} more wait for their send time (the first at "
               f"{first:%Y-%m-%d %H:%M} UTC): the scheduler sends them then" if later else "")
    click.echo(f"{stats.sent} message(s) written to {ws.settings.outbox_dir}/ (file provider)"
               f"{waiting}")


@cli.command()
@click.option("--customers", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--no-wait", is_flag=True, help="Set up and run today, then exit.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@pass_ws
def demo(ws: Workspace, customers: int, no_wait: bool, host: str, port: int) -> None:
    """A ready workspace (schema, demo customers and invoices, the example campaigns, an admin
    login), then the app and the scheduler, as `serve` runs them."""
    from sqlalchemy import func, select

    from engine.campaigns import import_file
    from engine.models import Customer
    from engine.schema import upgrade
    from engine.seed import seed_demo

    upgrade(ws.engine)
    with ws.engine.connect() as conn:
        empty = conn.execute(select(func.count()).select_from(Customer)).scalar_one() == 0
    if empty:
        made = seed_demo(ws.engine, customers, ws.settings.default_region)
        click.echo(f"demo data: {made['customers']} customers, {made['invoices']} invoices")
    example = Path(__file__).resolve().parent.parent / "campaigns.example.json"
    done = import_file(ws.engine, example, saved_by="demo")
    click.echo(f"example campaigns: {done['campaigns']} campaigns, {done['segments']} segments, "
               f"{done['templates']} templates")
    click.echo("try: nudgeflow run --dry-run | nudgeflow runs | nudgeflow activity D000001")
    from engine.executor import active_campaigns, run_many

    # Today's runs now, whatever the time: the scheduler would wait for NUDGEFLOW_RUN_AT.
    ran = run_many(ws.engine, None, active_campaigns(ws.engine))
    click.echo(f"ran {len(ran)} campaign run(s) for today")
    if no_wait:
        _demo_dispatch(ws)
        return
    import secrets

    from engine.db import write_transaction
    from engine.users import create_token, ensure_user

    password = secrets.token_urlsafe(12)
    with write_transaction(ws.engine) as conn:
        ensure_user(conn, "admin", "admin", password)
        token = create_token(conn, "admin", "demo")
    click.echo(f"log in at http://{host}:{port}/login as admin / {password}")
    click.echo(f"API: curl -H 'Authorization: Bearer {token}' http://{host}:{port}/api/v1/campaigns")
    _serve(ws, host, port)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", type=click.IntRange(1, 64),
              help="Serve from this many gunicorn processes (production). Without it: one "
                   "process that also runs the scheduler.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Threads per gunicorn process (with --workers).")
@click.option("--scheduler/--no-scheduler", default=None,
              help="Run the scheduler and dispatcher too (default: yes without --workers, no "
                   "with it; with --workers it runs as a `nudgeflow worker` process beside them).")
@pass_ws
def serve(ws: Workspace, host: str, port: int, workers: int | None, threads: int,
          scheduler: bool | None) -> None:
    """Serve the web app (and, by default in one process, the scheduler)."""
    if workers is None:
        _serve(ws, host, port, scheduler=scheduler is not False)
        return
    from engine.serving import serve_workers

    serve_workers(ws.settings, host, port, workers, threads, with_scheduler=bool(scheduler))


def _serve(ws: Workspace, host: str, port: int, scheduler: bool = True) -> None:
    from contextlib import nullcontext

    from werkzeug.serving import run_simple

    from web import create_app

    app = create_app({"NUDGEFLOW_SETTINGS": ws.settings})
    with _scheduling(ws) if scheduler else nullcontext():
        run_simple(host, port, app, threaded=True)
