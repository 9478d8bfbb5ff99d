"""Journeys in the editor, in a real browser: the dunning sequence built by drag and drop (wait,
condition, labelled edges from the yes dot), saved, reloaded and previewed a week on; and a split
whose branches are dots, each with its label, summed before the server sums them."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import insert, select

from engine.db import write_transaction
from engine.models import Campaign, Customer, Invoice
from tests.browser.conftest import TODAY, Site, log_in, node, screenshot
from tests.browser.test_editor import drop

pytestmark = pytest.mark.browser

UNPAID = {"all": [{"field": "invoice.paid", "op": "=", "value": False}]}
PAID = {"all": [{"field": "invoice.paid", "op": "=", "value": True}]}


def connect(page: Any, source: str, target: str, branch: str | None = None) -> None:
    """Drag from the source's output dot (its branch's, if named) to the target's input dot."""
    dot = f".output[data-branch='{branch}']" if branch else ".output_1"
    out = node(page, source).locator(dot).bounding_box()
    into = node(page, target).locator(".input_1").bounding_box()
    page.mouse.move(out["x"] + out["width"] / 2, out["y"] + out["height"] / 2)
    page.mouse.down()
    page.mouse.move(into["x"] + into["width"] / 2, into["y"] + into["height"] / 2, steps=8)
    page.mouse.up()


def saved_graph(site: Site, key: str) -> dict[str, Any]:
    with site.db.engine.connect() as conn:
        graph: dict[str, Any] = conn.execute(
            select(Campaign.graph).where(Campaign.key == key)).scalar_one()
    return graph


def dots(page: Any, nid: str) -> list[str | None]:
    return node(page, nid).locator(".outputs .output").evaluate_all(
        "dots => dots.map((d) => d.dataset.label || null)")


def inline_message(page: Any, channel: str, body: str) -> None:
    panel = page.locator("#panel")
    panel.get_by_label("Content").select_option("inline")
    panel.get_by_label("Channel").select_option(channel)
    if channel == "email":
        panel.get_by_label("Subject").fill("Your invoice")
    panel.get_by_label("Body").fill(body)


def condition_unpaid(page: Any) -> None:
    panel = page.locator("#panel")
    panel.get_by_label("Yes for customers in").select_option("rules")
    panel.get_by_label("Rules").fill(json.dumps(UNPAID))


def test_build_the_dunning_sequence(page: Any, site: Site) -> None:
    with write_transaction(site.db.engine) as conn:   # Ana's invoice fell due yesterday
        ana = conn.execute(select(Customer.id).where(Customer.external_id == "C1")).scalar_one()
        conn.execute(insert(Invoice).values(external_id="INV-1", customer_id=ana,
                                            amount=Decimal("120.00"), currency="ZAR",
                                            due_date=TODAY - timedelta(days=1)))
    log_in(page, site)
    page.goto(f"{site.url}/campaigns/new")
    panel = page.locator("#panel")
    panel.get_by_label("Name").fill("Dunning")
    panel.get_by_label("Key (used in URLs and files)").fill("dunning")
    panel.get_by_label("Purpose").select_option("service")

    drop(page, "trigger", 105, 70)
    panel.get_by_label("Fires").select_option("invoice_due")
    panel.get_by_label("Offset in days (negative = before)").fill("1")
    drop(page, "send-message", 290, 200)
    inline_message(page, "email", "Your invoice is due.")
    drop(page, "wait", 475, 70)
    expect(page.locator("#panel-title")).to_have_text("Wait")
    panel.get_by_label("Days to wait (1-365)").fill("7")
    drop(page, "condition", 640, 200)
    condition_unpaid(page)
    assert dots(page, "condition1") == ["yes", "no"]
    drop(page, "send-message", 105, 360)
    inline_message(page, "sms", "Your invoice is still open.")
    drop(page, "wait", 290, 490)
    drop(page, "condition", 475, 360)
    condition_unpaid(page)
    drop(page, "send-message", 640, 490)
    inline_message(page, "email", "Last reminder.")

    for source, target, branch in (("trigger1", "message1", None), ("message1", "wait1", None),
                                   ("wait1", "condition1", None), ("condition1", "message2", "yes"),
                                   ("message2", "wait2", None), ("wait2", "condition2", None),
                                   ("condition2", "message3", "yes")):
        connect(page, source, target, branch)
    expect(page.locator(".drawflow .connection")).to_have_count(7)
    expect(node(page, "wait1").locator(".nf-summary")).to_have_text("7 days, then on")
    expect(node(page, "condition1").locator(".nf-summary")).to_have_text("yes if the inline rules match")

    # Exit rules on the campaign: a wrong field is marked there, then fixed.
    expect(page.locator("#panel-title")).to_have_text("Campaign")   # drawing lines unselects
    exit_rules = panel.get_by_label("Leave the journey when (rules, JSON; empty = never)")
    exit_rules.fill(json.dumps({"all": [{"field": "invoice.settled", "op": "=", "value": True}]}))
    page.get_by_role("button", name="Save").click()
    expect(panel.locator(".field-error")).to_contain_text("invoice.settled")
    expect(page.locator("#editor-messages .form-error")).to_have_text(
        "invalid campaign; see the marked fields.")
    exit_rules.fill(json.dumps(PAID))
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#editor-messages .form-done")).to_have_text("Saved as version 1.")
    graph = saved_graph(site, "dunning")
    assert graph["exit_when"] == PAID
    assert sorted(graph["edges"]) == [
        ["condition1", "message2", "yes"], ["condition2", "message3", "yes"],
        ["message1", "wait1"], ["message2", "wait2"], ["trigger1", "message1"],
        ["wait1", "condition1"], ["wait2", "condition2"]]
    configs = {n["id"]: n["config"] for n in graph["nodes"]}
    assert configs["wait1"] == configs["wait2"] == {"days": 7}
    assert configs["condition1"]["rules"] == UNPAID

    # Reloaded, each labelled edge leaves from its dot, and the same graph saves as no change.
    page.reload()
    condition = node(page, "condition1").get_attribute("id")
    expect(page.locator(f".connection.node_out_{condition}.output_1")).to_have_count(1)
    expect(page.locator(f".connection.node_out_{condition}.output_2")).to_have_count(0)
    node(page, "condition1").locator(".nf-title").click()
    expect(panel.locator(".branch[data-branch='yes'] li")).to_contain_text("→ Send message (message2)")
    expect(panel.locator(".branch[data-branch='no']")).to_contain_text("nothing yet")
    expect(page.locator("#panel-title")).to_have_text("Condition (condition1)")
    page.locator("#panel").get_by_role("button", name="Back to the campaign").click()
    expect(panel.get_by_label("Leave the journey when (rules, JSON; empty = never)")).to_have_value(
        json.dumps(PAID, indent=2))
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#editor-messages .form-done")).to_have_text("No changes: still version 1.")

    # Run today (Ana is emailed, then waits), then preview a week on: she is released, her
    # invoice is still unpaid, so the SMS goes and she waits again.
    page.get_by_role("button", name="Activate").click()
    expect(page.locator("#campaign-status")).to_have_text("active")
    page.get_by_label("For date").fill(TODAY.isoformat())
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#editor-messages .form-done")).to_contain_text("completed")
    expect(node(page, "wait1").locator(".nf-counts")).to_contain_text("parked 1")

    later = (TODAY + timedelta(days=7)).isoformat()
    page.get_by_label("For date").fill(later)
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#editor-messages .form-done")).to_contain_text(f"Preview for {later}")
    expect(node(page, "wait1").locator(".nf-counts")).to_contain_text("released 1")
    expect(node(page, "condition1").locator(".nf-counts")).to_contain_text("passed 1 · yes 1 · no 0")
    assert dots(page, "condition1") == ["yes 1", "no 0"]
    expect(node(page, "message2").locator(".nf-counts")).to_contain_text("queued 1")
    expect(node(page, "wait2").locator(".nf-counts")).to_contain_text("parked 1")
    expect(node(page, "condition2").locator(".nf-counts")).to_contain_text("yes 0 · no 0")
    print("journey screenshot:", screenshot(page, "editor-dunning-journey"))


def test_a_split_with_three_branches(page: Any, site: Site) -> None:
    log_in(page, site)
    page.goto(f"{site.url}/campaigns/new")
    panel = page.locator("#panel")
    panel.get_by_label("Name").fill("Split test")
    panel.get_by_label("Key (used in URLs and files)").fill("split-test")
    drop(page, "trigger", 105, 200)
    panel.get_by_label("Fires").select_option("manual")
    drop(page, "split", 330, 200)
    assert dots(page, "split1") == ["a", "b"]
    expect(panel.locator(".branch-sum")).to_have_text("Total 100%")

    panel.get_by_role("button", name="Add branch").click()
    assert dots(page, "split1") == ["a", "b", "c"]
    expect(panel.locator(".branch-sum")).to_contain_text("Total 100%: each branch takes")
    panel.get_by_label("Branch 1 percent").fill("40")
    panel.get_by_label("Branch 2 percent").fill("30")
    panel.get_by_label("Branch 3 percent").fill("40")
    expect(panel.locator(".branch-sum")).to_contain_text("Total 110%: each branch takes")
    panel.get_by_label("Branch 3 name").fill("control")
    assert dots(page, "split1") == ["a", "b", "control"]
    expect(node(page, "split1").locator(".nf-summary")).to_have_text("a 40%, b 30%, control 40%")

    for x, y in ((600, 60), (600, 260), (600, 460)):
        drop(page, "wait", x, y)
    connect(page, "trigger1", "split1")
    for target, branch in (("wait1", "a"), ("wait2", "b"), ("wait3", "control")):
        connect(page, "split1", target, branch)
    expect(page.locator(".drawflow .connection")).to_have_count(4)

    # The server sums them too, and says so on the node and next to the branches.
    page.get_by_role("button", name="Save").click()
    problem = "node 'split1' (Split): branches: the percents must add up to 100 (they add up to 110)"
    # (Its edges are also refused, as from a node with a single output, while its config is
    # invalid: the engine knows no outputs of a node it could not load.)
    expect(node(page, "split1").locator(".nf-errors li").first).to_have_text(problem)
    node(page, "split1").locator(".nf-title").click()
    expect(panel.locator("fieldset[data-field='branches'] p.field-error").last).to_have_text(problem)

    panel.get_by_label("Branch 3 percent").fill("30")
    expect(panel.locator(".branch-sum")).to_have_text("Total 100%")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#editor-messages .form-done")).to_have_text("Saved as version 1.")
    graph = saved_graph(site, "split-test")
    assert sorted(graph["edges"]) == [["split1", "wait1", "a"], ["split1", "wait2", "b"],
                                      ["split1", "wait3", "control"], ["trigger1", "split1"]]
    split = next(n for n in graph["nodes"] if n["id"] == "split1")
    assert split["config"] == {"branches": [{"name": "a", "percent": 40},
                                            {"name": "b", "percent": 30},
                                            {"name": "control", "percent": 30}]}

    page.get_by_label("For date").fill(TODAY.isoformat())
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#editor-messages .form-done")).to_contain_text("Preview for")
    expect(node(page, "split1").locator(".nf-counts")).to_contain_text("passed 4 · a ")
    labels = dots(page, "split1")
    assert [x.split(" ")[0] for x in labels] == ["a", "b", "control"]
    assert sum(int(x.split(" ")[1]) for x in labels) == 4
    node(page, "split1").locator(".nf-title").click()
    print("split screenshot:", screenshot(page, "editor-split"))

    # Removing a branch takes its dot and its line; the next branch's line stays on its dot.
    node(page, "split1").locator(".nf-title").click()
    panel.get_by_role("button", name="Remove branch 2").click()
    assert dots(page, "split1") == ["a", "control"]
    split_id = node(page, "split1").get_attribute("id")
    wait3_id = node(page, "wait3").get_attribute("id")
    expect(page.locator(f".connection.node_out_{split_id}.output_2.node_in_{wait3_id}")).to_have_count(1)
    expect(page.locator(f".connection.node_out_{split_id}")).to_have_count(2)
    expect(panel.locator(".branch[data-branch='control'] li")).to_contain_text("→ Wait (wait3)")
    panel.get_by_label("Branch 1 percent").fill("60")
    panel.get_by_label("Branch 2 percent").fill("40")
    node(page, "wait2").locator(".nf-title").click()
    panel.get_by_role("button", name="Delete node").click()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#editor-messages .form-done")).to_have_text("Saved as version 2.")
    assert sorted(saved_graph(site, "split-test")["edges"]) == [
        ["split1", "wait1", "a"], ["split1", "wait3", "control"], ["trigger1", "split1"]]


def test_event_and_one_off_date_triggers(page: Any, site: Site) -> None:
    log_in(page, site)
    page.goto(f"{site.url}/campaigns/new")
    panel = page.locator("#panel")
    panel.get_by_label("Name").fill("Welcome")
    panel.get_by_label("Key (used in URLs and files)").fill("welcome")
    panel.get_by_label("Purpose").select_option("service")
    drop(page, "trigger", 105, 120)
    panel.get_by_label("Fires").select_option("event")
    panel.get_by_label("Event name").fill("registered")
    where = {"all": [{"field": "event.properties.plan", "op": "=", "value": "pro"}]}
    panel.get_by_label("Only events where (rules, JSON; empty = every event)").fill(json.dumps(where))
    expect(node(page, "trigger1").locator(".nf-summary")).to_have_text(
        "on event registered (where …)")
    drop(page, "send-message", 400, 300)
    inline_message(page, "email", "Welcome aboard.")
    connect(page, "trigger1", "message1")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#editor-messages .form-done")).to_have_text("Saved as version 1.")
    trigger = saved_graph(site, "welcome")["nodes"][0]["config"]
    assert {k: trigger[k] for k in ("kind", "name", "where")} == {
        "kind": "event", "name": "registered", "where": where}

    # The same trigger on the date itself, a week before it: repeat once.
    node(page, "trigger1").locator(".nf-title").click()
    panel.get_by_label("Fires").select_option("date")
    expect(panel.get_by_label("Repeat")).to_have_value("yearly")
    panel.get_by_label("Date field").select_option("registered_at")
    panel.get_by_label("Repeat").select_option("once")
    panel.get_by_label("Offset in days (negative = before)").fill("-7")
    expect(node(page, "trigger1").locator(".nf-summary")).to_have_text("once on Registered on -7 days")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#editor-messages .form-done")).to_have_text("Saved as version 2.")
    trigger = saved_graph(site, "welcome")["nodes"][0]["config"]
    assert {k: trigger.get(k) for k in ("kind", "field", "repeat", "offset_days")} == {
        "kind": "date", "field": "registered_at", "repeat": "once", "offset_days": -7}
