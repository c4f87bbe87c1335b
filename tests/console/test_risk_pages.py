"""The console's risk pages over HTTP: the warning queue with its handling forms (CSRF, officials and admins
only, the API's state machine), the record page's warnings and decision, an enterprise's credit page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.config import Settings
from tests.conftest import ADMIN, serving
from tests.console.test_dashboard_page import chart_data
from tests.console.test_pages import csrf_of, official_key, sign_in
from tests.factories import Parties, file_parties, post_triple, purchase

SELLER = "3120960A02"
WARNING_ROW = re.compile(r'<tr id="warning-(\d+)" class="warning-(\w+)">')


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    # R3 at two buyers per telephone: warnings with few purchases; no sampling of regular enterprises.
    async with serving(settings, risk_ids_per_phone=2, supervision_rate_regular=0.0) as (_, http):
        yield http


async def shared_phone(client: httpx.AsyncClient, parties: Parties, count: int) -> list[dict[str, Any]]:
    shared = {"consigneeTelephone": "13912345678"}
    triples = [purchase(own_buyer=True, order=shared, waybill=shared) for _ in range(count)]
    return [(await post_triple(client, parties, t))[-1].json() for t in triples]


def rows(page: httpx.Response) -> list[tuple[int, str]]:
    return [(int(i), status) for i, status in WARNING_ROW.findall(page.text)]


async def test_risk_pages_need_an_officials_session(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    for path in ("/console/warnings", f"/console/enterprises/{SELLER}", f"/console/enterprises?code={SELLER}"):
        response = await client.get(path)
        assert (response.status_code, response.headers["location"]) == (303, "/console/sign-in"), path
    posted = await client.post("/console/warnings/1", data={"action": "dismiss", "note": "x"})
    assert (posted.status_code, posted.headers["location"]) == (303, "/console/sign-in")
    # An enterprise's key does not open a console session, so none of these pages.
    enterprise_key = parties.seller["X-API-Key"]
    assert (await sign_in(client, enterprise_key)).status_code == 403
    assert (await client.get("/console/warnings")).status_code == 303


async def test_queue_filters_and_handles_warnings_with_a_note(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    receipts = await shared_phone(client, parties, 3)  # the 2nd and 3rd warn (R3)
    await sign_in(client, await official_key(client))
    queue = await client.get("/console/warnings")
    assert queue.status_code == 200
    found = rows(queue)
    assert [status for _, status in found] == ["open", "open"]
    assert "同一收货电话关联的订购人过多" in queue.text
    assert f'href="/console/records/{receipts[1]["recordId"]}"' in queue.text
    assert f'href="/console/enterprises/{SELLER}"' in queue.text
    first, second = (warning_id for warning_id, _ in found)

    token = csrf_of(queue)
    forged = await client.post(f"/console/warnings/{first}", data={"action": "escalate", "note": "x"})
    assert forged.status_code == 403
    wrong = await client.post(
        f"/console/warnings/{first}", data={"action": "escalate", "note": "x", "csrf_token": token + "x"}
    )
    assert wrong.status_code == 403
    no_note = await client.post(f"/console/warnings/{first}", data={"action": "escalate", "csrf_token": token})
    assert no_note.status_code == 422
    bad = await client.post(f"/console/warnings/{first}", data={"action": "close", "note": "x", "csrf_token": token})
    assert bad.status_code == 422
    api = (await client.get("/api/v1/risk/warnings", headers=ADMIN)).json()["items"]
    assert [w["status"] for w in api] == ["open", "open"]  # nothing refused changed anything

    done = await client.post(
        f"/console/warnings/{first}",
        data={
            "action": "acknowledge",
            "note": "已电话核实收货人",
            "back": "/console/warnings?status=all",
            "csrf_token": token,
        },
    )
    assert (done.status_code, done.headers["location"]) == (303, "/console/warnings?status=all")
    escalated = await client.post(
        f"/console/warnings/{second}",
        data={"action": "escalate", "note": "转缉私", "back": "https://evil.example/", "csrf_token": token},
    )
    assert escalated.headers["location"] == "/console/warnings"  # no open redirect
    again = await client.post(
        f"/console/warnings/{second}", data={"action": "dismiss", "note": "x", "csrf_token": token}
    )
    assert again.status_code == 409
    missing = await client.post("/console/warnings/99999", data={"action": "dismiss", "note": "x", "csrf_token": token})
    assert missing.status_code == 404

    api = {w["id"]: w for w in (await client.get("/api/v1/risk/warnings", headers=ADMIN)).json()["items"]}
    assert (api[first]["status"], api[first]["note"]) == ("acknowledged", "已电话核实收货人")
    assert api[second]["status"] == "escalated"
    assert api[first]["handledBy"].startswith("official:")
    timeline = (await client.get(f"/api/v1/records/{receipts[1]['recordId']}", headers=ADMIN)).json()["timeline"]
    assert [e["detail"]["to"] for e in timeline if e["kind"] == "risk_warning_handled"] == ["acknowledged"]

    assert rows(await client.get("/console/warnings")) == []  # open by default: none left
    every = rows(await client.get("/console/warnings?status=all"))
    assert every == [(first, "acknowledged"), (second, "escalated")]
    acknowledged = await client.get("/console/warnings?status=acknowledged&rule=R3")
    assert rows(acknowledged) == [(first, "acknowledged")]
    assert 'value="dismiss"' in acknowledged.text
    assert 'value="acknowledge"' not in acknowledged.text
    assert rows(await client.get("/console/warnings?status=all&enterprise=3120960A99")) == []
    assert rows(await client.get("/console/warnings?status=all&rule=R1")) == []
    assert (await client.get("/console/warnings?rule=R99")).status_code == 422
    assert (await client.get("/console/warnings?enterprise=<script>")).status_code == 422


async def test_record_page_shows_its_decision_and_warnings(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    first, second = await shared_phone(client, parties, 2)
    await sign_in(client, await official_key(client))
    page = await client.get(f"/console/records/{second['recordId']}")
    assert page.status_code == 200
    assert 'id="decision">放行(未抽中查验)<' in page.text
    assert "常规企业" in page.text
    assert "WARNING_R3" in page.text
    [(warning_id, status)] = rows(page)
    assert status == "open"
    assert f'action="/console/warnings/{warning_id}"' in page.text
    back = f"/console/records/{second['recordId']}"
    assert f'name="back" value="{back}"' in page.text
    quiet = await client.get(f"/console/records/{first['recordId']}")
    assert rows(quiet) == []
    assert 'id="no-warnings"' in quiet.text
    english = await client.post("/console/language", data={"lang": "en", "back": back, "csrf_token": csrf_of(page)})
    assert english.status_code == 303
    page = await client.get(back)
    assert "Released (not selected for inspection)" in page.text
    assert "Too many buyer IDs share one consignee telephone" in page.text


async def test_enterprise_page_shows_credit_history_score_and_warnings(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    await shared_phone(client, parties, 3)
    level = {"level": "certified", "basis": "海关认证企业标准审核通过 AEOCN3120960A02", "effectiveDate": "2026-11-01"}
    assert (await client.put(f"/api/v1/enterprises/{SELLER}/credit", json=level, headers=ADMIN)).status_code == 200
    await sign_in(client, await official_key(client))
    found = await client.get(f"/console/enterprises?code={SELLER}")
    assert (found.status_code, found.headers["location"]) == (303, f"/console/enterprises/{SELLER}")
    page = await client.get(f"/console/enterprises/{SELLER}")
    assert page.status_code == 200
    assert 'id="credit-level">认证企业<' in page.text
    assert "AEOCN3120960A02" in page.text
    assert "常规企业 → <strong>认证企业</strong>" in page.text
    api = (await client.get(f"/api/v1/enterprises/{SELLER}/risk", headers=ADMIN)).json()
    assert f'id="local-score"><strong>{api["localScore"]}</strong>' in page.text
    assert api["openWarnings"] == {"R3": 2}
    assert '<code class="rule">R3</code> × 2' in page.text
    assert len(rows(page)) == 2
    assert (await client.get("/console/enterprises/NOSUCH0001")).status_code == 404
    assert (await client.get("/console/enterprises?code=../admin")).status_code == 404


async def test_dashboard_shows_inspection_rate_by_level_and_warnings_by_rule(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    await shared_phone(client, parties, 6)  # five R3 warnings, six declarations released (regular, rate 0)
    await sign_in(client, await official_key(client))
    page = await client.get("/console/dashboard")
    data = chart_data(page)
    assert data["warnings"] == [["R3", 5]]
    assert ["常规企业", 0.0] in data["inspections"]
    assert ["失信企业", None] in data["inspections"]  # no declaration: no rate
    assert '<tr id="level-regular"><td>常规企业</td><td>6</td><td>0</td><td>0</td>' in page.text
    assert '<a href="/console/warnings?rule=R3">R3</a>' in page.text
