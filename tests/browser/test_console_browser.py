"""In a real browser: the docs work offline, and an official signs in, searches, reads a mismatched record
with its disagreeing fields highlighted, is refused a form without its CSRF token, and signs out — with no
JavaScript error on any page."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from app.schemas import examples
from tests.browser.conftest import Site, Watch, screenshot


def sign_in(page: Page, site: Site, key: str) -> None:
    page.goto(f"{site.base}/console")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    page.fill("input[name=key]", key)
    page.click("button[type=submit].primary")
    expect(page).to_have_url(re.compile(r"/console/records$"))


def test_swagger_ui_renders_offline_with_the_authorize_button_in_view(page: Page, site: Site, watch: Watch) -> None:
    page.goto(f"{site.base}/docs")
    authorize = page.locator("button.authorize")
    expect(authorize).to_be_visible(timeout=15_000)
    expect(page.locator(".opblock-tag-section").first).to_be_visible()
    box = authorize.bounding_box()
    assert box is not None
    assert box["y"] < 900, f"the Authorize button is {box['y']:.0f} px down: out of the first screen"
    screenshot(page, "docs-swagger-ui", full_page=False)  # the first screen, as a newcomer sees it
    page.goto(f"{site.base}/redoc")
    expect(page.get_by_role("heading", name=re.compile("Single Window")).first).to_be_visible(timeout=15_000)
    screenshot(page, "docs-redoc", full_page=False)
    page.goto(f"{site.base}/reason-codes")
    expect(page.locator("#PAYER_NOT_BUYER")).to_contain_text("payerIdNumber")
    screenshot(page, "reason-codes")
    assert watch.blocked == [], "the pages asked for files from outside this machine"
    assert watch.errors == []


def test_an_official_signs_in_searches_reads_a_mismatched_record_and_signs_out(
    page: Page, site: Site, watch: Watch
) -> None:
    page.goto(f"{site.base}/console/sign-in")
    screenshot(page, "console-sign-in")
    sign_in(page, site, site.official_key)
    expect(page.locator("table.records tbody tr")).to_have_count(2)
    screenshot(page, "console-records")

    # Live search: typing narrows the results without a page load (htmx), and the address follows.
    page.fill("input[name=orderNo]", examples.MISMATCHED_ORDER["orderNo"])
    expect(page.locator("table.records tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"orderNo=GW20261123000102"))
    screenshot(page, "console-search")

    page.click(f"a[href='/console/records/{site.mismatched_record}']")
    expect(page.locator("#record-status")).to_have_text("对碰不一致")
    # The colours below are computed from the stylesheet: on a busy machine it can arrive after the table does.
    page.wait_for_load_state("load")
    expect(page.locator("#verdict")).to_contain_text("三单不一致")
    highlighted = page.locator("table.compare td.mismatch")
    expect(highlighted).to_have_count(6)
    fields = sorted(highlighted.evaluate_all("cells => cells.map(c => c.dataset.field)"))
    assert fields == sorted(
        [
            "order.acturalPaid",
            "payment.amountPaid",
            "order.buyerName",
            "payment.payerName",
            "order.buyerIdNumber",
            "payment.payerIdNumber",
        ]
    )
    # Highlighted means drawn differently, not only a class name.
    plain = page.locator("table.compare td[data-field='order.orderNo']")
    assert highlighted.first.evaluate("c => getComputedStyle(c).backgroundColor") != plain.evaluate(
        "c => getComputedStyle(c).backgroundColor"
    )
    expect(page.locator("table.discrepancies")).to_contain_text("支付人与订购人不一致")
    expect(page.locator("table.discrepancies")).to_contain_text("The payer is not the buyer")
    screenshot(page, "console-record-mismatched")

    page.click("#switch-language")
    expect(page.locator("#record-status")).to_have_text("Mismatched")
    screenshot(page, "console-record-mismatched-en")
    page.click("#switch-language")

    page.goto(f"{site.base}/console/records/{site.cleared_record}")
    expect(page.locator("#record-status")).to_have_text("已放行", timeout=15_000)  # the page polls until then
    expect(page.locator("table.compare td.mismatch")).to_have_count(0)
    screenshot(page, "console-record-cleared")

    page.click("#sign-out")
    expect(page).to_have_url(re.compile(r"/console/sign-in\?reason=signed_out$"))
    page.goto(f"{site.base}/console/records")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    assert watch.blocked == []
    assert watch.errors == []


def test_a_form_without_its_csrf_token_is_refused(page: Page, site: Site, watch: Watch) -> None:
    sign_in(page, site, site.official_key)
    # As a forged form would: the same post without the token the page put in it.
    page.locator("form[action='/console/sign-out'] input[name=csrf_token]").evaluate("input => input.remove()")
    with page.expect_response(f"{site.base}/console/sign-out") as answer:
        page.click("#sign-out")
    assert answer.value.status == 403
    expect(page.locator("p.error")).to_contain_text("防伪令牌")
    screenshot(page, "console-csrf-refused")
    page.goto(f"{site.base}/console/records")  # the session is still there: nothing was done
    expect(page).to_have_url(re.compile(r"/console/records$"))
    assert watch.errors == ["console: Failed to load resource: the server responded with a status of 403 (Forbidden)"]
