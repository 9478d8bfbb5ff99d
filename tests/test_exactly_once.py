"""Exactly once: a run killed at any point and re-run, and two processes running the same
campaign and date at once, each end with the effects of one clean run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import delete, insert

from engine.campaigns import import_file
from engine.db import write_transaction
from engine.models import Activity, BonusLedger, Customer, Message, Run, birth_mmdd
from tests.campaign_docs import BIRTHDAY, MONTHLY, REMINDER, document
from tests.conftest import Db
from tests.world import customer, effects, insert_world

ROOT = Path(__file__).resolve().parent.parent
D = "2025-07-31"
PHONE = {"phone": "+27821234567", "phone_valid": True, "marketing_consent": True}


def _load_campaigns(db: Db, tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(document(BIRTHDAY, REMINDER, MONTHLY)))
    import_file(db.engine, path)


def _clear_effects(db: Db) -> None:
    with write_transaction(db.engine) as conn:
        for model in (Activity, Message, BonusLedger, Run):
            conn.execute(delete(model))


def _nudgeflow(env: dict[str, str], *args: str, kill_at: int = 10**9) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.kill_at", str(kill_at), *args], cwd=ROOT, text=True,
        capture_output=True, env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, timeout=120)


@pytest.mark.slow
def test_killed_at_every_point_then_rerun(db: Db, tmp_path: Path, cli_env: dict[str, str],
                                         nf) -> None:  # type: ignore[no-untyped-def]
    with write_transaction(db.engine) as conn:
        insert_world(conn, [
            customer("b1", birth_date=date(1990, 7, 31), registered_at=date(2020, 1, 1), **PHONE),
            customer("b2", birth_date=date(1991, 7, 31), registered_at=date(2020, 1, 1),
                     sms_opt_out=True, **PHONE),
            customer("d1", email="d@example.com", email_valid=True, invoices=[
                {"due_date": date(2025, 8, 3), "amount": Decimal(10), "paid_at": None},
                {"due_date": date(2025, 8, 3), "amount": Decimal(20), "paid_at": None}]),
        ])
    _load_campaigns(db, tmp_path)
    clean = _nudgeflow(cli_env, "run", "--date", D)
    assert clean.returncode == 0, clean.stderr
    steps = int(clean.stderr.strip().rsplit("steps=", 1)[1])
    expected = effects(db.engine)
    # 3 campaigns: birthday (award + SMS for b1, skipped SMS for b2), 2 reminders, month end.
    assert expected["rows"] == (2, 7, 9)
    assert steps >= 20
    points = sorted({1 + (i * (steps - 1)) // 23 for i in range(24)})
    assert len(points) >= 20
    for point in points:
        _clear_effects(db)
        killed = _nudgeflow(cli_env, "run", "--date", D, kill_at=point)
        assert killed.returncode == -9, (point, killed.stderr)
        rerun = nf("run", "--date", D)
        assert rerun.code == 0, rerun.err
        assert effects(db.engine) == expected, f"killed before step {point} of {steps}"


def test_two_processes_at_once(db: Db, tmp_path: Path, cli_env: dict[str, str]) -> None:
    people = 3000
    rows = [{"external_id": f"C{i}", "birth_date": date(1980 + i % 30, 7, 31),
             "birth_mmdd": birth_mmdd(date(1980, 7, 31)), "registered_at": date(2020, 1, 1),
             "phone": "+27821234567", "phone_valid": True, "marketing_consent": True,
             "attributes": {}} for i in range(people)]
    with write_transaction(db.engine) as conn:
        conn.execute(insert(Customer), rows)
    _load_campaigns(db, tmp_path)
    env = {**os.environ, **cli_env, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "engine", "run", "--date", D,
           "--campaign", "birthday-bonus"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        _out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    got = effects(db.engine)
    assert got["rows"] == (people, people, 2 * people)
    assert len(got["ledger"]) == len(got["messages"]) == people  # one per customer
