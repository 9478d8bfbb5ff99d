"""Large answers as streamed CSV: rows leave in chunks straight from a server-side cursor, each
cell neutralised against spreadsheet formulas (engine.csvcells)."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from flask import Response, send_file, stream_with_context

from engine import datasets
from engine.csvcells import SafeWriter
from engine.datasets.files import MIMETYPES, write_xlsx
from web.db import engine

CSV_DOC = {"responses": {"200": {"description": "CSV, streamed",
                                 "content": {"text/csv": {"schema": {"type": "string"}}}}}}
XLSX_DOC = {"responses": {"200": {"description": "An XLSX workbook",
                                  "content": {MIMETYPES["xlsx"]: {
                                      "schema": {"type": "string", "format": "binary"}}}}}}


def stream_csv(header: Sequence[str], stmt: Any, filename: str,
               shape: Callable[[Any], Sequence[Any]] = tuple) -> Response:
    """`header`, then the rows of `stmt` (each through `shape`), in chunks as they are read."""
    db = engine()

    def rows() -> Iterator[str]:
        out = io.StringIO()
        writer = SafeWriter(out)
        writer.writerow(header)
        with db.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=2000).execute(stmt)
            for chunk in result.partitions():
                for row in chunk:
                    writer.writerow(shape(row))
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()

    return Response(stream_with_context(rows()), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={filename}"})


def stream_dataset(ds: datasets.DataSet, fmt: str, filename: str) -> Response:
    """A data set as CSV streamed, or as XLSX: openpyxl's write-only workbook spools its rows
    to disk and zips them at the end, so the file is built first, then sent from disk."""
    if fmt == "csv":
        return stream_csv(ds.columns, datasets.statement(ds), filename, datasets.shaper(ds))
    spool = tempfile.TemporaryFile()
    with engine().connect() as conn:
        write_xlsx(spool, ds.columns, datasets.rows(conn, ds))
    spool.seek(0)
    return send_file(spool, mimetype=MIMETYPES["xlsx"], as_attachment=True,
                     download_name=filename)
