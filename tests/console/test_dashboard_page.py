"""The dashboard page over HTTP: behind the session, its figures in the page for the charts (in the chosen
language, filtered by period and party), its live part for htmx, and its content security policy."""

from __future__ import annotations

import json
import re

import httpx

from tests.console.test_pages import official_key, sign_in
from tests.factories import file_parties, post_triple, purchase

DATA = re.compile(r'<script type="application/json" id="dashboard-data">(.*?)</script>', re.S)


def chart_data(page: httpx.Response) -> dict[str, object]:
    assert page.status_code == 200, page.text
    match = DATA.search(page.text)
    assert match, page.text
    data: dict[str, object] = json.loads(match.group(1))
    return data


async def test_dashboard_needs_a_session(client: httpx.AsyncClient) -> None:
    response = await client.get("/console/dashboard")
    assert (response.status_code, response.headers["location"]) == (303, "/console/sign-in")
    live = await client.get("/console/dashboard/live", headers={"HX-Request": "true"})
    assert live.headers["HX-Redirect"] == "/console/sign-in"


async def test_dashboard_shows_the_figures_for_the_charts(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    for _ in range(5):
        await post_triple(client, parties, purchase(own_buyer=True, payment={"amountPaid": "240.00"}))
    await sign_in(client, await official_key(client))
    page = await client.get("/console/dashboard")
    data = chart_data(page)
    assert data["mismatches"] == [["PAYMENT_AMOUNT_MISMATCH", 5]]
    assert 'id="kpi-purchases">5<' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "style-src-attr 'unsafe-inline'" in policy

    live = await client.get("/console/dashboard/live?range=7d", headers={"HX-Request": "true"})
    assert 'hx-get="/console/dashboard/live?range=7d"' in live.text
    assert chart_data(live)["bucket"] == "day"

    elsewhere = chart_data(await client.get("/console/dashboard?range=all&ebpCode=0000000000"))
    assert elsewhere["mismatches"] == []
    # Nonsense in the query is the default view, not an error page.
    assert chart_data(await client.get("/console/dashboard?range=forever"))["bucket"] == "hour"
