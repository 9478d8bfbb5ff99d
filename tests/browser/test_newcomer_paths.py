"""A newcomer's first steps in a browser: the template preview for any customer (typed by name,
found by the customers search), and an inline SMS that asks for transliteration."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from engine.campaigns import save_document
from engine.db import write_transaction
from engine.models import Campaign
from tests.browser.conftest import Site, log_in

pytestmark = pytest.mark.browser


def test_the_preview_finds_a_customer_by_full_name(page: Any, site: Site) -> None:
    log_in(page, site)
    page.goto(f"{site.url}/templates/new")
    page.get_by_label("Channel").select_option("sms")
    page.get_by_label("Body").fill("Hi {{ customer.first_name }}")
    expect(page.locator("#preview-body")).to_have_text("Hi Ana")  # the first customer
    page.get_by_label("For customer").fill("Ben Okafor")
    expect(page.get_by_label("For customer")).to_have_value("C2")
    expect(page.locator("#preview-body")).to_have_text("Hi Ben")
    page.get_by_label("For customer").fill("C3")
    expect(page.locator("#preview-body")).to_have_text("Hi Cara")


def test_an_inline_sms_asks_for_transliteration_in_the_editor(page: Any, site: Site) -> None:
    with write_transaction(site.db.engine) as conn:
        save_document(conn, {"key": "thanks", "name": "Thanks", "graph": {
            "nodes": [{"id": "t", "type": "trigger", "config": {"kind": "manual"}},
                      {"id": "m", "type": "send-message",
                       "config": {"channel": "sms", "body": "Ačiū {{ customer.first_name }}"}}],
            "edges": [["t", "m"]]}})
    log_in(page, site)
    page.goto(f"{site.url}/campaigns/thanks/edit")
    page.locator("#panel").get_by_role("button", name="Send message", exact=True).click()
    panel = page.locator("#panel")
    box = panel.get_by_label("Transliterate to plain Latin letters (keeps GSM-7, cheaper parts)")
    expect(box).not_to_be_checked()
    box.check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#editor-messages .form-done")).to_have_text("Saved as version 2.")
    with site.db.engine.connect() as conn:
        graph = conn.execute(select(Campaign.graph)).scalar_one()
    assert graph["nodes"][1]["config"]["transliterate"] is True
    # An email has no such box (the panel still shows the node).
    panel.get_by_label("Channel").select_option("email")
    expect(panel.get_by_label("Transliterate to plain Latin letters (keeps GSM-7, cheaper "
                              "parts)")).to_have_count(0)
