"""A blast from the data set page in a real browser: two rows chosen, a template, preview,
send; exactly those two customers get the message, once; then STOP on the blast's page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from engine.campaigns import save_template
from engine.config import Settings
from engine.db import write_transaction
from engine.models import Customer, Message
from engine.models.base import utcnow
from engine.outbox import dispatch
from tests.browser.conftest import Site, log_in
from tests.fakes import RecordingChannel

pytestmark = pytest.mark.browser


def _messages(site: Site) -> list[tuple[str, str]]:
    with site.db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            select(Customer.external_id, Message.status)
            .join(Customer, Customer.id == Message.customer_id).order_by(Customer.external_id))]


def test_two_chosen_rows_get_the_message_once(page: Any, site: Site) -> None:
    with write_transaction(site.db.engine) as conn:
        save_template(conn, {"key": "notice", "name": "Notice", "channel": "sms",
                             "subject": None, "transliterate": False,
                             "body": "Hi {{ customer.first_name }}, your statement is ready."})
    log_in(page, site)
    page.goto(f"{site.url}/segments/member-1y/dataset")
    expect(page.get_by_text("Select all (3 rows")).to_be_visible()  # C1, C3, C4
    page.get_by_label("Choose C1").check()
    page.get_by_label("Choose C3").check()
    expect(page.locator("#blast-chosen")).to_have_text("2 rows chosen")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#blast-form .field-error")).to_have_text("required: choose a template")
    page.get_by_label("Template").select_option("notice")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#blast-outcome")).to_have_text("Would send to 2 chosen: queued 2")
    assert _messages(site) == []
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Send", exact=True).click()
    page.wait_for_url(f"{site.url}/blasts/*")
    expect(page.locator("#blast-counts")).to_have_text("queued 2")
    expect(page.locator("#blast-rows")).to_have_text("2 chosen, 2 in the data set")
    assert _messages(site) == [("C1", "queued"), ("C3", "queued")]

    sms = RecordingChannel()
    dispatch(site.db.engine, Settings(secret_key="k"), {"email": RecordingChannel(), "sms": sms},
             now=utcnow() + timedelta(seconds=1))
    assert sorted((m.to, m.body) for m in sms.sent) == [
        ("+27821234567", "Hi Ana, your statement is ready."),
        ("+27821234569", "Hi Cara, your statement is ready.")]
    page.reload()
    expect(page.locator("#blast-messages")).to_have_text("sent 2")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Stop sending").click()
    expect(page.locator("#blast-messages")).to_have_text("sent 2")
    assert _messages(site) == [("C1", "sent"), ("C3", "sent")]


def test_all_rows_later_then_stop(page: Any, site: Site) -> None:
    with write_transaction(site.db.engine) as conn:
        save_template(conn, {"key": "notice", "name": "Notice", "channel": "sms",
                             "subject": None, "transliterate": False,
                             "body": "Hi {{ customer.first_name }}."})
    log_in(page, site)
    page.goto(f"{site.url}/segments/member-1y/dataset")
    page.get_by_label("Select all").check()
    expect(page.locator("#blast-chosen")).to_have_text("all 3 rows")
    page.get_by_label("Template").select_option("notice")
    page.get_by_label("Send", exact=True).select_option("delay")
    page.get_by_label("Hours from now").fill("3")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Send", exact=True).click()
    page.wait_for_url(f"{site.url}/blasts/*")
    expect(page.locator("#blast-counts")).to_have_text("queued 2 · skipped: no marketing consent 1")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Stop sending").click()
    expect(page.locator("#blast-messages")).to_have_text("cancelled 2 · skipped 1")
    assert _messages(site) == [("C1", "cancelled"), ("C3", "cancelled"), ("C4", "skipped")]


def test_a_viewer_sees_no_blast_form(page: Any, site: Site) -> None:
    log_in(page, site, "vic")
    page.goto(f"{site.url}/segments/member-1y/dataset")
    expect(page.locator("#dataset-rows")).to_be_visible()
    expect(page.locator("#blast-form")).to_have_count(0)
    expect(page.locator("input.choose-row")).to_have_count(0)
