"""The reports pages in a real browser: the messages chart (stacked bars per status, drawn by
the vendored Chart.js under the Content-Security-Policy) with the table and totals, the points
search, and a campaign's runs over time."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from engine.db import write_transaction
from tests.browser.conftest import Site, log_in, screenshot
from tests.report_world import seed

pytestmark = pytest.mark.browser


def painted(page: Any, canvas_id: str) -> int:
    """How many pixels of the canvas are not blank."""
    return int(page.evaluate("""id => {
        const c = document.getElementById(id);
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) n++;
        return n;
    }""", canvas_id))


def test_messages_report_draws_the_chart_and_the_table(page: Any, site: Site) -> None:
    with write_transaction(site.db.engine) as conn:
        seed(conn)
    log_in(page, site, "vic")
    page.get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Reports: messages")).to_be_visible()
    page.get_by_label("From").fill("2026-03-09")
    page.get_by_label("To").fill("2026-03-13")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#message-totals [data-total='credits']")).to_have_text("8")
    expect(page.locator("#message-totals [data-total='sms_parts']")).to_have_text("6")
    rows = page.locator("#messages-table tbody tr")
    expect(rows).to_have_count(7)
    expect(rows.first).to_contain_text("2026-03-10")
    expect(page.locator("#messages-table tfoot")).to_contain_text("9")
    chart = page.evaluate("""() => {
        const c = Chart.getChart('messages-chart');
        return {type: c.config.type, labels: c.data.labels, stacked: c.options.scales.y.stacked,
                sets: c.data.datasets.map(d => [d.label, d.data])};
    }""")
    assert chart["type"] == "bar" and chart["stacked"] is True
    assert chart["labels"] == ["2026-03-09", "2026-03-10", "2026-03-11", "2026-03-12",
                               "2026-03-13"]
    assert chart["sets"] == [["queued", [0, 0, 0, 1, 0]], ["sent", [0, 2, 2, 1, 0]],
                             ["failed", [0, 0, 1, 0, 0]], ["skipped", [0, 2, 0, 0, 0]]]
    page.wait_for_timeout(400)  # the bars grow in 300 ms
    assert painted(page, "messages-chart") > 2000
    href = page.locator("#messages-csv").get_attribute("href") or ""
    assert href.startswith("/api/v1/reports/messages.csv?") and "from=2026-03-09" in href
    screenshot(page, "reports-messages")

    page.get_by_role("link", name="Points", exact=True).click()
    page.get_by_label("Description contains").fill("birthday")
    page.get_by_label("Kind").select_option("accrual")
    page.get_by_role("button", name="Find").click()
    expect(page.locator("#points-table tbody tr")).to_have_count(3)
    expect(page.locator("#points-totals [data-kind='accrual']")).to_contain_text("240")
    expect(page.locator("#points-table")).not_to_contain_text("Pat1")

    page.get_by_role("link", name="bday").first.click()
    expect(page.get_by_role("heading", name="Runs of Bday")).to_be_visible()
    expect(page.locator("#runs-table tbody tr")).to_have_count(2)
    runs = page.evaluate("""() => Chart.getChart('runs-chart').data.datasets
                               .map(d => [d.label, d.data])""")
    assert ["reached", [5, 2]] in runs and ["sent", [2, 1]] in runs
    assert ["points awarded", [200, 0]] in runs and ["points expired", [100, 0]] in runs
    assert ["failed", [0, 1]] in runs
    assert ["skipped: opted out of this channel", [1, 0]] in runs
    page.wait_for_timeout(400)
    assert painted(page, "runs-chart") > 2000
    screenshot(page, "reports-campaign-runs")
