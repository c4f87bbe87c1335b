"""Subscriptions through HTTP: register (secret once), list, pause / resume, delete, rotate; who may; the SSRF
guard at registration."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.config import Settings
from app.schemas import examples
from tests.conftest import ADMIN, serving
from tests.factories import file_enterprise

PLATFORM, SELLER = examples.ENTERPRISES[0]["code"], examples.ENTERPRISES[1]["code"]
URL = "http://127.0.0.1:9/hooks"
BASE = f"/api/v1/enterprises/{PLATFORM}/subscriptions"


def subscription(**overrides: Any) -> dict[str, Any]:
    return {"url": URL, "events": ["status_changed", "document_receipt"], "format": "json"} | overrides


async def file_two(http: httpx.AsyncClient) -> tuple[dict[str, str], dict[str, str]]:
    platform = await file_enterprise(http, PLATFORM, "平台", ["platform"])
    seller = await file_enterprise(http, SELLER, "电商企业", ["seller"])
    return platform, seller


async def test_register_list_pause_rotate_delete(settings: Settings) -> None:
    async with serving(settings, webhook_allow_private=True) as (_, http):
        platform, _ = await file_two(http)
        created = await http.post(BASE, json=subscription(), headers=platform)
        assert created.status_code == 201, created.text
        body = created.json()
        secret = body["secret"]
        assert secret.startswith("whsec_")
        assert body["events"] == ["document_receipt", "status_changed"]
        assert body["status"] == "active"
        assert body["failingSince"] is None

        listed = (await http.get(BASE, headers=platform)).json()["items"]
        assert [s["id"] for s in listed] == [body["id"]]
        assert "secret" not in listed[0]

        paused = await http.patch(f"{BASE}/{body['id']}", json={"status": "paused"}, headers=platform)
        assert paused.status_code == 200
        assert paused.json()["status"] == "paused"
        resumed = await http.patch(f"{BASE}/{body['id']}", json={"status": "active"}, headers=ADMIN)
        assert resumed.json()["status"] == "active"

        rotated = await http.post(f"{BASE}/{body['id']}/rotate-secret", headers=platform)
        assert rotated.status_code == 200, rotated.text
        assert rotated.json()["secret"] not in (secret, None)
        assert rotated.json()["secretRotatedUntil"] is not None

        deleted = await http.delete(f"{BASE}/{body['id']}", headers=platform)
        assert deleted.status_code == 204
        gone = await http.get(f"{BASE}/{body['id']}", headers=platform)
        assert gone.status_code == 404
        assert gone.json()["code"] == "SUBSCRIPTION_NOT_FOUND"


async def test_another_enterprise_neither_sees_nor_changes_them(settings: Settings) -> None:
    async with serving(settings, webhook_allow_private=True) as (_, http):
        platform, seller = await file_two(http)
        created = (await http.post(BASE, json=subscription(), headers=platform)).json()
        assert (await http.get(BASE, headers=seller)).status_code == 404
        assert (await http.post(BASE, json=subscription(), headers=seller)).status_code == 404
        own = f"/api/v1/enterprises/{SELLER}/subscriptions/{created['id']}"
        assert (await http.delete(own, headers=seller)).status_code == 404
        assert (await http.get(f"{BASE}/{created['id']}", headers=ADMIN)).status_code == 200


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://127.0.0.1:8080/hooks", "loopback"),
        ("http://[::1]/hooks", "loopback"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("https://10.0.0.7/hooks", "private"),
        ("http://localhost/hooks", "loopback"),
        ("ftp://example.com/hooks", "http(s)"),
        ("https://user:pw@example.com/hooks", "credentials"),
    ],
)
async def test_urls_reaching_our_own_network_are_refused(client: httpx.AsyncClient, url: str, fragment: str) -> None:
    platform = await file_enterprise(client, PLATFORM, "平台", ["platform"])
    refused = await client.post(BASE, json=subscription(url=url), headers=platform)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "SUBSCRIPTION_URL_REFUSED"
    assert fragment in problem["detail"]


async def test_bad_input_is_a_clear_422(settings: Settings) -> None:
    async with serving(settings, webhook_allow_private=True) as (_, http):
        platform, _ = await file_two(http)
        for body in (
            subscription(events=["everything"]),
            subscription(events=[]),
            subscription(format="csv"),
            subscription(exchange="sw.events"),
            subscription(url="amqp://guest:guest@127.0.0.1:5672/"),
        ):
            answer = await http.post(BASE, json=body, headers=platform)
            assert answer.status_code == 422, (body, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")


async def test_every_subscription_act_is_in_the_audit_trail(settings: Settings) -> None:
    async with serving(settings, webhook_allow_private=True) as (_, http):
        platform, _ = await file_two(http)
        created = (await http.post(BASE, json=subscription(), headers=platform)).json()
        await http.patch(f"{BASE}/{created['id']}", json={"status": "paused"}, headers=platform)
        await http.post(f"{BASE}/{created['id']}/rotate-secret", headers=ADMIN)
        await http.post(f"{BASE}/{created['id']}/replay", json={"after": "0.0"}, headers=platform)
        await http.delete(f"{BASE}/{created['id']}", headers=platform)
        trail = await http.get("/api/v1/audit", params={"targetKind": "subscription"}, headers=ADMIN)
        assert trail.status_code == 200, trail.text
        entries = list(reversed(trail.json()["items"]))
    assert [e["action"] for e in entries] == [
        "subscription.created",
        "subscription.changed",
        "subscription.secret_rotated",
        "subscription.replayed",
        "subscription.deleted",
    ]
    assert {e["targetId"] for e in entries} == {created["id"]}
    assert entries[0]["actorId"] == PLATFORM
    assert entries[1]["before"]["status"] == "active"
    assert entries[1]["after"]["status"] == "paused"
    assert entries[2]["actorKind"] == "admin"
    assert entries[4]["before"]["url"] == URL
    assert all("secret" not in (e["after"] or {}) for e in entries)
