"""The editor and the pages in a real browser (Debian's Chromium through Playwright): build the
birthday campaign by drag and drop, break it, fix it, activate, preview, run, and find the
bonus and the message on the customer's page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from engine.models import BonusLedger, Campaign, Message
from tests.browser.conftest import TODAY, Site, log_in, node, screenshot

pytestmark = pytest.mark.browser


def drop(page: Any, kind: str, x: int, y: int) -> None:
    """Drag a node type from the palette onto the canvas at (x, y) inside the canvas."""
    page.locator(f".palette-item[data-node='{kind}']").drag_to(
        page.locator("#drawflow"), target_position={"x": x, "y": y})


def connect(page: Any, source: str, target: str) -> None:
    """Drag from the source's output dot to the target's input dot."""
    out = node(page, source).locator(".output_1").bounding_box()
    into = node(page, target).locator(".input_1").bounding_box()
    page.mouse.move(out["x"] + out["width"] / 2, out["y"] + out["height"] / 2)
    page.mouse.down()
    page.mouse.move(into["x"] + into["width"] / 2, into["y"] + into["height"] / 2, steps=8)
    page.mouse.up()


def disconnect(page: Any, source: str, target: str) -> None:
    """Click the line between two nodes, then press Delete."""
    source_id = node(page, source).get_attribute("id")
    target_id = node(page, target).get_attribute("id")
    line = page.locator(f".connection.node_out_{source_id}.node_in_{target_id} .main-path")
    x, y = line.evaluate("""p => {
        const at = p.getPointAtLength(p.getTotalLength() / 2), m = p.getScreenCTM();
        return [at.x * m.a + at.y * m.c + m.e, at.x * m.b + at.y * m.d + m.f]; }""")
    page.mouse.click(x, y)
    page.keyboard.press("Delete")
    assert line.count() == 0


def expect_text(locator: Any, text: str) -> None:
    from playwright.sync_api import expect

    expect(locator).to_contain_text(text)


def test_build_the_birthday_campaign_by_drag_and_drop(page: Any, site: Site) -> None:
    log_in(page, site)
    page.get_by_role("link", name="New campaign").click()
    page.wait_for_url(f"{site.url}/campaigns/new")
    panel = page.locator("#panel")
    panel.get_by_label("Name").fill("Birthday bonus")
    panel.get_by_label("Key (used in URLs and files)").fill("birthday-bonus")

    drop(page, "trigger", 105, 80)
    expect_text(page.locator("#panel-title"), "Trigger")
    panel.get_by_label("Fires").select_option("date")
    panel.get_by_label("Date field").select_option("birth_date")
    panel.get_by_label("Offset in days (negative = before)").fill("0")

    drop(page, "segment-select", 290, 280)
    expect_text(page.locator("#panel-title"), "Segment select: Members for a year or more")
    panel.get_by_label("Segment", exact=True).select_option("member-1y")

    drop(page, "award-bonus", 480, 80)
    panel.get_by_label("Points").fill("100")
    panel.get_by_label("Lifetime in days (empty = never expires)").fill("30")
    panel.get_by_label("Legal entity").fill("Main")
    panel.get_by_label("Description (shown in the balance)").fill("Birthday bonus")
    expect_text(node(page, "award1"), "100 points, expires after 30 days")
    pending = panel.get_by_label("Pending for days (empty = available at once)")
    pending.fill("7")
    expect_text(node(page, "award1"), "100 points, pending 7 days, expires after 30 days")
    pending.fill("")  # available at once again: the config loses the key
    expect_text(node(page, "award1"), "100 points, expires after 30 days")

    drop(page, "send-message", 655, 280)
    panel.get_by_label("Template").select_option("bday-sms")
    panel.get_by_label("Send", exact=True).select_option("now")

    connect(page, "trigger1", "segment1")
    connect(page, "segment1", "award1")
    connect(page, "award1", "message1")
    assert page.locator(".drawflow .connection").count() == 3

    page.get_by_role("button", name="Save").click()
    expect_text(page.locator("#editor-messages .form-done"), "Saved as version 1.")
    page.wait_for_url(f"{site.url}/campaigns/birthday-bonus/edit")

    # Disconnect the award: the server says it (and what follows it) hangs loose.
    disconnect(page, "segment1", "award1")
    page.get_by_role("button", name="Save").click()
    expect_text(node(page, "award1").locator(".nf-errors"),
                "node 'award1' (Award bonus): not connected to the trigger")
    expect_text(node(page, "message1").locator(".nf-errors"), "not connected to the trigger")
    expect_text(page.locator("#editor-messages .form-error"), "invalid campaign")
    assert "has-error" in (node(page, "award1").get_attribute("class") or "")
    assert node(page, "segment1").locator(".nf-errors li").count() == 0

    connect(page, "segment1", "award1")
    page.get_by_role("button", name="Save").click()   # the same graph as version 1 again
    expect_text(page.locator("#editor-messages .form-done"), "No changes: still version 1.")
    assert node(page, "award1").locator(".nf-errors li").count() == 0

    page.get_by_role("button", name="Activate").click()
    expect_text(page.locator("#campaign-status"), "active")

    page.get_by_label("For date").fill(TODAY.isoformat())
    page.get_by_role("button", name="Preview").click()
    expect_text(page.locator("#editor-messages .form-done"), f"Preview for {TODAY.isoformat()}")
    expect_text(node(page, "trigger1").locator(".nf-counts"), "passed 2")   # Ana and Ben
    expect_text(node(page, "segment1").locator(".nf-counts"), "passed 1")   # Ana only
    expect_text(node(page, "award1").locator(".nf-counts"), "passed 1")
    expect_text(node(page, "message1").locator(".nf-counts"), "queued 1")
    expect_text(page.locator("#preview-sample"), "Reaches, for example: C1 Ana Silva")
    with site.db.engine.connect() as conn:       # a preview writes nothing
        assert conn.execute(select(BonusLedger.id)).first() is None

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Run", exact=True).click()
    expect_text(page.locator("#editor-messages .form-done"),
                f"Run for {TODAY.isoformat()}: completed")
    expect_text(node(page, "award1").locator(".nf-counts"), "awarded 1")
    print("editor screenshot:", screenshot(page, "editor-birthday-campaign"))

    with site.db.engine.connect() as conn:
        campaign = conn.execute(select(Campaign.status, Campaign.version, Campaign.graph)).one()
        assert (campaign.status, campaign.version) == ("active", 1)
        assert sorted(campaign.graph["edges"]) == [["award1", "message1"], ["segment1", "award1"],
                                                   ["trigger1", "segment1"]]
        award = next(n for n in campaign.graph["nodes"] if n["id"] == "award1")
        assert award["config"] == {"amount": 100, "lifetime_days": 30, "legal_entity": "Main",
                                   "description": "Birthday bonus"}

    # The customer whose birthday it is: the bonus with its expiry, the queued SMS.
    page.get_by_role("link", name="Customers").click()
    page.get_by_label("Search by id, name, email or phone").fill("Ana")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="C1").click()
    page.wait_for_url(f"{site.url}/customers/C1")
    expires = (TODAY + timedelta(days=30)).isoformat()
    balance = page.locator("#balance")
    expect_text(balance, f"100 points available on {TODAY.isoformat()}")
    expect_text(balance.locator("tbody tr"), expires)
    expect_text(balance.locator("tbody tr"), "Birthday bonus (Main)")
    messages = page.locator("#messages tbody tr")
    assert messages.count() == 1
    expect_text(messages, "birthday-bonus")
    expect_text(messages, "+27821234567")
    expect_text(messages, "queued")
    timeline = page.locator("#timeline")
    expect_text(timeline.locator(".kind-bonus_awarded"), "100")
    expect_text(timeline.locator(".kind-message_queued"), "sms")
    print("customer screenshot:", screenshot(page, "customer-after-birthday-run"))

    # The filter keeps only what was asked for.
    page.get_by_label("Bonus awarded").check()
    page.get_by_role("button", name="Filter").click()
    assert page.locator("#timeline li.event").count() == 1
    with site.db.engine.connect() as conn:
        assert conn.execute(select(Message.status)).scalars().all() == ["queued"]


def test_an_email_node_asks_for_open_and_click_tracking(page: Any, site: Site) -> None:
    log_in(page, site)
    page.get_by_role("link", name="New campaign").click()
    page.wait_for_url(f"{site.url}/campaigns/new")
    panel = page.locator("#panel")
    panel.get_by_label("Name").fill("Due")
    panel.get_by_label("Key (used in URLs and files)").fill("due")
    drop(page, "trigger", 105, 80)
    panel.get_by_label("Fires").select_option("manual")
    drop(page, "send-message", 400, 200)
    panel.get_by_label("Template").select_option("bday-sms")
    assert panel.get_by_label("Track opens").count() == 0  # an SMS cannot track
    panel.get_by_label("Content").select_option("inline")  # an email, written here
    panel.get_by_label("Subject").fill("Invoice due")
    panel.get_by_label("Body").fill("Hello {{ customer.first_name }}")
    panel.get_by_label("Track opens").check()
    panel.get_by_label("Track link clicks").check()
    panel.get_by_label("Track link clicks").uncheck()
    connect(page, "trigger1", "message1")
    page.get_by_role("button", name="Save").click()
    expect_text(page.locator("#editor-messages .form-done"), "Saved as version 1.")
    with site.db.engine.connect() as conn:
        graph = conn.execute(select(Campaign.graph).where(Campaign.key == "due")).scalar_one()
    [message] = [n for n in graph["nodes"] if n["type"] == "send-message"]
    assert message["config"]["tracking"] == {"opens": True, "clicks": False}
