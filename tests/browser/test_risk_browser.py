"""In a real browser: an official works the risk warning queue — filters it, escalates a warning with a note,
opens a record and sees its decision and warnings, acknowledges one there, reads the seller's credit page —
and a handling form without its CSRF token is refused; no JavaScript error, no request out."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from app.schemas import examples
from tests.browser.conftest import Site, Watch, filed_service, screenshot
from tests.browser.test_dashboard_browser import sign_in
from tests.factories import purchase

SELLER = examples.ORDER["ebcCode"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Four buyers sharing one consignee telephone: the third and fourth raise R3 (≥ 3 buyer IDs per phone)."""
    with filed_service(tmp_path_factory.mktemp("risk")) as service:
        http, keys, admin = service.http, service.keys, service.admin
        shared = {"consigneeTelephone": "13912345678"}
        for order, payment, waybill in [purchase(own_buyer=True, order=shared, waybill=shared) for _ in range(4)]:
            http.post("/api/v1/orders", json=order, headers=keys["platform"]).raise_for_status()
            http.post("/api/v1/payments", json=payment, headers=keys["payment"]).raise_for_status()
            http.post("/api/v1/waybills", json=waybill, headers=keys["logistics"]).raise_for_status()
        warnings = http.get("/api/v1/risk/warnings", headers=admin).raise_for_status().json()["items"]
        assert [w["rule"] for w in warnings] == ["R3", "R3"], warnings
        official = http.post("/api/v1/officials", json={"label": "风险防控岗"}, headers=admin)
        yield Site(service.base, official.raise_for_status().json()["key"], warnings[1]["recordId"], "")


def test_an_official_works_the_warning_queue(page: Page, site: Site, watch: Watch) -> None:
    sign_in(page, site)
    page.click("#nav-warnings")
    expect(page).to_have_url(re.compile(r"/console/warnings$"))
    rows = page.locator("table.warnings tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("同一收货电话关联的订购人过多")
    expect(rows.first.locator(".wstatus")).to_have_text("待处理")
    screenshot(page, "console-warnings")

    # Escalate the first with a note: back on the queue (open only), one left.
    first = rows.first
    first.locator("input[name=note]").fill("同一电话四个订购人,转缉私部门核查")
    first.locator("button[value=escalate]").click()
    expect(page).to_have_url(re.compile(r"/console/warnings$"))
    expect(rows).to_have_count(1)
    page.select_option("select[name=status]", "all")
    page.click("#warning-filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"status=all"))
    expect(rows).to_have_count(2)
    expect(rows.first.locator(".wstatus")).to_have_text("已上报")
    expect(rows.first).to_contain_text("转缉私部门核查")
    expect(rows.first.locator("form.handle")).to_have_count(0)  # escalated is final
    screenshot(page, "console-warnings-all")

    # The record of the other warning: inspected because of it (SW_RISK_INSPECT_ON_WARNING's default), the
    # reasons, and the warning with its forms.
    page.click(f"a[href='/console/records/{site.mismatched_record}']")
    expect(page.locator("#decision")).to_have_text("查验")
    expect(page.locator("#decision-reasons")).to_contain_text("WARNING_R3")
    warning = page.locator("#risk table.warnings tbody tr")
    expect(warning).to_have_count(1)
    warning.locator("input[name=note]").fill("已电话核实,收货人为同一物业代收点")
    warning.locator("button[value=acknowledge]").click()
    expect(page).to_have_url(re.compile(rf"/console/records/{site.mismatched_record}$"))
    expect(warning.locator(".wstatus")).to_have_text("已确认")
    expect(page.locator("table.timeline")).to_contain_text("risk_warning_handled")
    page.locator("#risk").evaluate("section => section.scrollIntoView()")
    screenshot(page, "console-record-risk", full_page=False)

    # The seller's credit page, from the box in the bar.
    page.fill("#nav-enterprise", SELLER)
    page.press("#nav-enterprise", "Enter")
    expect(page).to_have_url(re.compile(rf"/console/enterprises/{SELLER}$"))
    expect(page.locator("#credit-level")).to_have_text("常规企业")
    expect(page.locator("#local-score")).to_contain_text("/ 100")
    expect(page.locator("table.warnings tbody tr")).to_have_count(2)
    screenshot(page, "console-enterprise")
    page.click("#switch-language")
    expect(page.locator("#credit-level")).to_have_text("Regular")
    screenshot(page, "console-enterprise-en")
    assert watch.blocked == []
    assert watch.errors == []


def test_a_handling_form_without_its_csrf_token_is_refused(page: Page, site: Site, watch: Watch) -> None:
    sign_in(page, site)
    page.goto(f"{site.base}/console/warnings?status=all")
    form = page.locator("form.handle").first
    form.locator("input[name=csrf_token]").evaluate("input => input.remove()")
    form.locator("input[name=note]").fill("伪造的请求")
    with page.expect_response(re.compile(r"/console/warnings/\d+$")) as answer:
        form.locator("button[value=dismiss]").click()
    assert answer.value.status == 403
    expect(page.locator("p.error")).to_contain_text("防伪令牌")
    page.goto(f"{site.base}/console/warnings?status=dismissed")
    expect(page.locator("table.warnings tbody tr")).to_have_count(0)  # nothing was done
    assert watch.errors == ["console: Failed to load resource: the server responded with a status of 403 (Forbidden)"]
