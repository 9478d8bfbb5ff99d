"""Campaign validation: every error names the node and the JSON path."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.models import Campaign, CampaignVersion
from nodes import RegistryError, build_registry, node_class
from nodes.triggers import Trigger
from tests.campaign_docs import BIRTHDAY, document
from tests.conftest import Db


def problems_for(nf, tmp_path: Path, doc: dict[str, Any]) -> list[str]:  # type: ignore[no-untyped-def]
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    result = nf("import", "campaigns", str(path))
    assert result.code == 2, result.out
    lines = result.err.splitlines()
    assert lines[0] == "error: invalid campaign file"
    return lines[1:]


def birthday(mutate) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    campaign = copy.deepcopy(BIRTHDAY)
    mutate(campaign["graph"])
    return document(campaign)


G = "$.campaigns[0].graph"


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda g: g["edges"].remove(["s", "a"]),
     [f"{G}.nodes[2]: node 'a' (Award bonus): not connected to the trigger",
      f"{G}.nodes[3]: node 'm' (Send message): not connected to the trigger"]),
    (lambda g: g["edges"].append(["m", "s"]),
     [f"{G}.edges: the graph has a cycle: 's' -> 'a' -> 'm' -> 's'"]),
    (lambda g: g["nodes"].append({"id": "t2", "type": "trigger", "config": {"kind": "manual"}}),
     [f"{G}.nodes: a campaign needs exactly one trigger node (found 't', 't2')"]),
    (lambda g: g["nodes"].pop(0) and g.update(edges=[["s", "a"], ["a", "m"]]),
     [f"{G}.nodes: a campaign needs exactly one trigger node (found none)"]),
    (lambda g: g["edges"].append(["a", "zz"]),
     [f"{G}.edges[3][1]: edge to unknown node 'zz'"]),
    (lambda g: g["nodes"].append({"id": "s", "type": "segment-select",
                                  "config": {"segment": "member-1y"}}),
     [f"{G}.nodes[4].id: node 's' (Segment select): duplicate node id"]),
    (lambda g: g["nodes"][1]["config"].update(segment="member-2y"),
     [f"{G}.nodes[1].config.segment: node 's' (Segment select): segment: unknown segment "
      "'member-2y'"]),
    (lambda g: g["nodes"][3]["config"].update(template="nope"),
     [f"{G}.nodes[3].config.template: node 'm' (Send message): template: unknown template "
      "'nope'"]),
    (lambda g: g["nodes"][2]["config"].update(amount=0),
     [f"{G}.nodes[2].config.amount: node 'a' (Award bonus): amount: Must be greater than or "
      "equal to 1 and less than or equal to 2147483647."]),
    (lambda g: g["nodes"][2]["config"].update(amount=2.5),
     [f"{G}.nodes[2].config.amount: node 'a' (Award bonus): amount: Not a valid integer."]),
    (lambda g: g["nodes"][3]["config"].update(send_at={"mode": "datetime",
                                                       "value": "2099-01-01T09:00:00+00:00"}),
     [f"{G}.nodes[3].config.send_at.value: node 'm' (Send message): send_at.value: at most "
      "14 days ahead"]),
    (lambda g: g["nodes"][0]["config"].update(kind="date", field="first_name"),
     [f"{G}.nodes[0].config.field: node 't' (Trigger): field: expected birth_date, "
      "registered_at or attributes.NAME (an imported column holding YYYY-MM-DD dates), not "
      "'first_name'"]),
    (lambda g: g["nodes"][0]["config"].update(kind="date", field="attributes.a b"),
     [f"{G}.nodes[0].config.field: node 't' (Trigger): field: expected birth_date, "
      "registered_at or attributes.NAME (an imported column holding YYYY-MM-DD dates), not "
      "'attributes.a b'"]),
    # A weekly schedule names its days: no silent Monday, with the days missing or none ticked.
    (lambda g: g["nodes"][0].update(config={"kind": "schedule", "every": "week"}),
     [f"{G}.nodes[0].config.weekdays: node 't' (Trigger): weekdays: required when every is "
      'week: pick the days it runs on, e.g. ["mon", "thu"]']),
    (lambda g: g["nodes"][0].update(config={"kind": "schedule", "every": "week", "weekdays": []}),
     [f"{G}.nodes[0].config.weekdays: node 't' (Trigger): weekdays: required when every is "
      'week: pick the days it runs on, e.g. ["mon", "thu"]']),
    (lambda g: g["nodes"][3]["config"].update(template=""),
     [f"{G}.nodes[3].config.template: node 'm' (Send message): template: required: choose a "
      "template"]),
    (lambda g: g["nodes"][3].update(config={"channel": "sms", "body": ""}),
     [f"{G}.nodes[3].config.body: node 'm' (Send message): body: must not be empty"]),
    (lambda g: g["nodes"][3].update(config={"channel": "sms"}),
     [f"{G}.nodes[3].config.body: node 'm' (Send message): body: required for a message "
      "written here (or give a template key)"]),
    (lambda g: g["nodes"][1].update(type="loop"),
     [f"{G}.nodes[1].type: Must be one of: award-bonus, condition, segment-select, "
      "send-message, split, trigger, wait."]),
    (lambda g: g["nodes"][1]["config"].update(rules={"field": "x", "op": "=", "value": 1}),
     [f"{G}.nodes[1].config: node 's' (Segment select): give either segment (a key) or "
      "inline rules, not both"]),
])
def test_graph_errors(nf, tmp_path: Path, mutate, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert problems_for(nf, tmp_path, birthday(mutate)) == expected


def test_inline_rules_errors_carry_the_node(nf, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def inline(g: dict[str, Any]) -> None:
        g["nodes"][1]["config"] = {"rules": {"all": [{"field": "age", "op": ">=", "value": "x"}]}}

    assert problems_for(nf, tmp_path, birthday(inline)) == [
        f"{G}.nodes[1].config.rules.all[0].value: node 's' (Segment select): rules.all[0].value: "
        "expected a whole number for age, got 'x'"]


def test_file_level_errors(nf, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    doc = document(BIRTHDAY)
    doc["version"] = 3
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    result = nf("import", "campaigns", str(path))
    assert result.code == 2
    assert "$.version: this nudgeflow reads campaign files of version 1 and 2; got 3" in result.err
    path.write_text("{not json")
    assert "invalid JSON" in nf("import", "campaigns", str(path)).err


def test_a_bad_file_changes_nothing_and_saves_make_versions(nf, db: Db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = birthday(lambda g: g["edges"].clear())
    problems_for(nf, tmp_path, bad)
    with db.engine.connect() as conn:
        assert conn.execute(select(Campaign.key)).all() == []
    path = tmp_path / "good.json"
    path.write_text(json.dumps(document(BIRTHDAY)))
    assert nf("import", "campaigns", str(path)).code == 0
    assert nf("import", "campaigns", str(path)).code == 0  # unchanged: no new version
    changed = birthday(lambda g: g["nodes"][2]["config"].update(amount=150))
    path.write_text(json.dumps(changed))
    assert nf("import", "campaigns", str(path)).code == 0
    with db.engine.connect() as conn:
        assert conn.execute(select(Campaign.version)).scalar_one() == 2
        versions = conn.execute(select(CampaignVersion.version, CampaignVersion.graph)
                                .order_by(CampaignVersion.version)).all()
    assert [v for v, _ in versions] == [1, 2]
    assert [g["nodes"][2]["config"]["amount"] for _, g in versions] == [100, 150]


def test_example_file_is_valid(nf) -> None:  # type: ignore[no-untyped-def]
    result = nf("import", "campaigns", "campaigns.example.json")
    assert result.code == 0, result.err
    assert result.out == "4 segments, 8 templates, 6 campaigns imported\n"


def test_registry_rejects_unknown_and_duplicate_types() -> None:
    with pytest.raises(RegistryError, match="unknown node type 'loop' \\(expected one of "
                       "award-bonus, condition, recipients, segment-select, send-message, split, "
                       "trigger, wait\\)"):
        node_class("loop")
    with pytest.raises(RegistryError, match="node type 'trigger' registered twice"):
        build_registry(Trigger, Trigger)


def test_export_round_trips_through_import(nf, db: Db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert nf("import", "campaigns", "campaigns.example.json").code == 0
    out = tmp_path / "export.json"
    assert nf("export", "--output", str(out)).out == f"exported to {out}\n"
    exported = json.loads(out.read_text())
    original = json.loads(Path("campaigns.example.json").read_text())
    assert [c["key"] for c in exported["campaigns"]] == sorted(
        c["key"] for c in original["campaigns"])
    by_key = {c["key"]: c for c in exported["campaigns"]}
    assert by_key["birthday-bonus"]["graph"]["nodes"][2]["config"] == {
        "amount": 100, "lifetime_days": 30, "legal_entity": "Main",
        "description": "Birthday bonus"}
    # Importing the export changes nothing: no new versions.
    assert nf("import", "campaigns", str(out)).code == 0
    with db.engine.connect() as conn:
        assert set(conn.execute(select(Campaign.version)).scalars()) == {1}
    assert json.loads(nf("export").out) == exported
