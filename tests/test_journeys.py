"""Journeys: waits, conditions, splits and exit rules, run day by day on both databases, with
the recipients a user would check: who got which message on which day, who left and why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from engine.campaigns import import_file
from engine.db import write_transaction
from engine.executor import run
from engine.models import Activity, Customer, JourneyWait, Message
from nodes.split import branch_of
from tests.conftest import Db
from tests.world import customer, effects, insert_world

ROOT = Path(__file__).resolve().parent.parent
MAIL = {"email": "x@example.com", "email_valid": True, "phone": "+27821234567",
        "phone_valid": True}
DUE = date(2026, 1, 5)
UNPAID = {"field": "invoice.paid", "op": "=", "value": False}


def unpaid_invoice(paid_at: date | None = None, due: date = DUE) -> dict[str, Any]:
    return {"due_date": due, "amount": Decimal("450.00"), "paid_at": paid_at}


DUNNING = {
    "key": "dunning", "name": "Dunning", "status": "active", "purpose": "service",
    "exit_when": {"field": "status", "op": "=", "value": "closed"},
    "graph": {
        "nodes": [
            {"id": "t", "type": "trigger", "config": {"kind": "invoice_due", "offset_days": 1}},
            {"id": "first", "type": "send-message", "config": {
                "channel": "email", "subject": "Overdue",
                "body": "Invoice {{ invoice.external_id }} is overdue."}},
            {"id": "w1", "type": "wait", "config": {"days": 7}},
            {"id": "c1", "type": "condition", "config": {"rules": UNPAID}},
            {"id": "sms", "type": "send-message", "config": {
                "channel": "sms", "body": "Still unpaid: {{ invoice.external_id }}"}},
            {"id": "w2", "type": "wait", "config": {"days": 7}},
            {"id": "c2", "type": "condition", "config": {"rules": UNPAID}},
            {"id": "collect", "type": "send-message", "config": {
                "channel": "email", "subject": "Collections",
                "body": "Invoice {{ invoice.external_id }} goes to collections."}},
        ],
        "edges": [["t", "first"], ["first", "w1"], ["w1", "c1"], ["c1", "sms", "yes"],
                  ["sms", "w2"], ["w2", "c2"], ["c2", "collect", "yes"]],
    },
}
PEOPLE = [
    customer("payer", **MAIL, invoices=[unpaid_invoice(paid_at=date(2026, 1, 10))]),
    customer("late", **MAIL, invoices=[unpaid_invoice()]),
    customer("midway", **MAIL, invoices=[unpaid_invoice(paid_at=date(2026, 1, 15))]),
    customer("closer", **MAIL, invoices=[unpaid_invoice()]),
    customer("early", **MAIL, invoices=[unpaid_invoice(paid_at=date(2026, 1, 5))]),
    customer("two", **MAIL, invoices=[unpaid_invoice(), unpaid_invoice(due=date(2026, 1, 8))]),
]


def load(db: Db, tmp_path: Path, *campaigns: dict[str, Any], segments: Any = ()) -> None:
    path = tmp_path / "journeys.json"
    path.write_text(json.dumps({"version": 2, "segments": list(segments),
                                "campaigns": list(campaigns)}))
    import_file(db.engine, path)


def run_days(db: Db, key: str, first: date, last: date) -> None:
    d = first
    while d <= last:
        result = run(db.engine, key, d, now=datetime.combine(d, datetime.min.time()))
        assert result.status == "completed", result.error
        d += timedelta(days=1)


def sent(db: Db, key: str = "dunning") -> list[tuple[str, str, str, str]]:
    """(customer, node, invoice, run date) of every message, in the order they were made."""
    from engine.models import Campaign, Invoice, Run

    with db.engine.connect() as conn:
        rows = conn.execute(
            select(Customer.external_id, Message.node_id, Invoice.external_id, Run.run_date)
            .join(Customer, Customer.id == Message.customer_id)
            .join(Invoice, Invoice.id == Message.invoice_id)
            .join(Run, Run.id == Message.run_id)
            .join(Campaign, Campaign.id == Message.campaign_id)
            .where(Campaign.key == key).order_by(Run.run_date, Message.node_id,
                                                 Customer.external_id, Invoice.external_id))
        return [(c, n, i, d.isoformat()) for c, n, i, d in rows]


@pytest.fixture
def dunning(db: Db, tmp_path: Path) -> Db:
    with write_transaction(db.engine) as conn:
        insert_world(conn, PEOPLE)
    load(db, tmp_path, DUNNING)
    return db


def close_account(db: Db, who: str) -> None:
    with write_transaction(db.engine) as conn:
        conn.execute(update(Customer).where(Customer.external_id == who).values(status="closed"))


EXPECTED = [
    ("closer", "first", "closer-0", "2026-01-06"),
    ("late", "first", "late-0", "2026-01-06"),
    ("midway", "first", "midway-0", "2026-01-06"),
    ("payer", "first", "payer-0", "2026-01-06"),
    ("two", "first", "two-0", "2026-01-06"),
    ("two", "first", "two-1", "2026-01-09"),
    # A week later, those still unpaid get the SMS: payer paid on the 10th, closer left.
    ("late", "sms", "late-0", "2026-01-13"),
    ("midway", "sms", "midway-0", "2026-01-13"),
    ("two", "sms", "two-0", "2026-01-13"),
    ("two", "sms", "two-1", "2026-01-16"),
    # Another week: midway paid on the 15th.
    ("late", "collect", "late-0", "2026-01-20"),
    ("two", "collect", "two-0", "2026-01-20"),
    ("two", "collect", "two-1", "2026-01-23"),
]


def test_the_dunning_sequence_over_thirty_days(dunning: Db) -> None:
    db = dunning
    run_days(db, "dunning", date(2026, 1, 1), date(2026, 1, 9))
    close_account(db, "closer")
    run_days(db, "dunning", date(2026, 1, 10), date(2026, 1, 30))
    assert sent(db) == EXPECTED
    # The SMS went out with the invoice's own number in it.
    with db.engine.connect() as conn:
        body = conn.execute(select(Message.body).where(Message.node_id == "sms")).scalars()
        assert list(body) == [None, None, None, None]  # rendered by the dispatcher, not the run
        exited = conn.execute(
            select(Customer.external_id, Activity.node_id, Activity.summary, Activity.details)
            .join(Customer, Customer.id == Activity.customer_id)
            .where(Activity.kind == "journey_exited")).all()
        waits = Counter(tuple(r) for r in conn.execute(
            select(JourneyWait.node_id, JourneyWait.status)))
    assert [(e[0], e[1]) for e in exited] == [("closer", "w1")]
    assert exited[0][2] == "Dunning: left the journey at the end of a wait (exit rules matched)"
    assert exited[0][3]["reason"] == "exit_when" and exited[0][3]["waited_since"] == "2026-01-06"
    # Every parked pair was released or left once: 6 invoices at w1, 4 reached w2.
    assert waits == {("w1", "released"): 5, ("w1", "exited"): 1, ("w2", "released"): 4}


def test_runs_count_parked_released_and_branches(dunning: Db) -> None:
    from engine.models import Run

    run_days(dunning, "dunning", date(2026, 1, 6), date(2026, 1, 13))
    with dunning.engine.connect() as conn:
        counts = {r.run_date: r.counts for r in conn.execute(select(Run.run_date, Run.counts))}
    assert counts[date(2026, 1, 6)]["w1"] == {"passed": 0, "parked": 5, "exited": 0,
                                              "released": 0}
    assert counts[date(2026, 1, 9)]["w1"] == {"passed": 0, "parked": 1, "exited": 0,
                                              "released": 0}
    assert counts[date(2026, 1, 13)]["w1"] == {"passed": 5, "parked": 0, "exited": 0,
                                               "released": 5}
    assert counts[date(2026, 1, 13)]["c1"] == {"passed": 5, "yes": 4, "no": 1}


def test_a_missed_day_releases_in_its_catch_up_and_reruns_add_nothing(dunning: Db) -> None:
    db = dunning
    run_days(db, "dunning", date(2026, 1, 6), date(2026, 1, 6))
    # Days 7-14 were never run (the worker was down); the catch-up runs them oldest first.
    run_days(db, "dunning", date(2026, 1, 7), date(2026, 1, 30))
    before = effects(db.engine)
    # Every date again: nothing is parked, released or sent twice.
    run_days(db, "dunning", date(2026, 1, 6), date(2026, 1, 30))
    assert effects(db.engine) == before
    assert {(c, n) for c, n, _i, _d in sent(db)} >= {("closer", "sms"), ("late", "collect")}


def test_a_release_date_run_late_still_releases_once(dunning: Db) -> None:
    db = dunning
    run_days(db, "dunning", date(2026, 1, 6), date(2026, 1, 6))
    # Nothing ran on the 13th; the 15th's run releases what was due on the 13th.
    run_days(db, "dunning", date(2026, 1, 15), date(2026, 1, 15))
    run_days(db, "dunning", date(2026, 1, 16), date(2026, 1, 16))
    got = [(c, i, d) for c, n, i, d in sent(db) if n == "sms"]
    # midway paid on the 15th itself: as of that run it has paid.
    assert got == [("closer", "closer-0", "2026-01-15"), ("late", "late-0", "2026-01-15"),
                   ("two", "two-0", "2026-01-15")]


def _nudgeflow(env: dict[str, str], *args: str, kill_at: int = 10**9
               ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.kill_at", str(kill_at), *args], cwd=ROOT, text=True,
        capture_output=True, env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, timeout=120)


@pytest.mark.slow
def test_a_release_killed_at_any_point_releases_once(dunning: Db, cli_env: dict[str, str],
                                                      nf) -> None:  # type: ignore[no-untyped-def]
    db = dunning
    run_days(db, "dunning", date(2026, 1, 6), date(2026, 1, 12))
    clean = _nudgeflow(cli_env, "run", "--date", "2026-01-13", "--campaign", "dunning")
    assert clean.returncode == 0, clean.stderr
    steps = int(clean.stderr.strip().rsplit("steps=", 1)[1])
    expected = effects(db.engine)
    assert expected["rows"][1] == 10  # 6 first emails and 4 SMS
    for point in sorted({1 + (i * (steps - 1)) // 11 for i in range(12)}):
        with write_transaction(db.engine) as conn:  # back to before the 13th
            from sqlalchemy import delete

            from engine.models import Run
            conn.execute(delete(Activity).where(Activity.node_id == "sms"))
            conn.execute(delete(Message).where(Message.node_id == "sms"))
            conn.execute(update(JourneyWait).values(status="waiting", ended_on=None,
                                                    ended_run_id=None))
            conn.execute(delete(Run).where(Run.run_date == date(2026, 1, 13)))
        killed = _nudgeflow(cli_env, "run", "--date", "2026-01-13", "--campaign", "dunning",
                            kill_at=point)
        assert killed.returncode == -9, (point, killed.stderr)
        rerun = nf("run", "--date", "2026-01-13", "--campaign", "dunning")
        assert rerun.code == 0, rerun.err
        assert effects(db.engine) == expected, f"killed before step {point} of {steps}"


SPLIT = {
    "key": "ab", "name": "A/B", "status": "active", "purpose": "service",
    "graph": {
        "nodes": [
            {"id": "t", "type": "trigger", "config": {"kind": "schedule", "every": "day"}},
            {"id": "sp", "type": "split", "config": {"branches": [
                {"name": "a", "percent": 20}, {"name": "b", "percent": 30},
                {"name": "c", "percent": 50}]}},
            {"id": "ma", "type": "send-message",
             "config": {"channel": "email", "subject": "A", "body": "A"}},
            {"id": "mb", "type": "send-message",
             "config": {"channel": "email", "subject": "B", "body": "B"}},
        ],
        "edges": [["t", "sp"], ["sp", "ma", "a"], ["sp", "mb", "b"]],
    },
}


def test_split_shares_are_stable_and_match_the_percents(db: Db, tmp_path: Path) -> None:
    people = 10_000
    with write_transaction(db.engine) as conn:
        conn.execute(insert(Customer), [{"external_id": f"C{i:05d}", "attributes": {},
                                         "email": "x@example.com", "email_valid": True}
                                        for i in range(people)])
    load(db, tmp_path, SPLIT)
    for d in (date(2026, 2, 1), date(2026, 2, 2)):
        result = run(db.engine, "ab", d)
        assert result.status == "completed", result.error
        share = {k: v / people for k, v in result.counts["sp"].items() if k != "passed"}
        assert abs(share["a"] - 0.2) <= 0.02 and abs(share["b"] - 0.3) <= 0.02
        assert abs(share["c"] - 0.5) <= 0.02
    with db.engine.connect() as conn:
        rows = conn.execute(select(Customer.external_id, Message.node_id, Message.occurrence)
                            .join(Customer, Customer.id == Message.customer_id)).all()
    by_day: dict[str, dict[str, str]] = {}
    for ext, node, occurrence in rows:
        by_day.setdefault(occurrence, {})[ext] = node
    # The same customers in the same branch every day, and the branch Python computes.
    assert by_day["2026-02-01"] == by_day["2026-02-02"]
    branches = SPLIT["graph"]["nodes"][1]["config"]["branches"]  # type: ignore[index]
    for ext in [f"C{i:05d}" for i in range(0, people, 97)]:
        want = branch_of(branches, "ab", "sp", ext)
        assert by_day["2026-02-01"].get(ext) == {"a": "ma", "b": "mb", "c": None}[want]
    # The preview counts the same branches and writes nothing.
    preview = run(db.engine, "ab", date(2026, 2, 3), dry_run=True)
    day_one = run(db.engine, "ab", date(2026, 2, 1), dry_run=True)
    assert preview.counts["sp"] == day_one.counts["sp"]


def dunning_with(mutate: Any, version: int = 2) -> dict[str, Any]:
    import copy

    campaign = copy.deepcopy(DUNNING)
    mutate(campaign)
    return {"version": version, "campaigns": [campaign]}


G = "$.campaigns[0].graph"


@pytest.mark.parametrize(("mutate", "version", "expected"), [
    (lambda c: c["graph"]["edges"].__setitem__(3, ["c1", "sms"]), 2,
     [f"{G}.edges[3]: an edge out of node 'c1' (Condition) needs the output it leaves from: "
      "'yes' or 'no'"]),
    (lambda c: c["graph"]["edges"].__setitem__(3, ["c1", "sms", "maybe"]), 2,
     [f"{G}.edges[3]: node 'c1' (Condition) has no output 'maybe' (expected 'yes' or 'no')"]),
    (lambda c: c["graph"]["edges"].__setitem__(0, ["t", "first", "yes"]), 2,
     [f"{G}.edges[0]: node 't' (Trigger) has a single output: an edge from it takes no label "
      "(got 'yes')"]),
    (lambda c: None, 1,
     [f"{G}.edges[3]: an edge with an output label needs a campaign file of \"version\": 2",
      f"{G}.edges[6]: an edge with an output label needs a campaign file of \"version\": 2"]),
    (lambda c: c["graph"]["nodes"][2].update(config={"days": 0}), 2,
     [f"{G}.nodes[2].config.days: node 'w1' (Wait): days: Must be greater than or equal to 1 "
      "and less than or equal to 365."]),
    (lambda c: c["graph"]["nodes"][3].update(config={}), 2,
     [f"{G}.nodes[3].config: node 'c1' (Condition): give either segment (a key) or inline "
      "rules, not both"]),
    (lambda c: c["graph"]["nodes"][0].update(config={"kind": "schedule", "every": "day"}), 2,
     [f"{G}.nodes[3].config.rules: node 'c1' (Condition): rules: invoice fields can be read "
      "only in a campaign whose trigger is invoice_due",
      f"{G}.nodes[6].config.rules: node 'c2' (Condition): rules: invoice fields can be read "
      "only in a campaign whose trigger is invoice_due",
      "$.campaigns[0].graph.nodes[1].config.body: node 'first' (Send message): body: reads "
      "invoice, which only a campaign triggered by invoice_due has",
      "$.campaigns[0].graph.nodes[4].config.body: node 'sms' (Send message): body: reads "
      "invoice, which only a campaign triggered by invoice_due has",
      "$.campaigns[0].graph.nodes[7].config.body: node 'collect' (Send message): body: reads "
      "invoice, which only a campaign triggered by invoice_due has"]),
    (lambda c: c.update(exit_when={"field": "invoice.colour", "op": "=", "value": "red"}), 2,
     [f"{G}.exit_when.field: unknown invoice field 'invoice.colour' (expected one of "
      "invoice.paid, invoice.days_past_due, invoice.amount, invoice.due_date, "
      "invoice.currency, invoice.external_id or invoice.attributes.NAME)"]),
])
def test_journey_errors_name_the_node_and_path(nf, tmp_path: Path, mutate: Any, version: int,
                                               expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "c.json"
    path.write_text(json.dumps(dunning_with(mutate, version)))
    result = nf("import", "campaigns", str(path))
    assert result.code == 2, result.out
    assert sorted(result.err.splitlines()[1:]) == sorted(expected)


def test_split_and_exit_errors(nf, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import copy

    bad = copy.deepcopy(SPLIT)
    bad["graph"]["nodes"][1]["config"]["branches"][2]["percent"] = 40  # type: ignore[index]
    bad["exit_when"] = {"field": "status", "op": "=", "value": "closed"}
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"version": 2, "campaigns": [bad]}))
    result = nf("import", "campaigns", str(path))
    assert result.code == 2
    assert sorted(result.err.splitlines()[1:]) == [
        "$.campaigns[0].graph.exit_when: exit_when applies when a customer's wait ends, and "
        "this campaign has no wait node",
        "$.campaigns[0].graph.nodes[1].config.branches: node 'sp' (Split): branches: the "
        "percents must add up to 100 (they add up to 90)"]


def test_version_1_files_import_and_export_writes_version_2(nf, db: Db, tmp_path: Path
                                                             ) -> None:  # type: ignore[no-untyped-def]
    from tests.campaign_docs import BIRTHDAY, document

    path = tmp_path / "v1.json"
    path.write_text(json.dumps(document(BIRTHDAY)))
    assert nf("import", "campaigns", str(path)).code == 0
    load(db, tmp_path, DUNNING)
    out = tmp_path / "out.json"
    assert nf("export", "-o", str(out)).code == 0
    doc = json.loads(out.read_text())
    assert doc["version"] == 2
    dunning = next(c for c in doc["campaigns"] if c["key"] == "dunning")
    assert ["c1", "sms", "yes"] in dunning["graph"]["edges"]
    assert dunning["graph"]["exit_when"] == DUNNING["exit_when"]
    # What export wrote imports again unchanged (no new version).
    assert nf("import", "campaigns", str(out)).code == 0


def explained(nf, *args: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    result = nf("explain", *args, "--json")
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["id"]: n for n in data["nodes"]}


def test_explain_names_where_each_customer_stopped(dunning: Db, nf) -> None:  # type: ignore[no-untyped-def]
    db = dunning
    run_days(db, "dunning", date(2026, 1, 1), date(2026, 1, 9))
    close_account(db, "closer")
    run_days(db, "dunning", date(2026, 1, 10), date(2026, 1, 19))
    before = effects(db.engine)
    # payer paid on the 10th: on the 13th the condition sent the invoice to "no".
    payer = explained(nf, "payer", "dunning", "--date", "2026-01-13")
    assert [n["id"] for n in payer["nodes"]] == ["t", "first", "w1", "c1", "sms", "w2", "c2",
                                                  "collect"]
    nodes = by_id(payer)
    assert nodes["t"]["reached"] and not nodes["t"]["passed"]
    assert nodes["t"]["reason"] == ("did not fire: no invoice of the customer due on "
                                    "2026-01-12 and unpaid on 2026-01-13")
    assert nodes["w1"]["passed"] and nodes["w1"]["reason"] == \
        "waited 7 days: released on 2026-01-13"
    assert nodes["c1"]["branch"] == "no"
    assert nodes["c1"]["detail"]["conditions"] == [
        {"path": "rules", "field": "invoice.paid", "op": "=", "value": False,
         "customer_value": True, "matched": False}]
    assert not nodes["sms"]["reached"] and nodes["sms"]["reason"].startswith("not reached")
    # late's first email exists from the run of the 6th: "already done in run R".
    late = by_id(explained(nf, "late", "dunning", "--date", "2026-01-06"))
    (first,) = late["first"]["effects"]
    assert late["first"]["reason"] == f"already done in run {first['run_id']}: queued"
    assert late["w1"]["waiting_until"] == "2026-01-13"
    # On the 13th, late was sent on to yes and the SMS exists.
    late13 = by_id(explained(nf, "late", "dunning", "--date", "2026-01-13"))
    assert late13["c1"]["branch"] == "yes" and late13["sms"]["passed"]
    assert late13["w2"]["waiting_until"] == "2026-01-20"
    # closer left at w1 when its wait ended.
    closer = by_id(explained(nf, "closer", "dunning", "--date", "2026-01-13"))
    assert closer["w1"]["reason"] == "left the journey here: the campaign's exit rules matched"
    assert not closer["c1"]["reached"]
    # A day still ahead: midway waits at w2 until the 20th.
    midway = by_id(explained(nf, "midway", "dunning", "--date", "2026-01-16"))
    assert midway["w2"]["waiting_until"] == "2026-01-20"
    # Explaining wrote nothing.
    assert effects(db.engine) == before
    # The words, for a person.
    text = nf("explain", "payer", "dunning", "--date", "2026-01-13")
    assert text.code == 0
    assert "  > c1 (Condition): the rules did not match: on to no" in text.out.splitlines()


def test_explain_skips_splits_and_unknowns(db: Db, tmp_path: Path, nf) -> None:  # type: ignore[no-untyped-def]
    with write_transaction(db.engine) as conn:
        insert_world(conn, [customer("optout", email="o@example.com", email_valid=True,
                                     email_opt_out=True),
                            customer("fine", email="f@example.com", email_valid=True)])
    load(db, tmp_path, SPLIT)
    branches = SPLIT["graph"]["nodes"][1]["config"]["branches"]  # type: ignore[index]
    for who in ("optout", "fine"):
        nodes = by_id(explained(nf, who, "ab", "--date", "2026-02-01"))
        want = branch_of(branches, "ab", "sp", who)
        assert nodes["sp"]["branch"] == want
        target = {"a": "ma", "b": "mb"}.get(want)
        if target:
            assert nodes[target]["reached"]
            assert nodes[target]["reason"] == ("would be skipped: opted out of this channel"
                                               if who == "optout" else "would be queued")
    bad = nf("explain", "nobody", "ab", "--date", "2026-02-01")
    assert bad.code != 0 and bad.err == "error: no customer 'nobody'\n"
    bad = nf("explain", "fine", "nothing", "--date", "2026-02-01")
    assert bad.code != 0 and bad.err == "error: no campaign 'nothing'\n"


def test_explain_on_the_api_and_the_customer_page(dunning: Db, app) -> None:  # type: ignore[no-untyped-def]
    from tests.webapp import session_client, token_for

    run_days(dunning, "dunning", date(2026, 1, 6), date(2026, 1, 13))
    client, viewer = app.test_client(), token_for(dunning, "viewer")
    answer = client.get("/api/v1/customers/payer/explain",
                        query_string={"campaign": "dunning", "date": "2026-01-13"},
                        headers=viewer)
    assert answer.status_code == 200, answer.json
    nodes = by_id(answer.json)
    assert nodes["c1"]["branch"] == "no" and not nodes["sms"]["reached"]
    for query, status in (({"campaign": "nothing", "date": "2026-01-13"}, 404),
                          ({"date": "2026-01-13"}, 400),
                          ({"campaign": "dunning", "date": "9999-12-31"}, 400)):
        bad = client.get("/api/v1/customers/payer/explain", query_string=query, headers=viewer)
        assert bad.status_code == status, (query, bad.json)
        assert "error" in bad.json
    assert client.get("/api/v1/customers/nobody/explain", query_string={
        "campaign": "dunning"}, headers=viewer).status_code == 404
    assert client.get("/api/v1/customers/payer/explain",
                      query_string={"campaign": "dunning"}).status_code == 401
    # The panel on the customer page: the same explanation, escaped, writing nothing.
    page_client, _csrf = session_client(app, "viewer")
    page = page_client.get("/customers/payer",
                           query_string={"explain": "dunning", "on": "2026-01-13"})
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    panel = text[text.index('id="explain"'):text.index('id="timeline"')]
    assert "dunning</code> v1 on 2026-01-13" in panel
    assert "branch <strong>no</strong>" in panel
    assert "<code>invoice.paid = false</code>: the customer's true" in panel
    assert "waited 7 days: released on 2026-01-13" in panel
    # Without a campaign chosen the panel only offers the form.
    plain = page_client.get("/customers/payer").get_data(as_text=True)
    assert "node by node" not in plain


def test_a_version_without_the_wait_lets_its_waiting_customers_go(dunning: Db,
                                                                   tmp_path: Path) -> None:
    import copy

    run_days(dunning, "dunning", date(2026, 1, 6), date(2026, 1, 8))
    shorter = copy.deepcopy(DUNNING)  # version 2: no second stage, no first wait
    graph = shorter["graph"]
    graph["nodes"] = [n for n in graph["nodes"] if n["id"] in ("t", "first")]  # type: ignore[index]
    graph["edges"] = [["t", "first"]]  # type: ignore[index]
    del shorter["exit_when"]
    load(dunning, tmp_path, shorter)
    with dunning.engine.connect() as conn:
        waits = {tuple(r) for r in conn.execute(select(JourneyWait.node_id,
                                                       JourneyWait.status).distinct())}
        left = conn.execute(select(Customer.external_id, Activity.summary, Activity.details)
                            .join(Customer, Customer.id == Activity.customer_id)
                            .where(Activity.kind == "journey_exited")
                            .order_by(Customer.external_id)).all()
    assert waits == {("w1", "exited")}
    assert [r[0] for r in left] == ["closer", "late", "midway", "payer", "two"]
    assert left[0][1] == ("left the journey: version 2 of the campaign no longer has the "
                          "wait this customer was at")
    assert left[0][2]["reason"] == "wait_removed" and left[0][2]["version"] == 2
    # Nothing is released later, and no SMS is sent.
    run_days(dunning, "dunning", date(2026, 1, 9), date(2026, 1, 20))
    assert {n for _c, n, _i, _d in sent(dunning)} == {"first"}
