"""The README's tour, run as written: each line of its ```sh block is a real process, in a fresh
folder holding what the README says it needs (samples/, campaigns.example.json, .venv), on
SQLite (the default ./nudgeflow.db) and on PostgreSQL (NUDGEFLOW_DATABASE_URL)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import Db

ROOT = Path(__file__).resolve().parent.parent
LONG_RUNNING = ("nudgeflow worker", "nudgeflow serve")
STDIN = {"nudgeflow user create": "a long enough password\n"}


def tour_lines() -> list[str]:
    """The commands of the ```sh block under "## A short tour", comments dropped."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## A short tour"):]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "README: no ```sh block under 'A short tour'"
    lines = [re.sub(r"\s+#\s.*$", "", line).strip() for line in block[1].splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def tour_folder(tmp_path: Path) -> Path:
    """A fresh folder with what the tour reads: the samples, the example campaigns and .venv."""
    folder = tmp_path / "tour"
    folder.mkdir()
    shutil.copytree(ROOT / "samples", folder / "samples")
    shutil.copy(ROOT / "campaigns.example.json", folder)
    (folder / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return folder


def tour_env(db: Db) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUDGEFLOW_")}
    env["PATH"] = f"{Path(sys.prefix) / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    if db.dialect == "postgresql":
        env["NUDGEFLOW_DATABASE_URL"] = db.url
    return env


def test_the_readme_tour_runs_as_written(empty_db: Db, tmp_path: Path) -> None:
    folder, env = tour_folder(tmp_path), tour_env(empty_db)
    lines = tour_lines()
    assert lines[:2] == [". .venv/bin/activate", "nudgeflow init"]  # from a fresh folder
    out: dict[str, str] = {}
    for line in lines:
        if line.startswith(LONG_RUNNING):
            continue
        stdin = next((text for cmd, text in STDIN.items() if line.startswith(cmd)), "")
        done = subprocess.run(["sh", "-c", line], cwd=folder, env=env, input=stdin,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr, line
        out[line] = done.stdout
    assert {line for line in lines if line.startswith(LONG_RUNNING)} == {
        "nudgeflow worker", "nudgeflow serve --host 127.0.0.1 --port 8080",
        "nudgeflow serve --workers 4 --port 8080"}

    assert out["nudgeflow import customers samples/customers.csv"] == (
        "customers: 9 rows, 9 inserted, 0 updated; warnings: 1 invalid email, 1 invalid phone, "
        "8 phones had no country code and were read as ZA numbers\n")
    assert out["nudgeflow import invoices samples/invoices.csv"] == (
        "invoices: 7 rows, 7 inserted, 0 updated\n")
    assert out["nudgeflow import campaigns campaigns.example.json"] == (
        "4 segments, 8 templates, 6 campaigns imported\n")
    assert json.loads((folder / "campaigns.json").read_text())["version"] == 2
    preview = out["nudgeflow segment preview --key past-due-30 --date 2026-11-23"]
    assert preview == ("2 customers as of 2026-11-23\n  S0002 Thabo Nkosi\n"
                       "  S0008 Johan Botha\n")
    blast = next(v for k, v in out.items() if k.startswith("nudgeflow blast "))
    assert blast == ("dry run, nothing written: 2 listed; 2 in the data set as of 2026-11-23; "
                     "queued 1, skipped: opted out of this channel 1\n")
    # The dry run and the real run count the same; only the real one writes.
    dry = out["nudgeflow run --date 2026-11-23 --dry-run"]
    real = out["nudgeflow run --date 2026-11-23"]
    assert "birthday-bonus 2026-11-23 completed (dry run)\n  t: passed 5\n  s: passed 4\n" in dry
    assert ('birthday-bonus 2026-11-23 completed (attempt 1)\n  t: passed 5\n  s: passed 4\n'
            '  a: passed 4, awarded 4\n  m: passed 4, queued 2, created 4, '
            'skipped: address is not valid 1, no marketing consent 1\n') in real
    assert ("past-due-blast 2026-11-23 completed (attempt 1)\n  t: passed 9\n  s: passed 2\n"
            in real)
    runs = out["nudgeflow runs"]
    assert re.findall(r"^#(\d+) 2026-11-23 (\S+) v1 completed$", runs, re.M) == [
        ("5", "policy-expiry"), ("4", "past-due-blast"), ("3", "installment-reminder"),
        ("2", "dunning"), ("1", "birthday-bonus")]
    assert "  m: passed 2, queued 2, created 2" in runs
    # Aimee's activity, newest first: her installment reminder, her birthday SMS, her points.
    activity = out["nudgeflow activity S0001"].splitlines()
    assert [line.split()[1] for line in activity] == [
        "message_queued", "message_queued", "bonus_awarded"]
    assert "installment-reminder: SMS queued (installment-sms)" in activity[0]
    assert "birthday-bonus: Awarded 100 points: Birthday bonus, valid until 2026-12-23" \
        in activity[2]
    assert out["nudgeflow explain S0004 past-due-blast --date 2026-11-23"].splitlines()[1:] == [
        "  + t (Trigger): fired (schedule): 2026-11-23",
        "  x s (Segment select): not in segment 'past-due-30': Has a valid email = true does "
        "not hold (the customer's: false)",
        "    m (Send message): not reached: no earlier node passed the customer on to it"]
    assert out["nudgeflow balance S0001"].splitlines()[1].split()[:3] == [
        "2026-11-23", "accrual", "100"]
    # Five SMS were due and went to ./outbox/; the past-due email waits for its delay ...
    assert out["nudgeflow dispatch --once"].startswith("claimed 5, sent 5,")
    sent = sorted((folder / "outbox" / "sms").glob("*.txt"))
    assert len(sent) == 5 and not (folder / "outbox" / "email").exists()
    texts = "\n".join(p.read_text(encoding="utf-8") for p in sent)
    assert "Happy birthday Aimee! 100 points are waiting for you until 2026-12-23." in texts
    assert "Reminder: invoice S-INV-1001 for 450.00 ZAR is due on 2026-11-26." in texts
    # Naledi's policy ends on 30 November: the once-date reminder, 7 days before.
    assert ("Naledi, your policy POL-77120 ends on 2026-11-30. Renew before then to stay "
            "covered.") in texts
    # ... so the STOP button still catches it.
    assert out["nudgeflow messages cancel --campaign past-due-blast"].startswith(
        "1 message(s) cancelled, 0 already on their way")
    assert out["nudgeflow role create analyst --permissions view,data.export"] == \
        "role analyst created: view, data.export\n"
    assert out["nudgeflow role list"].splitlines()[-1] == \
        "analyst (custom, 0 user(s)): view, data.export"
    # The reports: the five SMS sent (one part each), the skipped and the cancelled email ...
    report = out["nudgeflow report messages --by campaign,channel,status"].splitlines()
    assert report[0].split() == ["campaign", "channel", "status", "messages", "sms_parts",
                                 "credits"]
    assert ["past-due-blast", "email", "cancelled", "1", "0", "0"] in [
        line.split() for line in report]
    assert report[-1] == "total: 9 messages, 5 SMS parts, 5 credits (days in UTC)"
    # ... and the birthday points, found by their description.
    points = out["nudgeflow report points --description birthday"].splitlines()
    assert points[-1].startswith("total: 4 movements, net 400 points; accrual 400 (4)")
    assert out["nudgeflow user create ana --role marketer"] == "user ana created (marketer)\n"
    assert out["nudgeflow token create --user ana"].splitlines()[-1].startswith("nf_")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_listens_on_the_host_and_port_it_is_given(db: Db, tmp_path: Path) -> None:
    folder, env = tour_folder(tmp_path), tour_env(db)
    if db.dialect == "sqlite":
        env["NUDGEFLOW_DATABASE_URL"] = db.url
    port, log = free_port(), tmp_path / "serve.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            ["nudgeflow", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=folder, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline, status = time.monotonic() + 60, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(0.3)
        assert status == 200, log.read_text()
    finally:
        server.terminate()
        server.wait(timeout=30)
