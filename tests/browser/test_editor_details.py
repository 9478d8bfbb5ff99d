"""What a marketer meets in the editor after the first build: lines that stay on their dots
when counts make nodes taller, nodes added with Enter that land in view, keys the browser
checks, a weekly schedule that asks for its days, errors that name the node and the field,
and labels instead of ids and column names."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from engine.campaigns import save_document
from engine.db import write_transaction
from engine.models import Campaign
from tests.browser.conftest import TODAY, Site, log_in, node
from tests.campaign_docs import BIRTHDAY

pytestmark = pytest.mark.browser

# Each line's two ends and the centres of the dots it joins, in page pixels.
LINE_ENDS = """() => [...document.querySelectorAll("#drawflow svg.connection")].map((svg) => {
  const path = svg.querySelector(".main-path"), m = path.getScreenCTM();
  const at = (length) => { const p = path.getPointAtLength(length);
                           return [p.x * m.a + p.y * m.c + m.e, p.x * m.b + p.y * m.d + m.f]; };
  const centre = (selector) => { const r = document.querySelector(selector).getBoundingClientRect();
                                 return [r.x + r.width / 2, r.y + r.height / 2]; };
  const from = [...svg.classList].find((c) => c.startsWith("node_out_")).slice(9);
  const to = [...svg.classList].find((c) => c.startsWith("node_in_")).slice(8);
  return {line: `${from} -> ${to}`, start: at(0), end: at(path.getTotalLength()),
          output: centre(`#${from} .output_1`), input: centre(`#${to} .input_1`)};
})"""


def detached_lines(page: Any) -> list[str]:
    """Lines whose ends are more than 1.5 px from the dots they join."""
    def off(a: list[float], b: list[float]) -> bool:
        return bool(abs(a[0] - b[0]) > 1.5 or abs(a[1] - b[1]) > 1.5)

    lines = page.evaluate(LINE_ENDS)
    assert len(lines) == 3
    return [f"{x['line']}: starts at {x['start']}, dot at {x['output']}; ends at {x['end']}, "
            f"dot at {x['input']}" for x in lines
            if off(x["start"], x["output"]) or off(x["end"], x["input"])]


def saved_birthday(site: Site) -> None:
    with write_transaction(site.db.engine) as conn:
        save_document(conn, copy.deepcopy(BIRTHDAY), saved_by="tester")


def heights(page: Any) -> list[float]:
    return page.locator(".drawflow-node").evaluate_all("ns => ns.map((n) => n.offsetHeight)")


def test_lines_stay_on_the_dots_after_preview_and_run(page: Any, site: Site) -> None:
    saved_birthday(site)
    log_in(page, site)
    page.goto(f"{site.url}/campaigns/birthday-bonus/edit")
    assert detached_lines(page) == []
    before = heights(page)
    page.get_by_label("For date").fill(TODAY.isoformat())
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#editor-messages .form-done")).to_contain_text("Preview for")
    expect(node(page, "m").locator(".nf-counts")).not_to_be_empty()
    # The counts made every node taller, which moves its dots; the lines follow them.
    assert all(after > was for after, was in zip(heights(page), before, strict=True))
    assert detached_lines(page) == []

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#editor-messages .form-done")).to_contain_text("Run for")
    expect(node(page, "a").locator(".nf-counts")).to_contain_text("awarded 1")
    assert detached_lines(page) == []


def rectangles(page: Any) -> tuple[dict[str, float], list[dict[str, float]]]:
    canvas = page.locator("#drawflow").bounding_box()
    boxes = [page.locator(".drawflow-node").nth(i).bounding_box()
             for i in range(page.locator(".drawflow-node").count())]
    return canvas, boxes


def assert_in_view_and_apart(canvas: dict[str, float], boxes: list[dict[str, float]]) -> None:
    for b in boxes:
        assert canvas["x"] <= b["x"] and b["x"] + b["width"] <= canvas["x"] + canvas["width"], b
        assert canvas["y"] <= b["y"] and b["y"] + b["height"] <= canvas["y"] + canvas["height"], b
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            apart = (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                     or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])
            assert apart, (a, b)


def test_nodes_added_with_enter_land_in_view_apart(page: Any, site: Site) -> None:
    log_in(page, site)
    page.goto(f"{site.url}/campaigns/new")
    for kind in ("trigger", "segment-select", "award-bonus", "send-message", "send-message",
                 "segment-select"):
        page.locator(f".palette-item[data-node='{kind}']").focus()
        page.keyboard.press("Enter")
    canvas, boxes = rectangles(page)
    assert len(boxes) == 6
    assert_in_view_and_apart(canvas, boxes)

    # Zoomed in and panned, new nodes still land in what is on show, clear of the others.
    page.get_by_role("button", name="Zoom in").click()
    page.get_by_role("button", name="Zoom in").click()
    start = page.locator("#drawflow").bounding_box()
    page.mouse.move(start["x"] + start["width"] - 20, start["y"] + start["height"] - 20)
    page.mouse.down()
    page.mouse.move(start["x"] + start["width"] - 160, start["y"] + start["height"] - 100, steps=5)
    page.mouse.up()
    for kind in ("award-bonus", "send-message", "award-bonus"):
        page.locator(f".palette-item[data-node='{kind}']").focus()
        page.keyboard.press("Enter")
    canvas, boxes = rectangles(page)
    assert len(boxes) == 9
    assert_in_view_and_apart(canvas, boxes[6:])
    for added in boxes[6:]:
        assert_in_view_and_apart({"x": -1e6, "y": -1e6, "width": 2e6, "height": 2e6},
                                 [added, *boxes[:6]])


def test_the_browser_checks_keys(page: Any, site: Site) -> None:
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text) if msg.type == "error" else None)
    log_in(page, site)
    for path, key in (("/campaigns/new", page.locator("#panel").get_by_label("Key (used in URLs and files)")),
                      ("/segments/new", page.get_by_label("Key")),
                      ("/templates/new", page.get_by_label("Key"))):
        page.goto(f"{site.url}{path}")
        key.fill("Bad Key!")
        assert key.evaluate("input => input.checkValidity()") is False, path
        key.fill("past-due-30")
        assert key.evaluate("input => input.checkValidity()") is True, path
        key.fill("past_due-30")
        assert key.evaluate("input => input.checkValidity()") is True, path
    assert console == []


def test_a_weekly_schedule_asks_for_its_days(page: Any, site: Site) -> None:
    log_in(page, site)
    page.goto(f"{site.url}/campaigns/new")
    panel = page.locator("#panel")
    panel.get_by_label("Name").fill("Weekly blast")
    panel.get_by_label("Key (used in URLs and files)").fill("weekly")
    page.locator(".palette-item[data-node='trigger']").focus()
    page.keyboard.press("Enter")
    panel.get_by_label("Fires").select_option("schedule")
    panel.get_by_label("Every").select_option("week")
    days = panel.locator("fieldset[data-field='weekdays'] input[type='checkbox']")
    expect(days).to_have_count(7)
    assert days.evaluate_all("boxes => boxes.filter((b) => b.checked).length") == 0
    expect(node(page, "trigger1")).to_contain_text("every week: pick the days")

    page.get_by_role("button", name="Save").click()
    problem = ("node 'trigger1' (Trigger): weekdays: required when every is week: pick the days "
               "it runs on")
    expect(node(page, "trigger1").locator(".nf-errors")).to_contain_text(problem)
    expect(panel.locator("fieldset[data-field='weekdays'] .field-error")).to_contain_text(problem)
    with site.db.engine.connect() as conn:
        assert conn.execute(select(Campaign.id)).first() is None

    panel.get_by_label("thu").check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#editor-messages .form-done")).to_have_text("Saved as version 1.")
    with site.db.engine.connect() as conn:
        graph = conn.execute(select(Campaign.graph)).scalar_one()
    assert graph["nodes"][0]["config"] == {"kind": "schedule", "every": "week",
                                           "weekdays": ["thu"], "offset_days": 0}


def test_errors_name_the_node_and_the_field(page: Any, site: Site) -> None:
    saved_birthday(site)
    log_in(page, site)
    page.goto(f"{site.url}/campaigns/birthday-bonus/edit")
    node(page, "m").locator(".nf-title").click()
    panel = page.locator("#panel")
    panel.get_by_label("Content").select_option("inline")
    page.get_by_role("button", name="Save").click()
    problem = ("node 'm' (Send message): body: required for a message written here (or give a "
               "template key)")
    expect(node(page, "m").locator(".nf-errors")).to_have_text(problem)
    expect(panel.locator(".field-error")).to_have_text(problem)
    expect(page.locator("#editor-messages .form-error")).to_have_text(
        "invalid campaign; see the marked nodes.")


def test_labels_not_ids_or_column_names(page: Any, site: Site) -> None:
    saved_birthday(site)
    log_in(page, site)
    page.goto(f"{site.url}/campaigns/birthday-bonus/edit")
    titles = page.locator(".drawflow-node .nf-title").all_inner_texts()
    assert titles == ["Trigger", "Segment select: Members for a year or more", "Award bonus",
                      "Send message: Birthday SMS"]
    expect(node(page, "t").locator(".nf-summary")).to_have_text("yearly on Birth date")
    expect(node(page, "m").locator(".nf-summary")).to_have_text("sms from the template, at 09:00")
    page.get_by_label("For date").fill(TODAY.isoformat())
    page.get_by_role("button", name="Preview").click()
    expect(node(page, "m").locator(".nf-counts")).to_have_text("passed 1 · queued 1")
    boxes = " ".join(page.locator(".drawflow-node").all_inner_texts())
    assert "·  m" not in boxes and "message1" not in boxes
    node(page, "m").locator(".nf-title").click()
    expect(page.locator("#panel-title")).to_have_text("Send message: Birthday SMS")
    page.locator("#panel").get_by_role("button", name="Back to the campaign").click()
    node(page, "t").locator(".nf-title").click()
    date_field = page.locator("#panel").get_by_label("Date field")
    assert date_field.locator("option").all_inner_texts()[:2] == ["Birth date", "Registered on"]
    page.locator("#panel").get_by_role("button", name="Back to the campaign").click()
    node(page, "a").locator(".nf-title").click()
    expect(page.locator("#panel .connections li")).to_have_text("→ Send message: Birthday SMS disconnect")

    page.goto(f"{site.url}/segments/new")
    field = page.locator(".rule").first.get_by_label("Field")
    options = field.locator("option").all_inner_texts()
    assert "Days past due" in options and "Days since registration" in options
    assert not [o for o in options if "_" in o]
    field.select_option(label="Days past due")
    assert field.input_value() == "days_past_due"
