"""CLI verb for data sets: a segment's members with chosen columns as CSV or XLSX."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import click

from engine.cli import Workspace, cli, parse_day, pass_ws
from engine.errors import Problem, ValidationError


@cli.command("dataset")
@click.argument("segment", required=False)
@click.option("--rules", "rules_json", help="Inline rules as JSON instead of SEGMENT.")
@click.option("--columns",
              help="Comma-separated columns: customer fields, attributes.NAME, derived fields.")
@click.option("--column-set", "column_set", help="The columns saved under this name instead.")
@click.option("--date", "day", callback=parse_day, help="As of this date (default today).")
@click.option("--sort", help="Order by FIELD, or -FIELD descending (default external_id); "
                             "empty values last.")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]),
              help="Default: xlsx when FILE ends in .xlsx, else csv.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The file to write (`-` for standard output, CSV only).")
@pass_ws
def dataset_cmd(ws: Workspace, segment: str | None, rules_json: str | None,
                columns: str | None, column_set: str | None, day: date | None,
                sort: str | None, fmt: str | None, output: Path) -> None:
    """Write a segment's members with the chosen columns as of a date, one row each."""
    from engine import datasets
    from engine.datasets.files import write_csv, write_xlsx
    from engine.limits import strict_loads

    if (segment is None) == (rules_json is None):
        raise click.UsageError("give exactly one of SEGMENT or --rules")
    if (columns is None) == (column_set is None):
        raise click.UsageError("give exactly one of --columns or --column-set")
    stdout = str(output) == "-"
    fmt = fmt or ("xlsx" if output.suffix.lower() == ".xlsx" else "csv")
    if fmt == "xlsx" and stdout:
        raise click.UsageError("--format xlsx needs a file (-o FILE)")
    day = day or date.today()
    with ws.engine.connect() as conn:
        if column_set is not None:
            from engine.datasets.column_sets import columns_of
            columns = ",".join(columns_of(conn, column_set))
        assert columns is not None
        if segment is not None:
            ds = datasets.for_segment(conn, segment, columns, day, sort)
        else:
            try:
                rules: Any = strict_loads(rules_json or "")
            except ValueError as exc:
                raise ValidationError([Problem("--rules", str(exc))]) from None
            ds = datasets.for_rules(conn, rules, columns, day, sort)
        with _progress(conn, ds) as tick:
            rows = datasets.rows(conn, ds)
            if fmt == "xlsx":
                write_xlsx(str(output), ds.columns, rows, tick)
            elif stdout:
                write_csv(sys.stdout, ds.columns, rows, tick)
            else:
                with output.open("w", newline="", encoding="utf-8") as out:
                    write_csv(out, ds.columns, rows, tick)


@contextmanager
def _progress(conn: Any, ds: Any) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr when it is a terminal (the total costs a count); else nothing."""
    if not sys.stderr.isatty():
        yield lambda: None
        return
    from engine import datasets

    with click.progressbar(length=datasets.count(conn, ds), label="rows", update_min_steps=500,
                           file=sys.stderr) as bar:
        yield lambda: bar.update(1)
