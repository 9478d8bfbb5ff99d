"""Large answers as streamed CSV: rows leave in chunks straight from a server-side cursor, each
cell neutralised against spreadsheet formulas (engine.csvcells)."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import Any

from flask import Response, stream_with_context

from engine.csvcells import SafeWriter
from web.db import engine

CSV_DOC = {"responses": {"200": {"description": "CSV, streamed",
                                 "content": {"text/csv": {"schema": {"type": "string"}}}}}}


def stream_csv(header: Sequence[str], stmt: Any, filename: str) -> Response:
    db = engine()

    def rows() -> Iterator[str]:
        out = io.StringIO()
        writer = SafeWriter(out)
        writer.writerow(header)
        with db.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=2000).execute(stmt)
            for chunk in result.partitions():
                for row in chunk:
                    writer.writerow(row)
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()

    return Response(stream_with_context(rows()), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={filename}"})
