"""In a real browser: the statistics dashboard draws its charts with data (ECharts, served locally), in
Chinese and in English, and refreshes its figures with htmx — with no JavaScript error and no request out."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Site, Watch, filed_service, screenshot
from tests.factories import purchase

CHARTS = ("documents", "rate", "mismatches", "rejections", "times", "tax", "backlog", "inspections", "warnings")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A live service holding six cleared and five mismatched purchases: enough for every figure to show
    (counts under 5 are suppressed)."""
    with filed_service(tmp_path_factory.mktemp("dashboard")) as service:
        http, keys, admin = service.http, service.keys, service.admin
        triples = [purchase(own_buyer=True) for _ in range(6)]
        triples += [purchase(own_buyer=True, payment={"amountPaid": "240.00"}) for _ in range(5)]
        for order, payment, waybill in triples:
            http.post("/api/v1/orders", json=order, headers=keys["platform"]).raise_for_status()
            http.post("/api/v1/payments", json=payment, headers=keys["payment"]).raise_for_status()
            http.post("/api/v1/waybills", json=waybill, headers=keys["logistics"]).raise_for_status()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the embedded dispatcher clears the six
            summary = http.get("/api/v1/stats/summary", headers=admin).json()
            if summary["purchases"].get("CLEARED") == 6:
                break
            time.sleep(0.2)
        official = http.post("/api/v1/officials", json={"label": "统计员"}, headers=admin)
        yield Site(service.base, official.raise_for_status().json()["key"], "", "")


def sign_in(page: Page, site: Site) -> None:
    page.goto(f"{site.base}/console")
    page.fill("input[name=key]", site.official_key)
    page.click("button[type=submit].primary")
    expect(page).to_have_url(re.compile(r"/console/records$"))


def test_dashboard_draws_its_charts_with_data(page: Page, site: Site, watch: Watch) -> None:
    sign_in(page, site)
    page.click("#nav-dashboard")
    expect(page).to_have_url(re.compile(r"/console/dashboard$"))
    expect(page.locator("h1")).to_have_text("统计监测")
    expect(page.locator("#kpi-purchases")).to_have_text("11")
    expect(page.locator("#kpi-matched")).to_have_text("6")
    expect(page.locator("#kpi-rate")).to_have_text("54.5%")
    expect(page.locator("#kpi-tax")).to_have_text("276.72")
    for chart in CHARTS:
        expect(page.locator(f"#chart-{chart} canvas")).to_have_count(1)
    # The charts hold the figures: ECharts keeps each chart's option on its instance.
    mismatches = page.evaluate("echarts.getInstanceByDom(document.getElementById('chart-mismatches')).getOption()")
    assert mismatches["yAxis"][0]["data"] == ["PAYMENT_AMOUNT_MISMATCH"]
    assert mismatches["series"][0]["data"] == [5]
    documents = page.evaluate("echarts.getInstanceByDom(document.getElementById('chart-documents')).getOption()")
    assert sum(documents["series"][0]["data"]) == 33
    expect(page.locator("#time-t_e2e td").nth(4)).to_have_text("6")
    inspections = page.evaluate("echarts.getInstanceByDom(document.getElementById('chart-inspections')).getOption()")
    rates = dict(zip(inspections["yAxis"][0]["data"], inspections["series"][0]["data"], strict=True))
    assert rates["常规企业"] == 0  # six declared, none sampled (SW_SUPERVISION_RATE_REGULAR=0)
    expect(page.locator("#level-regular td").nth(1)).to_have_text("6")
    page.wait_for_timeout(500)  # the charts' entry animation
    screenshot(page, "console-dashboard")

    # htmx refreshes the live part (here at once, as its timer would), and the charts are drawn again.
    with page.expect_response(re.compile(r"/console/dashboard/live\?range=24h")):
        page.evaluate("htmx.trigger(document.getElementById('dashboard-live'), 'every 30s')")
        page.evaluate(
            "htmx.ajax('GET', '/console/dashboard/live?range=24h', {target: '#dashboard-live', swap: 'outerHTML'})"
        )
    for chart in CHARTS:
        expect(page.locator(f"#chart-{chart} canvas")).to_have_count(1)

    page.click("#switch-language")
    expect(page.locator("h1")).to_have_text("Statistics")
    for chart in CHARTS:
        expect(page.locator(f"#chart-{chart} canvas")).to_have_count(1)
    page.wait_for_timeout(500)
    screenshot(page, "console-dashboard-en")

    page.select_option("#dash-range", "all")
    page.fill("input[name=ebpCode]", "0000000000")
    page.click("#dash-apply")
    expect(page).to_have_url(re.compile(r"range=all"))
    expect(page.locator("#kpi-purchases")).to_have_text("0")
    assert watch.blocked == [], "the dashboard asked for files from outside this machine"
    assert watch.errors == []
