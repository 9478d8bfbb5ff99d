"""The production soak (tests/soak_prod.py) at a tiny scale, so the suite keeps it working:
four workers, two SIGKILLed, the gunicorn web tier under 200 requests, 2,000 customers and
1,000 emails. `make soak-prod` runs it at 1,000,000 customers and 100,000 emails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import postgres_db
from tests.soak_prod import soak


@pytest.mark.postgres
@pytest.mark.slow
def test_soak_at_a_tiny_scale(tmp_path: Path) -> None:
    for db in postgres_db():
        report = soak(db.engine, db.url, customers=2000, dispatch=1000, requests=200, kills=2,
                      kill_every=(1, 3), log_dir=tmp_path, timeout=300)
        assert report.emails == 1000
        print("\n" + "\n".join(report.lines()))
