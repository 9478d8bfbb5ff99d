"""The template preview is for any customer: typed by name, found by the customers search."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

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
