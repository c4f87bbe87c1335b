"""Filing (一次备案), API keys, officials, delegation (委托) and the tenancy matrix, through HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.models import ApiKey
from app.schemas import examples
from tests.conftest import ADMIN
from tests.factories import file_enterprise, file_parties, key_header, post_triple, purchase

PLATFORM, SELLER, PAYMENT_FIRM, CARRIER = (e["code"] for e in examples.ENTERPRISES)
UNRELATED = "3120960X01"
ALL_ROLES = ["platform", "seller", "payment", "logistics"]
PROBLEM_JSON = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status, body
    return body


def shape(body: dict[str, Any], *identifiers: str) -> dict[str, Any]:
    """A problem body with the looked-up identifiers blanked out, to compare two 404s."""
    out = dict(body)
    for field in ("detail", "instance"):
        value = str(out.get(field, ""))
        for identifier in identifiers:
            value = value.replace(identifier, "<id>")
        out[field] = value
    return out


async def file_(client: httpx.AsyncClient, code: str, roles: list[str], name: str = "测试企业") -> httpx.Response:
    return await client.post("/api/v1/enterprises", json={"code": code, "name": name, "roles": roles}, headers=ADMIN)


async def official_key(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/api/v1/officials", json={"label": "张三 · 杭州海关"}, headers=ADMIN)
    assert response.status_code == 201, response.text
    assert response.json()["kind"] == "official"
    return key_header(response.json()["key"])


# --- filing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["3120960B01", "ABCDEFGHIJ", "0000000000", "91110000600037341L", "91350100M000100Y43"])
async def test_filing_accepts_customs_codes_and_valid_credit_codes(client: httpx.AsyncClient, code: str) -> None:
    response = await file_(client, code, ["seller", "platform"], name="东京优选")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["code"] == code
    assert body["name"] == "东京优选"
    assert body["roles"] == ["platform", "seller"]
    assert body["status"] == "active"
    read = await client.get(f"/api/v1/enterprises/{code}", headers=ADMIN)
    assert read.status_code == 200, read.text
    assert read.json() == body


@pytest.mark.parametrize(
    "code",
    [
        "312096001",  # 9 characters
        "3120960A012",  # 11 characters
        "3120960a01",  # lower case
        "3120960A-1",  # not a letter or digit
        "3120960A 1",
        "3120960中01",
        "91110000600037341K",  # 18 characters, wrong check digit
        "91350100M000100Y44",
        "9111000060003734",  # 16 characters
        "",
    ],
)
async def test_filing_rejects_malformed_codes(client: httpx.AsyncClient, code: str) -> None:
    body = assert_problem(await file_(client, code, ["platform"]), 422, "VALIDATION_FAILED")
    assert any(e["path"].endswith("code") for e in body["errors"]), body
    listing = await client.get("/api/v1/enterprises", headers=ADMIN)
    assert listing.json()["items"] == []


@pytest.mark.parametrize("roles", [["bank"], ["platform", "bank"], [], "platform", ["PLATFORM"]], ids=repr)
async def test_filing_rejects_unknown_roles(client: httpx.AsyncClient, roles: Any) -> None:
    body = assert_problem(await file_(client, "3120960B01", roles), 422, "VALIDATION_FAILED")
    assert any("roles" in e["path"] for e in body["errors"]), body


async def test_filing_twice_is_409(client: httpx.AsyncClient) -> None:
    assert (await file_(client, "3120960B01", ["platform"])).status_code == 201
    assert_problem(await file_(client, "3120960B01", ["seller"], name="另一家"), 409, "ENTERPRISE_EXISTS")
    read = await client.get("/api/v1/enterprises/3120960B01", headers=ADMIN)
    assert read.json()["roles"] == ["platform"]
    assert read.json()["name"] == "测试企业"


async def test_only_admin_files_and_patches_enterprises(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    official = await official_key(client)
    for headers in (parties.platform, official):
        response = await client.post(
            "/api/v1/enterprises", json={"code": "3120960B01", "name": "x", "roles": ["seller"]}, headers=headers
        )
        assert_problem(response, 403, "ADMIN_REQUIRED")
        response = await client.patch(f"/api/v1/enterprises/{PLATFORM}", json={"name": "x"}, headers=headers)
        assert_problem(response, 403, "ADMIN_REQUIRED")
    assert_problem(await client.get("/api/v1/enterprises/3120960B01", headers=ADMIN), 404, "ENTERPRISE_NOT_FOUND")


async def test_list_get_and_patch_enterprises(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    listing = await client.get("/api/v1/enterprises", headers=ADMIN)
    assert listing.status_code == 200
    assert [e["code"] for e in listing.json()["items"]] == sorted([PLATFORM, SELLER, PAYMENT_FIRM, CARRIER])

    renamed = await client.patch(f"/api/v1/enterprises/{PLATFORM}", json={"name": "  新名字平台 "}, headers=ADMIN)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "新名字平台"
    assert renamed.json()["roles"] == ["platform"]
    assert (await client.get(f"/api/v1/enterprises/{PLATFORM}", headers=ADMIN)).json()["name"] == "新名字平台"

    # Roles take effect for intake: without the platform role the enterprise cannot be an order's ebpCode.
    changed = await client.patch(f"/api/v1/enterprises/{PLATFORM}", json={"roles": ["seller"]}, headers=ADMIN)
    assert changed.json()["roles"] == ["seller"]
    order, _, _ = purchase()
    response = await client.post("/api/v1/orders", json=order, headers=parties.platform)
    body = assert_problem(response, 422, "ENTERPRISE_ROLE_MISSING")
    assert [e["path"] for e in body["errors"]] == ["ebpCode"]
    restored = await client.patch(
        f"/api/v1/enterprises/{PLATFORM}", json={"roles": ["platform", "seller", "platform"]}, headers=ADMIN
    )
    assert restored.json()["roles"] == ["platform", "seller"]
    assert (await client.post("/api/v1/orders", json=order, headers=parties.platform)).status_code == 201

    suspended = await client.patch(f"/api/v1/enterprises/{PLATFORM}", json={"status": "suspended"}, headers=ADMIN)
    assert suspended.status_code == 200
    assert suspended.json()["status"] == "suspended"
    assert suspended.json()["name"] == "新名字平台"
    assert suspended.json()["updatedAt"] >= suspended.json()["createdAt"]

    for patch in ({"status": "deleted"}, {"roles": []}, {"roles": ["bank"]}, {"code": "3120960B01"}, {"name": ""}):
        assert_problem(
            await client.patch(f"/api/v1/enterprises/{PLATFORM}", json=patch, headers=ADMIN), 422, "VALIDATION_FAILED"
        )
    assert_problem(
        await client.patch("/api/v1/enterprises/3120960B01", json={"name": "x"}, headers=ADMIN),
        404,
        "ENTERPRISE_NOT_FOUND",
    )


# --- keys and officials -----------------------------------------------------------------------


async def _key_rows(app: FastAPI) -> list[ApiKey]:
    async with app.state.sessionmaker() as session:
        return list(await session.scalars(select(ApiKey)))


def _row_values(row: ApiKey) -> list[str]:
    return [str(getattr(row, column.key)) for column in ApiKey.__table__.columns]


async def test_keys_are_shown_once_and_stored_hashed(app: FastAPI, client: httpx.AsyncClient) -> None:
    assert (await file_(client, PLATFORM, ["platform"])).status_code == 201
    by_admin = await client.post(f"/api/v1/enterprises/{PLATFORM}/keys", json={"label": "ERP"}, headers=ADMIN)
    assert by_admin.status_code == 201, by_admin.text
    issued = by_admin.json()
    assert issued["kind"] == "enterprise"
    assert issued["enterpriseCode"] == PLATFORM
    assert issued["label"] == "ERP"
    by_itself = await client.post(f"/api/v1/enterprises/{PLATFORM}/keys", headers=key_header(issued["key"]))
    assert by_itself.status_code == 201, by_itself.text
    official = await client.post("/api/v1/officials", json={"label": "李四"}, headers=ADMIN)
    assert official.status_code == 201
    plain_keys = {issued["key"], by_itself.json()["key"], official.json()["key"]}
    assert len(plain_keys) == 3
    assert all(len(k) >= 40 for k in plain_keys)

    rows = await _key_rows(app)
    assert len(rows) == 3
    hashes = {row.key_hash for row in rows}
    assert hashes == {hashlib.sha256(k.encode()).hexdigest() for k in plain_keys}
    for row in rows:
        for value in _row_values(row):
            for plain in plain_keys:
                assert plain not in value
                assert plain.split("_", 2)[2] not in value  # not even the secret part
    assert {row.principal_kind for row in rows} == {"enterprise", "official"}

    listing = await client.get(f"/api/v1/enterprises/{PLATFORM}/keys", headers=ADMIN)
    assert listing.status_code == 200
    items = listing.json()["items"]
    assert {i["id"] for i in items} == {issued["id"], by_itself.json()["id"]}
    for item in items:
        assert set(item) == {"id", "prefix", "label", "createdAt", "revokedAt", "expiresAt", "lastUsedAt"}
        assert item["revokedAt"] is None
    for plain in plain_keys:
        assert plain not in listing.text
        assert plain.split("_", 2)[2] not in listing.text
    for row in rows:
        assert row.key_hash not in listing.text
    # The listing by the enterprise itself is the same.
    own = await client.get(f"/api/v1/enterprises/{PLATFORM}/keys", headers=key_header(issued["key"]))
    assert own.json() == listing.json()


async def test_revoked_key_is_rejected_at_once(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    second = await client.post(f"/api/v1/enterprises/{PLATFORM}/keys", json={}, headers=parties.platform)
    second_key = key_header(second.json()["key"])
    assert (await client.get("/api/v1/records", headers=second_key)).status_code == 200

    # The enterprise revokes its own second key with its first key.
    revoked = await client.delete(
        f"/api/v1/enterprises/{PLATFORM}/keys/{second.json()['id']}", headers=parties.platform
    )
    assert revoked.status_code == 204, revoked.text
    assert_problem(await client.get("/api/v1/records", headers=second_key), 401, "UNAUTHENTICATED")
    order, _, _ = purchase()
    assert_problem(await client.post("/api/v1/orders", json=order, headers=second_key), 401, "UNAUTHENTICATED")
    listing = (await client.get(f"/api/v1/enterprises/{PLATFORM}/keys", headers=ADMIN)).json()["items"]
    assert [i["revokedAt"] is not None for i in listing] == [False, True]
    # Revoking again is harmless; the first key still works.
    again = await client.delete(f"/api/v1/enterprises/{PLATFORM}/keys/{second.json()['id']}", headers=ADMIN)
    assert again.status_code == 204
    assert (await client.post("/api/v1/orders", json=order, headers=parties.platform)).status_code == 201

    # An admin revokes the first key too: now the platform has no working key.
    first_id = listing[0]["id"]
    assert (await client.delete(f"/api/v1/enterprises/{PLATFORM}/keys/{first_id}", headers=ADMIN)).status_code == 204
    assert_problem(await client.get("/api/v1/records", headers=parties.platform), 401, "UNAUTHENTICATED")
    assert_problem(
        await client.delete(f"/api/v1/enterprises/{PLATFORM}/keys/{uuid.uuid4()}", headers=ADMIN), 404, "KEY_NOT_FOUND"
    )


async def test_official_reads_everything_but_changes_nothing(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    official = await official_key(client)
    order, payment, waybill = triple = purchase()
    responses = await post_triple(client, parties, triple)
    record_id = responses[-1].json()["recordId"]

    records = await client.get("/api/v1/records", headers=official)
    assert [r["id"] for r in records.json()["items"]] == [record_id]
    assert (await client.get(f"/api/v1/records/{record_id}", headers=official)).status_code == 200
    for path in (
        f"/api/v1/orders/{PLATFORM}/{order['orderNo']}",
        f"/api/v1/payments/{PAYMENT_FIRM}/{payment['payTransactionId']}",
        f"/api/v1/waybills/{CARRIER}/{waybill['logisticsNo']}",
        f"/api/v1/enterprises/{SELLER}",
        f"/api/v1/enterprises/{PLATFORM}/delegations",
    ):
        assert (await client.get(path, headers=official)).status_code == 200, path
    listing = await client.get("/api/v1/enterprises", headers=official)
    assert len(listing.json()["items"]) == 4

    new_order, new_payment, new_waybill = purchase()
    for path, document in (("orders", new_order), ("payments", new_payment), ("waybills", new_waybill)):
        assert_problem(
            await client.post(f"/api/v1/{path}", json=document, headers=official), 403, "ENTERPRISE_KEY_REQUIRED"
        )
        batch = await client.post(f"/api/v1/{path}/batch", json={"items": [document]}, headers=official)
        assert_problem(batch, 403, "ENTERPRISE_KEY_REQUIRED")
    filing = {"code": "3120960B01", "name": "x", "roles": ["seller"]}
    assert_problem(await client.post("/api/v1/enterprises", json=filing, headers=official), 403, "ADMIN_REQUIRED")
    assert_problem(
        await client.post(f"/api/v1/enterprises/{PLATFORM}/keys", json={}, headers=official), 403, "READ_ONLY_PRINCIPAL"
    )
    # Officials read key metadata (never secrets) but cannot revoke.
    keys = await client.get(f"/api/v1/enterprises/{PLATFORM}/keys", headers=official)
    assert keys.status_code == 200
    assert all("key" not in k for k in keys.json()["items"])
    some_key = keys.json()["items"][0]["id"]
    assert_problem(
        await client.delete(f"/api/v1/enterprises/{PLATFORM}/keys/{some_key}", headers=official),
        403,
        "READ_ONLY_PRINCIPAL",
    )
    assert_problem(await client.post("/api/v1/officials", json={"label": "x"}, headers=official), 403, "ADMIN_REQUIRED")
    assert_problem(
        await client.post(
            f"/api/v1/enterprises/{PLATFORM}/delegations",
            json={"agentCode": CARRIER, "documentTypes": ["order"]},
            headers=official,
        ),
        403,
        "READ_ONLY_PRINCIPAL",
    )
    # Nothing was stored by the refused calls.
    assert [r["id"] for r in (await client.get("/api/v1/records", headers=ADMIN)).json()["items"]] == [record_id]
    assert len((await client.get("/api/v1/enterprises", headers=ADMIN)).json()["items"]) == 4


async def test_only_admin_creates_officials(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    assert_problem(
        await client.post("/api/v1/officials", json={"label": "x"}, headers=parties.platform), 403, "ADMIN_REQUIRED"
    )
    assert_problem(await client.post("/api/v1/officials", json={}, headers=ADMIN), 422, "VALIDATION_FAILED")


@pytest.mark.parametrize(
    "key",
    [
        None,
        "",
        "garbage",
        "sw_short_x",
        "sw_000000000000_" + "A" * 43,
        ADMIN["X-API-Key"] + "x",
        ADMIN["X-API-Key"][:-1],
        "REAL_KEY_WRONG_SECRET",
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/records"),
        ("POST", "/api/v1/orders"),
        ("GET", "/api/v1/enterprises"),
        ("POST", "/api/v1/officials"),
    ],
)
async def test_missing_or_bad_key_is_401(client: httpx.AsyncClient, key: str | None, method: str, path: str) -> None:
    if key == "REAL_KEY_WRONG_SECRET":
        headers = await file_enterprise(client, PLATFORM, "平台", ["platform"])
        real = headers["X-API-Key"]
        key = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    headers = {} if key is None else {"X-API-Key": key}
    order, _, _ = purchase()
    response = await client.request(method, path, headers=headers, json=order if method == "POST" else None)
    body = assert_problem(response, 401, "UNAUTHENTICATED")
    assert response.headers["www-authenticate"]
    assert body["title"]
    if key:
        assert key not in response.text


# --- the tenancy matrix -----------------------------------------------------------------------

ROLES = ["admin", "official", "platform", "seller", "payment", "carrier", "unrelated"]


@dataclass
class World:
    keys: dict[str, dict[str, str]]
    matched: tuple[dict[str, Any], dict[str, Any], dict[str, Any]]
    matched_record: str
    awaiting_order: dict[str, Any]
    awaiting_record: str


@pytest.fixture
async def world(client: httpx.AsyncClient) -> World:
    """A matched purchase (all four parties), and a purchase with only its order (platform and seller)."""
    parties = await file_parties(client)
    unrelated = await file_enterprise(client, UNRELATED, "无关企业", ALL_ROLES)
    keys = {
        "admin": ADMIN,
        "official": await official_key(client),
        "platform": parties.platform,
        "seller": parties.seller,
        "payment": parties.payment,
        "carrier": parties.logistics,
        "unrelated": unrelated,
    }
    matched = purchase()
    responses = await post_triple(client, parties, matched)
    assert [r.status_code for r in responses] == [201, 201, 201]
    assert responses[-1].json()["recordStatus"] == "DECLARED"
    awaiting_order, _, _ = purchase()
    awaiting = await client.post("/api/v1/orders", json=awaiting_order, headers=parties.platform)
    assert awaiting.status_code == 201
    return World(keys, matched, responses[-1].json()["recordId"], awaiting_order, awaiting.json()["recordId"])


async def test_tenancy_record_list(client: httpx.AsyncClient, world: World) -> None:
    both, matched_only = {world.matched_record, world.awaiting_record}, {world.matched_record}
    expected = {
        "admin": both,
        "official": both,
        "platform": both,
        "seller": both,
        "payment": matched_only,
        "carrier": matched_only,
        "unrelated": set(),
    }
    actual = {}
    for role in ROLES:
        response = await client.get("/api/v1/records", headers=world.keys[role])
        assert response.status_code == 200
        assert response.json()["nextCursor"] is None
        actual[role] = {r["id"] for r in response.json()["items"]}
    assert actual == expected
    # Filters never widen what a key sees.
    for params in ({"orderNo": world.matched[0]["orderNo"]}, {"ebpCode": PLATFORM}, {"status": "DECLARED"}):
        response = await client.get("/api/v1/records", params=params, headers=world.keys["unrelated"])
        assert response.json() == {"items": [], "nextCursor": None}
    response = await client.get(
        "/api/v1/records", params={"orderNo": world.awaiting_order["orderNo"]}, headers=world.keys["carrier"]
    )
    assert response.json()["items"] == []


async def test_tenancy_record_detail(client: httpx.AsyncClient, world: World) -> None:
    sees_both = {"admin", "official", "platform", "seller"}
    expected = {}
    actual = {}
    for role in ROLES:
        for name, record_id in (("matched", world.matched_record), ("awaiting", world.awaiting_record)):
            response = await client.get(f"/api/v1/records/{record_id}", headers=world.keys[role])
            actual[(role, name)] = response.status_code
            if response.status_code == 200:
                assert response.json()["id"] == record_id
            visible = role in sees_both or (name == "matched" and role in ("payment", "carrier"))
            expected[(role, name)] = 200 if visible else 404
    assert actual == expected

    unknown = str(uuid.uuid4())
    for role in ("payment", "unrelated"):
        hidden = await client.get(f"/api/v1/records/{world.awaiting_record}", headers=world.keys[role])
        missing = await client.get(f"/api/v1/records/{unknown}", headers=world.keys[role])
        assert_problem(hidden, 404, "RECORD_NOT_FOUND")
        assert_problem(missing, 404, "RECORD_NOT_FOUND")
        assert shape(hidden.json(), world.awaiting_record) == shape(missing.json(), unknown)
        assert hidden.headers["content-type"] == missing.headers["content-type"]


async def test_tenancy_documents(client: httpx.AsyncClient, world: World) -> None:
    order, payment, waybill = world.matched
    paths = {
        "order": f"/api/v1/orders/{PLATFORM}/{order['orderNo']}",
        "payment": f"/api/v1/payments/{PAYMENT_FIRM}/{payment['payTransactionId']}",
        "waybill": f"/api/v1/waybills/{CARRIER}/{waybill['logisticsNo']}",
        "awaiting order": f"/api/v1/orders/{PLATFORM}/{world.awaiting_order['orderNo']}",
    }
    expected = {}
    actual = {}
    for role in ROLES:
        for name, path in paths.items():
            response = await client.get(path, headers=world.keys[role])
            actual[(role, name)] = response.status_code
            # Documents: the owner and its sender, the record's platform and seller, admins and officials.
            # The payment firm and the carrier are parties to the record but read only their own documents.
            owner_role = {"order": "platform", "payment": "payment", "waybill": "carrier"}.get(name, "platform")
            visible = role in ("admin", "official", "platform", "seller", owner_role)
            expected[(role, name)] = 200 if visible else 404
    assert actual == expected

    missing_paths = {
        "order": (f"/api/v1/orders/{PLATFORM}/NOPE000001", "NOPE000001", order["orderNo"]),
        "payment": (f"/api/v1/payments/{PAYMENT_FIRM}/NOPE000001", "NOPE000001", payment["payTransactionId"]),
        "waybill": (f"/api/v1/waybills/{CARRIER}/NOPE000001", "NOPE000001", waybill["logisticsNo"]),
    }
    for name, (missing_path, missing_no, real_no) in missing_paths.items():
        hidden = await client.get(paths[name], headers=world.keys["unrelated"])
        missing = await client.get(missing_path, headers=world.keys["unrelated"])
        assert_problem(hidden, 404, "DOCUMENT_NOT_FOUND")
        assert_problem(missing, 404, "DOCUMENT_NOT_FOUND")
        assert shape(hidden.json(), real_no) == shape(missing.json(), missing_no)


async def test_tenancy_enterprises(client: httpx.AsyncClient, world: World) -> None:
    codes = {
        "platform": PLATFORM,
        "seller": SELLER,
        "payment": PAYMENT_FIRM,
        "carrier": CARRIER,
        "unrelated": UNRELATED,
    }
    everyone = sorted(codes.values())
    for role in ROLES:
        listing = await client.get("/api/v1/enterprises", headers=world.keys[role])
        assert listing.status_code == 200
        seen = [e["code"] for e in listing.json()["items"]]
        assert seen == (everyone if role in ("admin", "official") else [codes[role]]), role

    expected_one, actual_one, expected_keys, actual_keys = {}, {}, {}, {}
    for role in ROLES:
        for target, code in codes.items():
            one = await client.get(f"/api/v1/enterprises/{code}", headers=world.keys[role])
            actual_one[(role, target)] = (one.status_code, one.json()["code"])
            own = role == target
            expected_one[(role, target)] = (
                (200, code) if role in ("admin", "official") or own else (404, "ENTERPRISE_NOT_FOUND")
            )
            keys = await client.get(f"/api/v1/enterprises/{code}/keys", headers=world.keys[role])
            actual_keys[(role, target)] = (keys.status_code, keys.json().get("code"))
            if role in ("admin", "official") or own:
                expected_keys[(role, target)] = (200, None)
            else:
                expected_keys[(role, target)] = (404, "ENTERPRISE_NOT_FOUND")
    assert actual_one == expected_one
    assert actual_keys == expected_keys

    # What another enterprise learns about a filed code is what it learns about an unfiled one.
    for path in ("/api/v1/enterprises/{}", "/api/v1/enterprises/{}/keys", "/api/v1/enterprises/{}/delegations"):
        hidden = await client.get(path.format(SELLER), headers=world.keys["unrelated"])
        missing = await client.get(path.format("3120960Z99"), headers=world.keys["unrelated"])
        assert_problem(hidden, 404, "ENTERPRISE_NOT_FOUND")
        assert shape(hidden.json(), SELLER) == shape(missing.json(), "3120960Z99")


async def test_enterprise_cannot_manage_another_enterprises_keys(client: httpx.AsyncClient, world: World) -> None:
    platform = world.keys["platform"]
    seller_key = await client.post(f"/api/v1/enterprises/{SELLER}/keys", json={}, headers=ADMIN)
    seller_key_id = seller_key.json()["id"]

    hidden = await client.post(f"/api/v1/enterprises/{SELLER}/keys", json={}, headers=platform)
    missing = await client.post("/api/v1/enterprises/3120960Z99/keys", json={}, headers=platform)
    assert_problem(hidden, 404, "ENTERPRISE_NOT_FOUND")
    assert shape(hidden.json(), SELLER) == shape(missing.json(), "3120960Z99")
    assert "key" not in hidden.json()

    revoke = await client.delete(f"/api/v1/enterprises/{SELLER}/keys/{seller_key_id}", headers=platform)
    assert_problem(revoke, 404, "ENTERPRISE_NOT_FOUND")
    # Through its own path, another enterprise's key id is simply not one of its keys.
    revoke = await client.delete(f"/api/v1/enterprises/{PLATFORM}/keys/{seller_key_id}", headers=platform)
    assert_problem(revoke, 404, "KEY_NOT_FOUND")
    assert (await client.get("/api/v1/records", headers=key_header(seller_key.json()["key"]))).status_code == 200
    keys = (await client.get(f"/api/v1/enterprises/{SELLER}/keys", headers=ADMIN)).json()["items"]
    assert len(keys) == 2
    assert all(k["revokedAt"] is None for k in keys)


async def test_documents_of_another_enterprise_are_403(client: httpx.AsyncClient, world: World) -> None:
    order, payment, waybill = purchase()
    attempts = [
        ("orders", order, "seller"),
        ("orders", order, "payment"),
        ("orders", order, "unrelated"),
        ("payments", payment, "platform"),
        ("payments", payment, "carrier"),
        ("waybills", waybill, "platform"),
        ("waybills", waybill, "payment"),
        ("waybills", waybill, "unrelated"),
    ]
    for path, document, role in attempts:
        response = await client.post(f"/api/v1/{path}", json=document, headers=world.keys[role])
        assert_problem(response, 403, "NOT_AUTHORISED_FOR_ENTERPRISE")
    # The unrelated enterprise (filed with every role) cannot post another's documents even naming itself
    # elsewhere in the document.
    foreign = order | {"ebcCode": UNRELATED}
    assert_problem(
        await client.post("/api/v1/orders", json=foreign, headers=world.keys["unrelated"]),
        403,
        "NOT_AUTHORISED_FOR_ENTERPRISE",
    )
    # In a batch, the foreign item is refused and the own item stored.
    own = order | {"ebpCode": UNRELATED, "orderNo": order["orderNo"] + "U"}
    batch = await client.post("/api/v1/orders/batch", json={"items": [own, order]}, headers=world.keys["unrelated"])
    assert batch.status_code == 200, batch.text
    items = batch.json()["items"]
    assert [i["status"] for i in items] == [201, 403]
    assert items[1]["problem"]["code"] == "NOT_AUTHORISED_FOR_ENTERPRISE"
    assert batch.json()["summary"] == {"stored": 1, "replayed": 0, "rejected": 1, "accepted": 0}
    # None of the refused documents exists.
    for path in (
        f"/api/v1/orders/{PLATFORM}/{order['orderNo']}",
        f"/api/v1/payments/{PAYMENT_FIRM}/{payment['payTransactionId']}",
        f"/api/v1/waybills/{CARRIER}/{waybill['logisticsNo']}",
    ):
        assert_problem(await client.get(path, headers=ADMIN), 404, "DOCUMENT_NOT_FOUND")
    # The owners themselves may.
    for path, document, role in (
        ("orders", order, "platform"),
        ("payments", payment, "payment"),
        ("waybills", waybill, "carrier"),
    ):
        assert (await client.post(f"/api/v1/{path}", json=document, headers=world.keys[role])).status_code == 201


async def test_admin_keys_cannot_post_documents(client: httpx.AsyncClient, world: World) -> None:
    order, payment, waybill = purchase()
    for path, document in (("orders", order), ("payments", payment), ("waybills", waybill)):
        assert_problem(
            await client.post(f"/api/v1/{path}", json=document, headers=ADMIN), 403, "ENTERPRISE_KEY_REQUIRED"
        )
        assert_problem(
            await client.post(f"/api/v1/{path}/batch", json={"items": [document]}, headers=ADMIN),
            403,
            "ENTERPRISE_KEY_REQUIRED",
        )
    assert len((await client.get("/api/v1/records", headers=ADMIN)).json()["items"]) == 2


async def test_suspended_enterprise_cannot_post_until_reactivated(client: httpx.AsyncClient, world: World) -> None:
    order, payment, _ = purchase()
    suspend = await client.patch(f"/api/v1/enterprises/{PLATFORM}", json={"status": "suspended"}, headers=ADMIN)
    assert suspend.status_code == 200
    platform = world.keys["platform"]
    assert_problem(await client.post("/api/v1/orders", json=order, headers=platform), 403, "ENTERPRISE_SUSPENDED")
    batch = await client.post("/api/v1/orders/batch", json={"items": [order]}, headers=platform)
    assert_problem(batch, 403, "ENTERPRISE_SUSPENDED")
    assert_problem(
        await client.post(f"/api/v1/enterprises/{PLATFORM}/keys", json={}, headers=platform),
        403,
        "ENTERPRISE_SUSPENDED",
    )
    assert_problem(
        await client.get(f"/api/v1/orders/{PLATFORM}/{order['orderNo']}", headers=ADMIN), 404, "DOCUMENT_NOT_FOUND"
    )
    # Other enterprises are not affected.
    assert (await client.post("/api/v1/payments", json=payment, headers=world.keys["payment"])).status_code == 201

    reactivate = await client.patch(f"/api/v1/enterprises/{PLATFORM}", json={"status": "active"}, headers=ADMIN)
    assert reactivate.json()["status"] == "active"
    response = await client.post("/api/v1/orders", json=order, headers=platform)
    assert response.status_code == 201, response.text
    assert response.json()["missing"] == ["waybill"]


# --- delegation (委托) --------------------------------------------------------------------------


async def _delegate(
    client: httpx.AsyncClient, code: str, agent: str, types: list[str], headers: dict[str, str]
) -> httpx.Response:
    return await client.post(
        f"/api/v1/enterprises/{code}/delegations", json={"agentCode": agent, "documentTypes": types}, headers=headers
    )


async def test_delegation_lets_the_agent_transmit_only_the_delegated_types(
    client: httpx.AsyncClient, world: World
) -> None:
    carrier, unrelated = world.keys["carrier"], world.keys["unrelated"]
    order, payment, _ = purchase()
    assert_problem(
        await client.post("/api/v1/orders", json=order, headers=carrier), 403, "NOT_AUTHORISED_FOR_ENTERPRISE"
    )

    granted = await _delegate(client, PLATFORM, CARRIER, ["order", "payment"], world.keys["platform"])
    assert granted.status_code == 201, granted.text
    assert granted.json()["principalCode"] == PLATFORM
    assert granted.json()["agentCode"] == CARRIER
    assert granted.json()["documentTypes"] == ["order", "payment"]
    assert granted.json()["revokedAt"] is None
    posted = await client.post("/api/v1/orders", json=order, headers=carrier)
    assert posted.status_code == 201, posted.text
    # The platform's delegation does not cover the payment firm's payments.
    assert_problem(
        await client.post("/api/v1/payments", json=payment, headers=carrier), 403, "NOT_AUTHORISED_FOR_ENTERPRISE"
    )

    # An unrelated enterprise delegated only orders.
    assert (await _delegate(client, PLATFORM, UNRELATED, ["order"], ADMIN)).status_code == 201
    order2, payment2, waybill2 = purchase()
    assert (await client.post("/api/v1/orders", json=order2, headers=unrelated)).status_code == 201
    assert_problem(
        await client.post("/api/v1/payments", json=payment2, headers=unrelated), 403, "NOT_AUTHORISED_FOR_ENTERPRISE"
    )
    assert_problem(
        await client.post("/api/v1/waybills", json=waybill2, headers=unrelated), 403, "NOT_AUTHORISED_FOR_ENTERPRISE"
    )
    # ... while the payment firm delegates its payments, and only then.
    assert (await _delegate(client, PAYMENT_FIRM, UNRELATED, ["payment"], world.keys["payment"])).status_code == 201
    response = await client.post("/api/v1/payments", json=payment2, headers=unrelated)
    assert response.status_code == 201, response.text
    assert response.json()["missing"] == ["waybill"]
    # A delegation never lets the agent act for a suspended principal.
    await client.patch(f"/api/v1/enterprises/{PLATFORM}", json={"status": "suspended"}, headers=ADMIN)
    order3, _, _ = purchase()
    assert_problem(await client.post("/api/v1/orders", json=order3, headers=unrelated), 403, "ENTERPRISE_SUSPENDED")


async def test_delegation_covers_only_its_document_types(client: httpx.AsyncClient, world: World) -> None:
    """An enterprise that is platform, payment firm and carrier at once delegates only its orders."""
    group = "3120960M01"
    group_key = await file_enterprise(client, group, "集团", ["platform", "payment", "logistics"])
    agent = world.keys["unrelated"]
    order, payment, waybill = purchase(
        order={"ebpCode": group, "payCode": group},
        payment={"payCode": group, "ebpCode": group},
        waybill={"logisticsCode": group, "ebpCode": group},
    )
    assert (await _delegate(client, group, UNRELATED, ["order"], group_key)).status_code == 201
    response = await client.post("/api/v1/orders", json=order, headers=agent)
    assert response.status_code == 201, response.text
    for path, document in (("payments", payment), ("waybills", waybill)):
        response = await client.post(f"/api/v1/{path}", json=document, headers=agent)
        assert_problem(response, 403, "NOT_AUTHORISED_FOR_ENTERPRISE")
    # Widening the delegation (a new grant replaces the types) lets the payment through, not the waybill.
    widened = await _delegate(client, group, UNRELATED, ["payment", "order"], group_key)
    assert widened.json()["documentTypes"] == ["order", "payment"]
    assert (await client.post("/api/v1/payments", json=payment, headers=agent)).status_code == 201
    assert_problem(
        await client.post("/api/v1/waybills", json=waybill, headers=agent), 403, "NOT_AUTHORISED_FOR_ENTERPRISE"
    )
    assert (await client.post("/api/v1/waybills", json=waybill, headers=group_key)).status_code == 201


async def test_delegation_validation_and_who_may_grant(client: httpx.AsyncClient, world: World) -> None:
    platform = world.keys["platform"]
    body = assert_problem(
        await _delegate(client, PLATFORM, "3120960Z99", ["order"], platform), 422, "ENTERPRISE_NOT_FILED"
    )
    assert body["errors"][0]["path"] == "agentCode"
    assert_problem(await _delegate(client, PLATFORM, PLATFORM, ["order"], platform), 422, "DELEGATION_TO_SELF")
    assert_problem(await _delegate(client, PLATFORM, PLATFORM, ["order"], ADMIN), 422, "DELEGATION_TO_SELF")
    for types in ([], ["invoice"], "order"):
        assert_problem(await _delegate(client, PLATFORM, CARRIER, types, platform), 422, "VALIDATION_FAILED")
    assert_problem(await _delegate(client, PLATFORM, "31209", ["order"], platform), 422, "VALIDATION_FAILED")

    # Only the admin or the granting enterprise: another enterprise learns nothing, an official changes nothing.
    hidden = await _delegate(client, PLATFORM, UNRELATED, ["order"], world.keys["seller"])
    missing = await _delegate(client, "3120960Z99", UNRELATED, ["order"], world.keys["seller"])
    assert_problem(hidden, 404, "ENTERPRISE_NOT_FOUND")
    assert shape(hidden.json(), PLATFORM) == shape(missing.json(), "3120960Z99")
    assert_problem(
        await _delegate(client, PLATFORM, UNRELATED, ["order"], world.keys["unrelated"]), 404, "ENTERPRISE_NOT_FOUND"
    )
    assert_problem(
        await _delegate(client, PLATFORM, UNRELATED, ["order"], world.keys["official"]), 403, "READ_ONLY_PRINCIPAL"
    )
    assert_problem(await _delegate(client, "3120960Z99", UNRELATED, ["order"], ADMIN), 404, "ENTERPRISE_NOT_FOUND")
    listing = await client.get(f"/api/v1/enterprises/{PLATFORM}/delegations", headers=ADMIN)
    assert listing.json()["items"] == []
    # The agent itself cannot grant itself the right.
    order, _, _ = purchase()
    assert_problem(
        await client.post("/api/v1/orders", json=order, headers=world.keys["unrelated"]),
        403,
        "NOT_AUTHORISED_FOR_ENTERPRISE",
    )


async def test_revoking_a_delegation_takes_effect_at_once(client: httpx.AsyncClient, world: World) -> None:
    unrelated = world.keys["unrelated"]
    granted = await _delegate(client, PLATFORM, UNRELATED, ["order"], world.keys["platform"])
    delegation_id = granted.json()["id"]
    order, _, _ = purchase()
    assert (await client.post("/api/v1/orders", json=order, headers=unrelated)).status_code == 201

    # The agent cannot revoke the grant (it is not its own), nor can another enterprise.
    for headers, code in ((unrelated, UNRELATED), (world.keys["seller"], SELLER)):
        assert_problem(
            await client.delete(f"/api/v1/enterprises/{code}/delegations/{delegation_id}", headers=headers),
            404,
            "DELEGATION_NOT_FOUND",
        )
    assert_problem(
        await client.delete(f"/api/v1/enterprises/{PLATFORM}/delegations/{delegation_id}", headers=unrelated),
        404,
        "ENTERPRISE_NOT_FOUND",
    )
    revoked = await client.delete(
        f"/api/v1/enterprises/{PLATFORM}/delegations/{delegation_id}", headers=world.keys["platform"]
    )
    assert revoked.status_code == 204, revoked.text
    order2, _, _ = purchase()
    assert_problem(
        await client.post("/api/v1/orders", json=order2, headers=unrelated), 403, "NOT_AUTHORISED_FOR_ENTERPRISE"
    )
    listing = (await client.get(f"/api/v1/enterprises/{PLATFORM}/delegations", headers=ADMIN)).json()["items"]
    assert [d["id"] for d in listing] == [delegation_id]
    assert listing[0]["revokedAt"] is not None

    # Granting again reactivates the same delegation with the new types.
    again = await _delegate(client, PLATFORM, UNRELATED, ["order", "order"], ADMIN)
    assert again.json()["id"] == delegation_id
    assert again.json()["revokedAt"] is None
    assert again.json()["documentTypes"] == ["order"]
    assert (await client.post("/api/v1/orders", json=order2, headers=unrelated)).status_code == 201
    # An admin revokes it too.
    assert (
        await client.delete(f"/api/v1/enterprises/{PLATFORM}/delegations/{delegation_id}", headers=ADMIN)
    ).status_code == 204
    order3, _, _ = purchase()
    assert_problem(
        await client.post("/api/v1/orders", json=order3, headers=unrelated), 403, "NOT_AUTHORISED_FOR_ENTERPRISE"
    )


async def test_delegations_are_listed_for_grantor_and_agent(client: httpx.AsyncClient, world: World) -> None:
    first = (await _delegate(client, PLATFORM, UNRELATED, ["order"], world.keys["platform"])).json()
    second = (await _delegate(client, PAYMENT_FIRM, UNRELATED, ["payment"], ADMIN)).json()
    third = (await _delegate(client, PLATFORM, CARRIER, ["order", "payment"], ADMIN)).json()

    def ids(response: httpx.Response) -> set[str]:
        assert response.status_code == 200, response.text
        return {d["id"] for d in response.json()["items"]}

    path = "/api/v1/enterprises/{}/delegations"
    assert ids(await client.get(path.format(PLATFORM), headers=world.keys["platform"])) == {first["id"], third["id"]}
    assert ids(await client.get(path.format(UNRELATED), headers=world.keys["unrelated"])) == {first["id"], second["id"]}
    assert ids(await client.get(path.format(CARRIER), headers=world.keys["carrier"])) == {third["id"]}
    assert ids(await client.get(path.format(SELLER), headers=world.keys["seller"])) == set()
    assert ids(await client.get(path.format(UNRELATED), headers=world.keys["official"])) == {first["id"], second["id"]}
    assert ids(await client.get(path.format(PAYMENT_FIRM), headers=ADMIN)) == {second["id"]}
    assert_problem(await client.get(path.format(PLATFORM), headers=world.keys["seller"]), 404, "ENTERPRISE_NOT_FOUND")
    assert_problem(await client.get(path.format("3120960Z99"), headers=ADMIN), 404, "ENTERPRISE_NOT_FOUND")


async def test_agent_reads_what_it_transmitted(client: httpx.AsyncClient, world: World) -> None:
    unrelated = world.keys["unrelated"]
    await _delegate(client, PLATFORM, UNRELATED, ["order"], world.keys["platform"])
    order, payment, _ = purchase()
    posted = await client.post("/api/v1/orders", json=order, headers=unrelated)
    assert posted.status_code == 201
    record_id = posted.json()["recordId"]

    document = await client.get(f"/api/v1/orders/{PLATFORM}/{order['orderNo']}", headers=unrelated)
    assert document.status_code == 200, document.text
    assert document.json()["senderCode"] == UNRELATED
    assert document.json()["key"] == {"ebpCode": PLATFORM, "orderNo": order["orderNo"]}
    detail = await client.get(f"/api/v1/records/{record_id}", headers=unrelated)
    assert detail.status_code == 200
    assert any(e["actor"] == f"enterprise:{UNRELATED}" for e in detail.json()["timeline"])
    listing = await client.get("/api/v1/records", headers=unrelated)
    assert [r["id"] for r in listing.json()["items"]] == [record_id]
    # The platform reads the order its agent sent; the payment firm, not yet party, does not.
    assert (
        await client.get(f"/api/v1/orders/{PLATFORM}/{order['orderNo']}", headers=world.keys["platform"])
    ).status_code == 200
    assert_problem(
        await client.get(f"/api/v1/records/{record_id}", headers=world.keys["payment"]), 404, "RECORD_NOT_FOUND"
    )
    assert (await client.post("/api/v1/payments", json=payment, headers=world.keys["payment"])).status_code == 201
    assert (await client.get(f"/api/v1/records/{record_id}", headers=world.keys["payment"])).status_code == 200


async def test_record_detail_shows_a_party_only_its_own_documents(client: httpx.AsyncClient, world: World) -> None:
    seen = {}
    for role in ("platform", "seller", "payment", "carrier", "official"):
        response = await client.get(f"/api/v1/records/{world.matched_record}", headers=world.keys[role])
        assert response.status_code == 200
        body = response.json()
        seen[role] = sorted(d["documentType"] for d in body["documents"])
        linked = {e["detail"].get("documentType") for e in body["timeline"] if e["kind"] == "document_received"}
        assert linked == set(seen[role]), role
        assert body["status"] == "DECLARED"
    assert seen == {
        "platform": ["order", "payment", "waybill"],
        "seller": ["order", "payment", "waybill"],
        "payment": ["payment"],
        "carrier": ["waybill"],
        "official": ["order", "payment", "waybill"],
    }


async def test_suspended_enterprise_still_lists_and_revokes_its_keys(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    spare = await client.post(f"/api/v1/enterprises/{CARRIER}/keys", json={"label": "spare"}, headers=ADMIN)
    assert spare.status_code == 201
    patch = await client.patch(f"/api/v1/enterprises/{CARRIER}", json={"status": "suspended"}, headers=ADMIN)
    assert patch.status_code == 200
    listing = await client.get(f"/api/v1/enterprises/{CARRIER}/keys", headers=parties.logistics)
    assert listing.status_code == 200
    assert len(listing.json()["items"]) == 2
    issued = await client.post(f"/api/v1/enterprises/{CARRIER}/keys", json={}, headers=parties.logistics)
    assert_problem(issued, 403, "ENTERPRISE_SUSPENDED")
    revoke = await client.delete(f"/api/v1/enterprises/{CARRIER}/keys/{spare.json()['id']}", headers=parties.logistics)
    assert revoke.status_code == 204
    spare_key = {"X-API-Key": spare.json()["key"]}
    assert_problem(await client.get("/api/v1/records", headers=spare_key), 401, "UNAUTHENTICATED")


async def test_concurrent_filings_of_one_code_are_one_201_and_409s(client: httpx.AsyncClient) -> None:
    body = {"code": "3120960C01", "name": "并发企业", "roles": ["seller"]}
    responses = await asyncio.gather(*(client.post("/api/v1/enterprises", json=body, headers=ADMIN) for _ in range(8)))
    assert sorted(r.status_code for r in responses) == [201] + [409] * 7
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"ENTERPRISE_EXISTS"}
