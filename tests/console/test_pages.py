"""The console over HTTP: sign-in into a session cookie, CSRF on every form, the search and the record page
showing what the JSON API shows the same key, sign-out and the idle timeout."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
import pytest
from fastapi import FastAPI

from app.db import utcnow
from app.models import ApiKey
from app.schemas import examples
from tests.conftest import ADMIN, ADMIN_TOKEN, serving
from tests.factories import Parties, file_parties, post_triple

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    match = CSRF.search(page.text)
    assert match, page.text
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    form = await client.get("/console/sign-in")
    return await client.post("/console/sign-in", data={"key": key, "csrf_token": csrf_of(form)})


async def official_key(client: httpx.AsyncClient) -> str:
    response = await client.post("/api/v1/officials", json={"label": "张三 · 杭州海关"}, headers=ADMIN)
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


async def mismatched_record(client: httpx.AsyncClient, parties: Parties) -> str:
    triple = (examples.MISMATCHED_ORDER, examples.MISMATCHED_PAYMENT, examples.MISMATCHED_WAYBILL)
    receipts = await post_triple(client, parties, triple)
    record_id: str = receipts[-1].json()["recordId"]
    return record_id


async def test_sign_in_sets_a_strict_http_only_session_cookie_without_the_key(client: httpx.AsyncClient) -> None:
    key = await official_key(client)
    response = await sign_in(client, key)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/records"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over HTTPS the cookie is Secure (next test)
    assert key not in cookie
    assert key.split("_")[1] not in cookie
    page = await client.get("/console/records")
    assert page.status_code == 200
    assert "三单交换记录查询" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_the_cookie_is_secure_over_https(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://console.example") as client:
        response = await sign_in(client, ADMIN_TOKEN)
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]


async def test_pages_need_a_session(client: httpx.AsyncClient) -> None:
    response = await client.get("/console/records")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in"
    live = await client.get(
        "/console/records/00000000-0000-0000-0000-000000000000/live", headers={"HX-Request": "true"}
    )
    assert live.headers["HX-Redirect"] == "/console/sign-in"
    # An API key header is no way in: the console reads its own session only.
    assert (await client.get("/console/records", headers=ADMIN)).status_code == 303


async def test_enterprise_keys_and_bad_keys_are_refused(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    refused = await sign_in(client, parties.platform["X-API-Key"])
    assert refused.status_code == 403
    assert "控制台仅供监管人员和管理员使用" in refused.text
    wrong = await sign_in(client, "sw_000000000000_not-a-key")
    assert wrong.status_code == 401
    assert "密钥无效" in wrong.text
    assert (await client.get("/console/records")).status_code == 303


async def test_every_form_is_refused_without_its_csrf_token(client: httpx.AsyncClient) -> None:
    form = await client.get("/console/sign-in")
    token = csrf_of(form)
    no_token = await client.post("/console/sign-in", data={"key": ADMIN_TOKEN})
    assert no_token.status_code == 403
    assert "防伪令牌" in no_token.text
    wrong = await client.post("/console/sign-in", data={"key": ADMIN_TOKEN, "csrf_token": token + "x"})
    assert wrong.status_code == 403
    assert (await client.get("/console/records")).status_code == 303  # not signed in by either
    assert (await sign_in(client, ADMIN_TOKEN)).status_code == 303
    # The sign-in gave a new token: the one seen before it no longer works.
    assert (await client.post("/console/sign-out", data={"csrf_token": token})).status_code == 403
    assert (await client.post("/console/sign-out")).status_code == 403
    assert (await client.post("/console/language", data={"lang": "en"})).status_code == 403
    assert (await client.get("/console/records")).status_code == 200  # still signed in


async def test_sign_out_ends_the_session(client: httpx.AsyncClient) -> None:
    await sign_in(client, ADMIN_TOKEN)
    page = await client.get("/console/records")
    response = await client.post("/console/sign-out", data={"csrf_token": csrf_of(page)})
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in?reason=signed_out"
    assert (await client.get("/console/records")).status_code == 303


async def test_a_revoked_official_key_ends_its_session(app: FastAPI, client: httpx.AsyncClient) -> None:
    issued = await client.post("/api/v1/officials", json={"label": "李四"}, headers=ADMIN)
    await sign_in(client, issued.json()["key"])
    assert (await client.get("/console/records")).status_code == 200
    # Officials' keys have no revocation route yet: revoke the row as an admin tool would.
    async with app.state.sessionmaker() as session, session.begin():
        key = await session.get(ApiKey, uuid.UUID(issued.json()["id"]))
        key.revoked_at = utcnow()
    response = await client.get("/console/records")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in?reason=invalid"


async def test_an_idle_session_times_out(settings: object) -> None:
    async with serving(settings, console_idle_timeout_s=60) as (app, client):  # type: ignore[arg-type]
        await sign_in(client, ADMIN_TOKEN)
        assert (await client.get("/console/records")).status_code == 200
        codec = app.state.console_sessions
        # A cookie last signed 61 s ago: what the browser holds after a minute without a request.
        session, _ = codec.read(_request_with(client.cookies["sw_console"]))
        stale = codec._serializer
        stale_cookie = _signed_at(stale, session.model_dump(), seconds_ago=61)
        client.cookies.set("sw_console", stale_cookie, path="/console")
        response = await client.get("/console/records")
        assert response.status_code == 303
        assert response.headers["location"] == "/console/sign-in?reason=expired"


def _request_with(cookie: str) -> object:
    from starlette.requests import Request

    return Request({"type": "http", "headers": [(b"cookie", f"sw_console={cookie}".encode())]})


def _signed_at(serializer: object, data: dict[str, object], seconds_ago: int) -> str:
    import time
    from unittest.mock import patch

    with patch("time.time", return_value=time.time() - seconds_ago):
        return serializer.dumps(data)  # type: ignore[attr-defined,no-any-return]


async def test_search_finds_records_as_the_api_shows_them(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    record_id = await mismatched_record(client, parties)
    await sign_in(client, await official_key(client))
    # As the browser sends the form: every field, the empty ones blank.
    blank = dict.fromkeys(("payTransactionId", "logisticsNo", "buyerIdNumber", "ebpCode", "status", "createdTo"), "")
    page = await client.get("/console/records", params={"orderNo": examples.MISMATCHED_ORDER["orderNo"], **blank})
    assert page.status_code == 200
    assert f"/console/records/{record_id}" in page.text
    assert "对碰不一致" in page.text
    assert "PAYMENT_AMOUNT_MISMATCH" in page.text
    api = (await client.get(f"/api/v1/records/{record_id}", headers=ADMIN)).json()
    assert api["buyerIdNumber"] in page.text  # what the API shows an official, no more and no less
    none = await client.get("/console/records", params={"status": "CLEARED"})
    assert "没有符合条件的记录" in none.text
    by_payment = await client.get(
        "/console/records", params={"payTransactionId": examples.MISMATCHED_PAYMENT["payTransactionId"]}
    )
    assert record_id in by_payment.text
    fragment = await client.get(
        "/console/records",
        params={"ebpCode": examples.PLATFORM["code"]},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    assert record_id in fragment.text
    assert "<html" not in fragment.text  # htmx gets the results alone


@pytest.mark.parametrize("params", [{"status": "LOST"}, {"createdFrom": "yesterday"}, {"orderNo": "x" * 61}])
async def test_a_bad_search_is_a_422_page(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    await sign_in(client, ADMIN_TOKEN)
    response = await client.get("/console/records", params=params)
    assert response.status_code == 422
    assert "查询条件有误" in response.text


async def test_record_page_shows_the_documents_side_by_side_with_the_disagreeing_fields(
    client: httpx.AsyncClient,
) -> None:
    parties = await file_parties(client)
    record_id = await mismatched_record(client, parties)
    await sign_in(client, ADMIN_TOKEN)
    page = await client.get(f"/console/records/{record_id}")
    assert page.status_code == 200
    text = page.text
    assert "三单不一致:3 处差异,未申报。" in text
    marked = set(re.findall(r'class="mismatch" data-field="([^"]+)"', text))
    assert marked == {
        "order.acturalPaid",
        "payment.amountPaid",
        "order.buyerName",
        "payment.payerName",
        "order.buyerIdNumber",
        "payment.payerIdNumber",
    }
    assert "支付单支付金额与订单实际支付金额不一致" in text
    assert "Payment amountPaid differs from the order&#39;s acturalPaid" in text
    assert "246.12" in text
    assert "240.00" in text
    assert "新增申报成功" in text  # the documents' receipts
    assert "documents_disagree" in text  # the timeline


async def test_the_record_page_of_a_cleared_purchase(settings: object) -> None:
    async with serving(settings, embedded_dispatcher=True, dispatch_poll_s=0.05) as (_, client):  # type: ignore[arg-type]
        parties = await file_parties(client)
        receipts = await post_triple(client, parties, (examples.ORDER, examples.PAYMENT, examples.WAYBILL))
        record_id = receipts[-1].json()["recordId"]
        await sign_in(client, ADMIN_TOKEN)
        declared = await client.get(f"/console/records/{record_id}/live", headers={"HX-Request": "true"})
        if "已放行" not in declared.text:  # still with the agencies: the page keeps asking
            assert 'hx-trigger="every 3s"' in declared.text
        for _ in range(200):  # the embedded dispatcher delivers to the mock agencies
            if (await client.get(f"/api/v1/records/{record_id}", headers=ADMIN)).json()["status"] == "CLEARED":
                break
            await asyncio.sleep(0.05)
        page = await client.get(f"/console/records/{record_id}")
        assert page.status_code == 200
        assert "46.12" in page.text  # the tax
        assert 'class="mismatch"' not in page.text
        live = await client.get(f"/console/records/{record_id}/live", headers={"HX-Request": "true"})
        assert live.status_code == 200
        assert 'id="live"' in live.text
        assert '<div id="agencies" hx-swap-oob="true">' in live.text
        assert "hx-trigger" not in live.text  # CLEARED: nothing more will happen, the polling stops
        assert "<html" not in live.text


async def test_an_unknown_record_is_a_404_page(client: httpx.AsyncClient) -> None:
    await sign_in(client, ADMIN_TOKEN)
    response = await client.get("/console/records/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert "没有该记录" in response.text


async def test_english_on_request_and_back(client: httpx.AsyncClient) -> None:
    await sign_in(client, ADMIN_TOKEN)
    page = await client.get("/console/records")
    assert '<html lang="zh-CN">' in page.text
    switched = await client.post(
        "/console/language", data={"lang": "en", "back": "/console/records", "csrf_token": csrf_of(page)}
    )
    assert switched.status_code == 303
    english = await client.get("/console/records")
    assert "Three-document exchange records" in english.text
    outside = await client.post(
        "/console/language", data={"lang": "zh", "back": "https://evil.example/", "csrf_token": csrf_of(english)}
    )
    assert outside.headers["location"] == "/console/records"
