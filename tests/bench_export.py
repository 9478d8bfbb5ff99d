"""Export benchmark: a large segment streamed as CSV through the API, with the Python heap's
peak while streaming (tracemalloc), to show memory stays flat however many rows go out."""

from __future__ import annotations

import time
import tracemalloc

from sqlalchemy import Engine

from engine.config import Settings
from engine.db import write_transaction
from engine.users import create_token, create_user


def bench_export(engine: Engine, url: str, segment: str, day: str,
                 trace: bool = True) -> dict[str, float]:
    """`trace=False` leaves tracemalloc off (it slows every allocation down), for a caller
    that times the export against another and reads the process's peak memory itself."""
    from web import create_app

    with write_transaction(engine) as conn:
        from sqlalchemy import delete

        from engine.models import User

        conn.execute(delete(User).where(User.name == "bench"))
        create_user(conn, "bench", "viewer", "bench password 123")
        token = create_token(conn, "bench")
    app = create_app({"NUDGEFLOW_SETTINGS": Settings(database_url=url, secret_key="bench")})
    client = app.test_client()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    response = client.get(f"/api/v1/segments/{segment}/export.csv?date={day}",
                          headers={"Authorization": f"Bearer {token}"}, buffered=False)
    rows = sum(chunk.count(b"\n") for chunk in response.iter_encoded()) - 1
    seconds = time.perf_counter() - started
    app.extensions["nudgeflow_engine"].dispose()
    if not trace:
        print(f"  segment CSV export over HTTP: {rows:,} rows in {seconds:.2f} s")
        return {"rows": rows, "seconds": seconds}
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  segment CSV export over HTTP: {rows:,} rows in {seconds:.1f} s, Python heap "
          f"peak while streaming {peak / 2**20:.1f} MB")
    return {"rows": rows, "seconds": seconds, "peak_mb": peak / 2**20}
