"""The data set page in a real browser: pick columns, sort by a header, save the columns under
a name and pick them again."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from engine.models import ColumnSet
from tests.browser.conftest import Site, log_in

pytestmark = pytest.mark.browser


def _first_cells(page: Any) -> list[str]:
    """Each row's external id (after the row's checkbox where the user may send)."""
    rows = page.locator("table.grid tbody tr").all_inner_texts()
    return [next(c.strip() for c in row.split("\t") if c.strip()) for row in rows]


def test_sort_by_a_header_and_save_the_columns(page: Any, site: Site) -> None:
    log_in(page, site)
    page.goto(f"{site.url}/segments/member-1y/dataset")
    for box in page.locator("input[name=column]").all():
        box.set_checked(False)
    page.locator("input[name=column][value=external_id]").check()
    page.locator("input[name=column][value=first_name]").check()
    page.get_by_role("button", name="Show").click()
    expect(page.locator("table.grid tbody tr")).to_have_count(3)  # Ana, Cara and Eve
    assert _first_cells(page) == ["C1", "C3", "C4"]
    page.locator("th a.sort", has_text="First name").click()
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("First name")
    page.locator("th a.sort", has_text="First name").click()  # again: descending
    expect(page.locator("th[aria-sort=descending]")).to_contain_text("First name")
    assert _first_cells(page) == ["C3", "C1", "C4"]  # Cara, Ana; Eve's "<img ..." sorts first up
    expect(page.locator("table.grid")).to_contain_text("<img src=x onerror=alert(1)>")

    page.get_by_label("Save these columns as").fill("Who they are")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**set=Who+they+are**")
    with site.db.engine.connect() as conn:
        saved = conn.execute(select(ColumnSet.columns, ColumnSet.saved_by)
                             .where(ColumnSet.name == "Who they are")).one()
    assert (list(saved.columns), saved.saved_by) == (["external_id", "first_name"], "mia")

    page.goto(f"{site.url}/segments/member-1y/dataset")  # the default columns again
    expect(page.locator("table.grid thead th")).not_to_have_count(3)
    page.get_by_label("Saved columns").select_option("Who they are")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("table.grid thead th")).to_have_count(3)  # and the Choose column
    expect(page.locator("input[name=column][value=first_name]")).to_be_checked()
