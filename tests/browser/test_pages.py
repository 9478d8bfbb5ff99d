"""The other pages in a real browser: version history, the keyboard, the segment builder, the
template editor, settings, what a viewer may do, and the layout at 1280x800."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from engine.campaigns import save_document
from engine.db import write_transaction
from engine.models import Campaign, ChannelCredit, Message, Segment, Setting, Template
from tests.browser.conftest import TODAY, Site, log_in, node
from tests.campaign_docs import BIRTHDAY

pytestmark = pytest.mark.browser


def saved_birthday(site: Site) -> None:
    doc = copy.deepcopy(BIRTHDAY)
    for i, n in enumerate(doc["graph"]["nodes"]):
        n["position"] = {"x": 20 + i * 170, "y": 40 + (i % 2) * 120}
    with write_transaction(site.db.engine) as conn:
        save_document(conn, doc, saved_by="tester")


def test_version_history_shows_older_versions_read_only(page: Any, site: Site) -> None:
    saved_birthday(site)
    log_in(page, site)
    page.goto(f"{site.url}/campaigns/birthday-bonus/edit")
    page.locator("#panel").get_by_role("button", name="Award bonus", exact=True).click()
    page.locator("#panel").get_by_label("Points").fill("150")
    # Move it 60 px right and 200 px down by its title; zoom in and out again.
    title = node(page, "a").locator(".nf-title").bounding_box()
    page.mouse.move(title["x"] + 20, title["y"] + 5)
    page.mouse.down()
    page.mouse.move(title["x"] + 80, title["y"] + 205, steps=6)
    page.mouse.up()
    page.get_by_role("button", name="Zoom in").click()
    assert "scale(1.1)" in (page.locator(".drawflow").get_attribute("style") or "")
    page.get_by_role("button", name="Reset").click()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#editor-messages .form-done")).to_have_text("Saved as version 2.")
    expect(node(page, "a")).to_contain_text("150 points")
    shown = node(page, "a").evaluate("n => [parseFloat(n.style.left), parseFloat(n.style.top)]")
    with site.db.engine.connect() as conn:
        graph = conn.execute(select(Campaign.graph)).scalar_one()
    moved = next(n for n in graph["nodes"] if n["id"] == "a")["position"]
    assert [moved["x"], moved["y"]] == [round(v) for v in shown]     # saved where it shows
    assert moved["x"] >= 20 + 2 * 170 + 50 and moved["y"] >= 40 + 150  # from (360, 40)

    page.get_by_label("History").select_option("1")
    expect(page.locator("#readonly-banner")).to_contain_text("Viewing version 1 (read-only)")
    expect(node(page, "a")).to_contain_text("100 points")
    expect(page.get_by_role("button", name="Save")).to_be_disabled()
    expect(page.get_by_role("button", name="Run", exact=True)).to_be_disabled()
    page.locator("#panel").get_by_role("button", name="Award bonus", exact=True).click()
    expect(page.locator("#panel").get_by_label("Points")).to_be_disabled()
    page.locator(".palette-item[data-node='trigger']").click()
    assert page.locator(".drawflow-node").count() == 4   # nothing added while read-only

    page.get_by_label("History").select_option("2")
    expect(page.locator("#readonly-banner")).to_be_hidden()
    expect(node(page, "a")).to_contain_text("150 points")
    expect(page.get_by_role("button", name="Save")).to_be_enabled()
    with site.db.engine.connect() as conn:
        assert conn.execute(select(Campaign.version)).scalar_one() == 2


def test_a_campaign_built_with_the_keyboard_alone(page: Any, site: Site) -> None:
    log_in(page, site)
    page.goto(f"{site.url}/campaigns/new")
    page.locator(".palette-item[data-node='trigger']").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#panel-title")).to_have_text("Trigger")
    page.locator(".palette-item[data-node='send-message']").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#panel-title")).to_have_text("Send message: Birthday SMS")
    page.get_by_role("button", name="Back to the campaign").focus()
    page.keyboard.press("Enter")
    page.locator("#panel").get_by_label("Name").focus()
    page.keyboard.type("Keyboard campaign")
    page.keyboard.press("Tab")
    page.keyboard.type("keyboard")
    page.locator("#panel").get_by_role("button", name="Trigger", exact=True).focus()
    page.keyboard.press("Enter")
    connect_to = page.locator("#panel").get_by_label("Connect to")
    connect_to.focus()
    page.keyboard.press("ArrowDown")       # the first choice: the message
    expect(page.locator("#panel .connections")).to_contain_text("→ Send message: Birthday SMS")
    page.get_by_role("button", name="Save").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#editor-messages .form-done")).to_have_text("Saved as version 1.")
    with site.db.engine.connect() as conn:
        graph = conn.execute(select(Campaign.graph).where(Campaign.key == "keyboard")).scalar_one()
    assert graph["edges"] == [["trigger1", "message1"]]
    assert [n["config"] for n in graph["nodes"]] == [
        {"kind": "date", "field": "birth_date", "offset_days": 0},
        {"template": "bday-sms", "send_at": {"mode": "now"}, "reply_to": None, "sender": None}]


def test_a_trigger_on_an_imported_date_column(page: Any, site: Site) -> None:
    log_in(page, site)
    page.goto(f"{site.url}/campaigns/new")
    panel = page.locator("#panel")
    panel.get_by_label("Name").fill("Contract anniversary")
    panel.get_by_label("Key (used in URLs and files)").fill("contract")
    page.locator(".palette-item[data-node='trigger']").click()
    panel.get_by_label("Date field").select_option("attributes.")
    panel.get_by_label("Column name (its values are YYYY-MM-DD dates)").fill("contract_start")
    expect(node(page, "trigger1")).to_contain_text("yearly on contract_start (imported)")
    page.locator(".palette-item[data-node='award-bonus']").click()
    panel.get_by_label("Points").fill("50")
    page.get_by_role("button", name="Back to the campaign").click()
    page.locator("#panel").get_by_role("button", name="Trigger", exact=True).click()
    panel.get_by_label("Connect to").select_option(label="Award bonus")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#editor-messages .form-done")).to_have_text("Saved as version 1.")
    with site.db.engine.connect() as conn:
        graph = conn.execute(select(Campaign.graph).where(Campaign.key == "contract")).scalar_one()
    assert graph["nodes"][0]["config"] == {"kind": "date", "field": "attributes.contract_start",
                                           "offset_days": 0}


def test_segment_builder_counts_as_you_type_and_saves(page: Any, site: Site) -> None:
    log_in(page, site)
    page.goto(f"{site.url}/segments/new")
    page.get_by_label("Name").fill("Long-time members starting with A")
    page.get_by_label("Key").fill("long-a")
    rule = page.locator(".rule").first
    rule.get_by_label("Field").select_option("days_since_registration")
    rule.get_by_label("Operator").select_option(">=")
    rule.get_by_label("Value").fill("365")
    expect(page.locator("#seg-count")).to_have_text("3")        # Ana, Cara and Eve
    page.get_by_role("button", name="Add group").click()
    group = page.locator("fieldset.group fieldset.group")
    group.get_by_role("button", name="Add condition").click()
    inner = group.locator(".rule")
    inner.get_by_label("Field").select_option("first_name")
    inner.get_by_label("Operator").select_option("starts_with")
    inner.get_by_label("Value").fill("a")
    expect(page.locator("#seg-count")).to_have_text("1")
    expect(page.locator("#seg-sample")).to_contain_text("C1 Ana Silva")
    page.get_by_role("button", name="Save segment").click()
    page.wait_for_url(f"{site.url}/segments/long-a")
    expect(page.locator("#seg-count")).to_have_text("1")        # loaded back into the builder
    with site.db.engine.connect() as conn:
        rules = conn.execute(select(Segment.rules).where(Segment.key == "long-a")).scalar_one()
    assert rules == {"all": [{"field": "days_since_registration", "op": ">=", "value": 365},
                             {"any": [{"field": "first_name", "op": "starts_with", "value": "a"}]}]}


def test_template_editor_previews_and_counts_sms_parts(page: Any, site: Site) -> None:
    log_in(page, site)
    page.goto(f"{site.url}/templates/new")
    page.get_by_label("Key").fill("greeting")
    page.get_by_label("Channel").select_option("sms")
    page.get_by_label("Body").fill("Labas {{ customer.first_name }}, ačiū!")
    expect(page.locator("#preview-body")).to_have_text("Labas Ana, ačiū!")
    expect(page.locator("#sms-counter")).to_have_text("16 characters · 1 SMS part · ucs2")
    page.get_by_label("Transliterate SMS to Latin letters").check()
    expect(page.locator("#preview-body")).to_have_text("Labas Ana, aciu!")
    expect(page.locator("#sms-counter")).to_have_text("16 characters · 1 SMS part · gsm7")
    page.get_by_label("Body").fill("Hi {{ customer.nickname }}")
    expect(page.locator(".preview-error")).to_contain_text("unknown field customer.nickname")
    page.get_by_role("button", name="Save template").click()
    expect(page.locator("#template-form .field-error")).to_contain_text(
        "line 1: unknown field customer.nickname")
    page.get_by_label("Body").fill("Hi {{ customer.first_name }}" + " x" * 80)
    expect(page.locator("#sms-counter")).to_have_text("166 characters · 2 SMS parts · gsm7")
    page.get_by_role("button", name="Save template").click()
    page.wait_for_url(f"{site.url}/templates/greeting")
    with site.db.engine.connect() as conn:
        saved = conn.execute(select(Template.channel, Template.transliterate)
                             .where(Template.key == "greeting")).one()
    assert tuple(saved) == ("sms", True)


def test_settings_and_credits(page: Any, site: Site) -> None:
    log_in(page, site, "ada")
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Default sender email").fill("news@shop")  # the browser lets it through
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#sender ~ .field-error")).to_have_text("Not a valid email address.")
    page.get_by_label("Default sender email").fill("news@shop.example")
    page.get_by_label("Marketing consent").select_option("ignore")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".form-done").first).to_have_text("Settings saved.")
    page.get_by_label("Channel").select_option("sms")
    page.get_by_label("Units to add").fill("250")
    page.get_by_role("button", name="Add credit").click()
    expect(page.locator("#credit-balances")).to_contain_text("sms: 250")
    with site.db.engine.connect() as conn:
        settings = dict(conn.execute(select(Setting.key, Setting.value)).all())
        assert conn.execute(select(ChannelCredit.balance)
                            .where(ChannelCredit.channel == "sms")).scalar_one() == 250
    assert (settings["sender"], settings["consent_mode"]) == ("news@shop.example", "ignore")


def test_a_viewer_reads_but_cannot_change(page: Any, site: Site) -> None:
    saved_birthday(site)
    log_in(page, site, "vic")
    page.goto(f"{site.url}/campaigns/birthday-bonus/edit")
    for name in ("Save", "Activate", "Pause", "Preview"):
        expect(page.get_by_role("button", name=name, exact=True)).to_be_disabled()
    page.locator(".palette-item[data-node='trigger']").click()
    assert page.locator(".drawflow-node").count() == 4
    expect(page.locator("#panel").get_by_label("Name")).to_be_disabled()
    page.goto(f"{site.url}/settings")
    expect(page.locator("[role=alert]")).to_contain_text(
        "this needs the settings.manage permission; your role viewer does not have it")


def test_stop_sending_archive_and_delete_what_is_no_longer_needed(page: Any, site: Site) -> None:
    from engine.executor import run

    saved_birthday(site)
    assert run(site.db.engine, "birthday-bonus", TODAY).status == "completed"  # Ana's SMS waits
    log_in(page, site)
    page.goto(f"{site.url}/templates/bday-sms")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete template").click()
    expect(page.locator("#template-form .form-error")).to_have_text(
        "template 'bday-sms' is still used by campaign 'birthday-bonus', "
        "1 message(s) waiting to be sent")

    page.goto(f"{site.url}/campaigns/birthday-bonus/edit")
    page.get_by_role("button", name="Stop sending").click()
    expect(page.locator("#editor-messages .form-done")).to_have_text("Cancelled 1 waiting message.")
    page.get_by_role("button", name="Archive").click()
    expect(page.locator("#campaign-status")).to_have_text("archived")

    page.get_by_role("link", name="Messages").click()
    page.get_by_label("Campaign").select_option("birthday-bonus")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("tbody tr")).to_contain_text("cancelled")

    page.goto(f"{site.url}/templates/bday-sms")
    page.get_by_role("button", name="Delete template").click()
    page.wait_for_url(f"{site.url}/templates")
    with site.db.engine.connect() as conn:
        assert conn.execute(select(Template.key)).scalars().all() == []
        assert conn.execute(select(Message.status)).scalars().all() == ["cancelled"]


def test_every_page_fits_1280x800(page: Any, site: Site) -> None:
    saved_birthday(site)
    log_in(page, site, "ada")
    for path in ("/campaigns", "/campaigns/new", "/campaigns/birthday-bonus/edit", "/segments",
                 "/segments/member-1y", "/templates", "/templates/bday-sms", "/customers",
                 "/customers/C4", "/messages", "/runs", "/settings", "/users", "/roles"):
        page.goto(f"{site.url}{path}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1280, (path, width)
    page.goto(f"{site.url}/campaigns/birthday-bonus/edit")
    canvas = page.locator("#drawflow").bounding_box()
    assert canvas["y"] + canvas["height"] <= 800 and canvas["width"] >= 600
    for nid in ("t", "s", "a", "m"):                # the whole example fits on the canvas
        box = node(page, nid).bounding_box()
        assert box["x"] + box["width"] <= canvas["x"] + canvas["width"], nid
    # Eve's name is HTML; the page shows it as text.
    page.goto(f"{site.url}/customers/C4")
    expect(page.locator("h1")).to_contain_text("<img src=x onerror=alert(1)> <b>Eve</b>")
    assert page.locator("h1 img, h1 b").count() == 0


def test_a_test_send_from_the_template_page(page: Any, site: Site, tmp_path: Any) -> None:
    log_in(page, site)
    page.goto(f"{site.url}/templates/new")
    page.get_by_label("Key").fill("greeting")
    page.get_by_label("Channel").select_option("sms")
    page.get_by_label("Body").fill("Hi {{ customer.first_name }}")
    expect(page.locator("#preview-body")).to_have_text("Hi Ana")
    page.get_by_label("To (email address or phone number)").fill("not a phone")
    page.get_by_role("button", name="Send test").click()
    expect(page.locator("#test-send-form .form-error")).to_contain_text(
        "to: expected a phone number")
    page.get_by_label("To (email address or phone number)").fill("+27 82 555 0101")
    page.get_by_role("button", name="Send test").click()
    expect(page.locator("#test-send-form .form-done")).to_have_text("Sent to +27825550101.")
    [written] = (tmp_path / "outbox" / "sms").iterdir()
    assert written.read_text().startswith("To: +27825550101\n")
    assert written.read_text().endswith("\n\nHi Ana\n")
    with site.db.engine.connect() as conn:
        assert conn.execute(select(Message.id)).first() is None  # a test is no message


def test_quiet_hours_and_caps_are_set_on_the_settings_page(page: Any, site: Site) -> None:
    log_in(page, site, "ada")
    page.goto(f"{site.url}/settings")
    page.get_by_label("Quiet hours", exact=True).fill('{"sms": {"start": "21:00", "end": "8am"}}')
    page.get_by_role("button", name="Save quiet hours and caps").click()
    expect(page.locator("#quiet_hours ~ .field-error, .form-error").filter(
        has_text="expected HH:MM").first).to_be_visible()
    page.get_by_label("Quiet hours", exact=True).fill('{"sms": {"start": "21:00", "end": "08:00"}}')
    page.get_by_label("Frequency caps", exact=True).fill(
        '[{"channel": "sms", "max": 2, "days": 7, "over": "delay"}]')
    page.get_by_role("button", name="Save quiet hours and caps").click()
    expect(page.locator(".form-done").nth(1)).to_have_text("Saved.")
    with site.db.engine.connect() as conn:
        settings = dict(conn.execute(select(Setting.key, Setting.value)).all())
    assert settings["quiet_hours"] == {"sms": {"start": "21:00", "end": "08:00"}, "email": None}
    assert settings["frequency_caps"] == [{"channel": "sms", "purpose": None, "max": 2,
                                           "days": 7, "over": "delay"}]


def test_an_admin_adds_a_role_gives_it_to_a_user_and_deletes_it(page: Any, site: Site) -> None:
    from engine.models import Role, User

    log_in(page, site, "ada")
    page.goto(f"{site.url}/roles")
    form = page.locator("form[data-api-url='/api/v1/roles']")
    form.get_by_label("Name").fill("analyst")
    for name in ("view", "data.export"):
        form.locator(f"input[value='{name}']").check()
    form.get_by_role("button", name="Add role").click()
    expect(page.locator("tbody tr").last).to_contain_text("analyst")
    with site.db.engine.connect() as conn:
        assert conn.execute(select(Role.permissions).where(Role.name == "analyst")
                            ).scalar_one() == ["view", "data.export"]
    page.goto(f"{site.url}/users")
    page.get_by_label("Role of vic").select_option("analyst")
    with page.expect_navigation():  # the form reloads the page once the change is saved
        page.get_by_label("Role of vic").locator("xpath=..").get_by_role(
            "button", name="Change").click()
    expect(page.get_by_label("Role of vic")).to_have_value("analyst")  # as the server has it
    with site.db.engine.connect() as conn:
        assert conn.execute(select(User.role).where(User.name == "vic")).scalar_one() == \
            "analyst"
    page.goto(f"{site.url}/roles")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete analyst").click()
    expect(page.locator("form[data-api-method='DELETE'] .form-error")).to_have_text(
        "role 'analyst' is held by 1 user(s): vic; give them another role first")
