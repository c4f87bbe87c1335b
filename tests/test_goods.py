"""Goods records (商品备案) through HTTP: filing, reading, changing, validation, who may do what, filters and
pages — on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from app.schemas import examples
from app.schemas.goods import EXAMPLE_GOODS, GoodsCreate
from app.services import goods as goods_service
from app.services.auth import Principal
from tests.conftest import ADMIN
from tests.factories import (
    Parties,
    file_enterprise,
    file_goods,
    file_parties,
    goods_record,
    key_header,
    post_triple,
    purchase,
)

PLATFORM, SELLER, PAYMENT_FIRM, CARRIER = (e["code"] for e in examples.ENTERPRISES)
OTHER_SELLER = "3120960B02"
ITEM = EXAMPLE_GOODS["itemNo"]
PROBLEM_JSON = "application/problem+json"
GOODS = "/api/v1/goods"


def url(ebc_code: str, item_no: str) -> str:
    return f"{GOODS}/{ebc_code}/{quote(item_no, safe='')}"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert (body["code"], body["status"]) == (code, status), body
    return body


def error_paths(body: dict[str, Any]) -> list[str]:
    return [e["path"] for e in body.get("errors") or []]


async def official(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/api/v1/officials", json={"label": "张三 · 杭州海关"}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return key_header(response.json()["key"])


async def suspend(client: httpx.AsyncClient, code: str) -> None:
    response = await client.patch(f"/api/v1/enterprises/{code}", json={"status": "suspended"}, headers=ADMIN)
    assert response.status_code == 200, response.text


# --- filing and reading -----------------------------------------------------------------------


async def test_file_parties_files_the_example_item(client: httpx.AsyncClient) -> None:
    await file_parties(client)
    response = await client.get(url(SELLER, ITEM), headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.pop("createdAt") == body.pop("updatedAt")
    # Decimals come back as plain strings, as written in the example (no trailing zeros of the columns).
    assert body == {
        "ebcCode": "3120960A02",
        "itemNo": "JP-SSD-50",
        "gcode": "3304990099",
        "gname": "资生堂红腰子精华液 50ml",
        "unit1": "035",
        "qty1Factor": "0.05",
        "unit2": "011",
        "qty2Factor": "1",
        "country": "116",
        "vatRate": "0.13",
        "consumptionTaxRate": "0.15",
        "positiveList": True,
    }
    assert body == EXAMPLE_GOODS


async def test_seller_files_its_own_item_and_reads_it_back(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    record = goods_record(itemNo="JP-SSD-100", gname="资生堂红腰子精华液 100ml", qty1Factor="0.1")
    created = await client.post(GOODS, json=record, headers=parties.seller)
    assert created.status_code == 201, created.text
    body = created.json()
    assert {k: body[k] for k in record} == record | {"qty1Factor": "0.1"}
    read = await client.get(url(SELLER, "JP-SSD-100"), headers=parties.seller)
    assert read.status_code == 200, read.text
    assert read.json() == body


async def test_one_legal_unit_and_numbers_written_as_json_numbers(client: httpx.AsyncClient) -> None:
    await file_parties(client)
    record = goods_record(itemNo="NUMBERS", qty1Factor=0.35, vatRate=0.13, consumptionTaxRate=0, country=502)
    del record["unit2"], record["qty2Factor"]
    created = await client.post(GOODS, json=record, headers=ADMIN)
    assert created.status_code == 201, created.text
    read = (await client.get(url(SELLER, "NUMBERS"), headers=ADMIN)).json()
    assert read == created.json()
    assert (read["qty1Factor"], read["vatRate"], read["consumptionTaxRate"], read["country"]) == (
        "0.35",
        "0.13",
        "0",
        "502",
    )
    assert (read["unit2"], read["qty2Factor"]) == (None, None)


@pytest.mark.parametrize(
    "factor",
    ["9999999999.99999", "0.00001", "1234567890", "12.5"],
)
async def test_quantity_factors_are_kept_exactly(client: httpx.AsyncClient, factor: str) -> None:
    await file_parties(client)
    created = await client.post(
        GOODS,
        content=f'{{"ebcCode": "{SELLER}", "itemNo": "EXACT", "gcode": "3304990099", "gname": "精华液", '
        f'"unit1": "035", "qty1Factor": {factor}, "unit2": "011", "qty2Factor": "{factor}", "country": "116", '
        f'"vatRate": 0.1300, "consumptionTaxRate": "0.15", "positiveList": true}}',
        headers=ADMIN | {"content-type": "application/json"},
    )
    assert created.status_code == 201, created.text
    read = (await client.get(url(SELLER, "EXACT"), headers=ADMIN)).json()
    assert (read["qty1Factor"], read["qty2Factor"], read["vatRate"]) == (factor, factor, "0.13")
    assert read == created.json()


async def test_same_item_number_for_two_sellers(client: httpx.AsyncClient) -> None:
    await file_parties(client)
    other = await file_enterprise(client, OTHER_SELLER, "大阪严选", ["seller"])
    theirs = await file_goods(client, other, ebcCode=OTHER_SELLER, vatRate="0.09", consumptionTaxRate="0")
    assert (theirs["ebcCode"], theirs["itemNo"]) == (OTHER_SELLER, ITEM)
    assert (await client.get(url(SELLER, ITEM), headers=ADMIN)).json()["vatRate"] == "0.13"
    assert (await client.get(url(OTHER_SELLER, ITEM), headers=ADMIN)).json()["vatRate"] == "0.09"


async def test_filing_twice_is_a_conflict_and_changes_nothing(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    before = (await client.get(url(SELLER, ITEM), headers=ADMIN)).json()
    for headers in (ADMIN, parties.seller):
        again = await client.post(GOODS, json=goods_record(vatRate="0.09"), headers=headers)
        body = assert_problem(again, 409, "GOODS_EXISTS")
        assert f"{SELLER}/{ITEM}" in body["detail"]
    assert (await client.get(url(SELLER, ITEM), headers=ADMIN)).json() == before


async def test_concurrent_filings_of_one_item_give_one_record(client: httpx.AsyncClient) -> None:
    await file_parties(client)
    record = goods_record(itemNo="RACE-1")
    responses = await asyncio.gather(*(client.post(GOODS, json=record, headers=ADMIN) for _ in range(4)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409], [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "GOODS_EXISTS")
    listed = (await client.get(GOODS, params={"itemNo": "RACE-1"}, headers=ADMIN)).json()["items"]
    assert len(listed) == 1


async def test_filing_racing_an_uncommitted_filing_is_a_conflict(app: FastAPI, client: httpx.AsyncClient) -> None:
    """The request reads no record (the other is not committed yet), inserts, and loses on the key: 409."""
    await file_parties(client)
    record = goods_record(itemNo="RACE-2")
    admin = Principal(kind="admin", key_id="test")
    async with app.state.sessionmaker() as session, session.begin():
        await goods_service.create_goods(session, admin, GoodsCreate.model_validate(record))  # flushed only
        racing = asyncio.create_task(client.post(GOODS, json=record | {"vatRate": "0.09"}, headers=ADMIN))
        await asyncio.sleep(0.3)  # PostgreSQL: the request waits on the key at its INSERT; SQLite: at BEGIN
        assert not racing.done()
    assert_problem(await racing, 409, "GOODS_EXISTS")
    assert (await client.get(url(SELLER, "RACE-2"), headers=ADMIN)).json()["vatRate"] == "0.13"


async def test_item_number_with_a_slash(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    await file_goods(client, parties.seller, itemNo="JP/SSD/50 蓝")
    read = await client.get(url(SELLER, "JP/SSD/50 蓝"), headers=parties.seller)
    assert read.status_code == 200, read.text
    assert read.json()["itemNo"] == "JP/SSD/50 蓝"
    patched = await client.patch(url(SELLER, "JP/SSD/50 蓝"), json={"positiveList": False}, headers=parties.seller)
    assert patched.status_code == 200, patched.text
    assert patched.json()["positiveList"] is False
    assert (await client.get(url(SELLER, ITEM), headers=ADMIN)).json()["positiveList"] is True
    assert_problem(await client.get(url(SELLER, "JP/SSD"), headers=ADMIN), 404, "GOODS_NOT_FOUND")


# --- validation -------------------------------------------------------------------------------

INVALID: dict[str, tuple[dict[str, Any], str]] = {
    # case: (changes to the example record — None removes the field —, the path reported)
    "gcode of 9 digits": ({"gcode": "330499009"}, "body/gcode"),
    "gcode of 11 digits": ({"gcode": "33049900991"}, "body/gcode"),
    "gcode with dots": ({"gcode": "3304.99.00"}, "body/gcode"),
    "gcode with letters": ({"gcode": "33049900AB"}, "body/gcode"),
    "gcode missing": ({"gcode": None}, "body/gcode"),
    "gname empty": ({"gname": "  "}, "body/gname"),
    "gname of 251 characters": ({"gname": "精" * 251}, "body/gname"),
    "gname with a control character": ({"gname": "精华液\x00"}, "body/gname"),
    "unit1 of 2 characters": ({"unit1": "35"}, "body/unit1"),
    "unit1 written in Chinese": ({"unit1": "千克"}, "body/unit1"),
    "unit1 missing": ({"unit1": None}, "body/unit1"),
    "qty1Factor zero": ({"qty1Factor": "0"}, "body/qty1Factor"),
    "qty1Factor negative": ({"qty1Factor": "-0.05"}, "body/qty1Factor"),
    "qty1Factor with 6 decimals": ({"qty1Factor": "0.050001"}, "body/qty1Factor"),
    "qty1Factor of 16 digits": ({"qty1Factor": "12345678901.2345"}, "body/qty1Factor"),
    "qty1Factor NaN": ({"qty1Factor": "NaN"}, "body/qty1Factor"),
    "qty1Factor not a number": ({"qty1Factor": "0.05kg"}, "body/qty1Factor"),
    "unit2 without qty2Factor": ({"qty2Factor": None}, "body"),
    "qty2Factor without unit2": ({"unit2": None}, "body"),
    "qty2Factor zero": ({"qty2Factor": "0"}, "body/qty2Factor"),
    "country of 2 letters": ({"country": "JP"}, "body/country"),
    "vatRate of 1": ({"vatRate": "1"}, "body/vatRate"),
    "vatRate as a percentage": ({"vatRate": "13"}, "body/vatRate"),
    "vatRate negative": ({"vatRate": "-0.01"}, "body/vatRate"),
    "vatRate with 5 decimals": ({"vatRate": "0.12999"}, "body/vatRate"),
    "vatRate missing": ({"vatRate": None}, "body/vatRate"),
    "consumptionTaxRate of 1.0": ({"consumptionTaxRate": "1.0"}, "body/consumptionTaxRate"),
    "consumptionTaxRate Infinity": ({"consumptionTaxRate": "Infinity"}, "body/consumptionTaxRate"),
    "positiveList not a boolean": ({"positiveList": "maybe"}, "body/positiveList"),
    "positiveList missing": ({"positiveList": None}, "body/positiveList"),
    "itemNo empty": ({"itemNo": ""}, "body/itemNo"),
    "itemNo of 31 characters": ({"itemNo": "X" * 31}, "body/itemNo"),
    "ebcCode with a dash": ({"ebcCode": "3120960-02"}, "body/ebcCode"),
    "ebcCode missing": ({"ebcCode": None}, "body/ebcCode"),
    "unknown field": ({"hsCode": "3304990099"}, "body/hsCode"),
}


@pytest.mark.parametrize("case", list(INVALID))
async def test_invalid_goods_record_is_refused_with_the_field(client: httpx.AsyncClient, case: str) -> None:
    await file_parties(client)
    changes, path = INVALID[case]
    record = goods_record(itemNo="INVALID-1") | {k: v for k, v in changes.items() if v is not None}
    for name in [k for k, v in changes.items() if v is None]:
        del record[name]
    body = assert_problem(await client.post(GOODS, json=record, headers=ADMIN), 422, "VALIDATION_FAILED")
    assert path in error_paths(body), body
    assert (await client.get(GOODS, params={"itemNo": "INVALID-1"}, headers=ADMIN)).json()["items"] == []


@pytest.mark.parametrize(
    "changes",
    [
        {"vatRate": "0", "consumptionTaxRate": "0"},
        {"vatRate": "0.9999", "consumptionTaxRate": "0.0001"},
        {"gcode": "0402100000", "country": 116},  # an HS code with a leading zero; a code written as a number
        {"gname": "  资生堂精华液  ", "itemNo": " VALID-1 "},  # trimmed
        {"itemNo": "X" * 30, "gname": "精" * 250},
    ],
)
async def test_boundary_values_are_accepted(client: httpx.AsyncClient, changes: dict[str, Any]) -> None:
    await file_parties(client)
    record = goods_record(itemNo="VALID-1") | changes
    created = await client.post(GOODS, json=record, headers=ADMIN)
    assert created.status_code == 201, created.text
    body = created.json()
    for name, value in changes.items():
        assert body[name] == str(value).strip(), name
    assert (await client.get(url(SELLER, body["itemNo"]), headers=ADMIN)).json() == body


async def test_malformed_json_is_a_400(client: httpx.AsyncClient) -> None:
    await file_parties(client)
    for content in (b'{"ebcCode": ', b"\xff\xfe{}", b'{"vatRate": NaN}'):
        response = await client.post(GOODS, content=content, headers=ADMIN | {"content-type": "application/json"})
        assert_problem(response, 400, "MALFORMED_BODY")


# --- who may do what --------------------------------------------------------------------------


async def test_who_may_file(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    both = await file_enterprise(client, "3120960C01", "两用企业", ["platform", "seller"])
    cases: list[tuple[dict[str, str], str, int, str | None]] = [
        # (key, ebcCode, status, problem code)
        (parties.platform, SELLER, 403, "NOT_AUTHORISED_FOR_ENTERPRISE"),
        (parties.payment, SELLER, 403, "NOT_AUTHORISED_FOR_ENTERPRISE"),
        (await official(client), SELLER, 403, "READ_ONLY_PRINCIPAL"),
        ({}, SELLER, 401, "UNAUTHENTICATED"),
        ({"X-API-Key": "sw_000000000000_nope"}, SELLER, 401, "UNAUTHENTICATED"),
        # its own code, but not filed as a seller
        (parties.platform, PLATFORM, 422, "ENTERPRISE_ROLE_MISSING"),
        (ADMIN, CARRIER, 422, "ENTERPRISE_ROLE_MISSING"),
        (ADMIN, "3120960Z99", 422, "ENTERPRISE_NOT_FILED"),
        (parties.seller, SELLER, 201, None),
        (both, "3120960C01", 201, None),
        (ADMIN, SELLER, 201, None),
    ]
    for n, (headers, ebc_code, status, code) in enumerate(cases):
        response = await client.post(GOODS, json=goods_record(ebcCode=ebc_code, itemNo=f"WHO-{n}"), headers=headers)
        if code is None:
            assert response.status_code == status, (n, response.text)
        else:
            body = assert_problem(response, status, code)
            if status == 422:
                assert body["errors"][0]["path"] == "ebcCode"
                assert body["errors"][0]["code"] == ebc_code
    listed = (await client.get(GOODS, params={"limit": 500}, headers=ADMIN)).json()["items"]
    assert sorted((g["ebcCode"], g["itemNo"]) for g in listed) == [
        ("3120960A02", "JP-SSD-50"),
        ("3120960A02", "WHO-10"),
        ("3120960A02", "WHO-8"),
        ("3120960C01", "WHO-9"),
    ]


async def test_suspended_seller_reads_but_cannot_file_or_change(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    await suspend(client, SELLER)
    assert_problem(
        await client.post(GOODS, json=goods_record(itemNo="LATE"), headers=parties.seller), 403, "ENTERPRISE_SUSPENDED"
    )
    assert_problem(
        await client.patch(url(SELLER, ITEM), json={"vatRate": "0.09"}, headers=parties.seller),
        403,
        "ENTERPRISE_SUSPENDED",
    )
    assert (await client.get(url(SELLER, ITEM), headers=parties.seller)).json()["vatRate"] == "0.13"
    # An admin still maintains the suspended seller's records.
    assert (await client.post(GOODS, json=goods_record(itemNo="LATE"), headers=ADMIN)).status_code == 201


async def test_who_may_read_one(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    officer = await official(client)
    for headers in (ADMIN, officer, parties.seller):
        response = await client.get(url(SELLER, ITEM), headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["itemNo"] == ITEM
    missing = assert_problem(
        await client.get(url(SELLER, "NO-SUCH-ITEM"), headers=parties.seller), 404, "GOODS_NOT_FOUND"
    )
    for headers in (parties.platform, parties.payment, parties.logistics):
        hidden = assert_problem(await client.get(url(SELLER, ITEM), headers=headers), 404, "GOODS_NOT_FOUND")
        # Someone else's record looks exactly like one that does not exist.
        assert set(hidden) == set(missing)
        assert hidden["title"] == missing["title"]
    assert_problem(await client.get(url(SELLER, ITEM)), 401, "UNAUTHENTICATED")
    assert_problem(await client.get(url(SELLER, "NO-SUCH-ITEM"), headers=officer), 404, "GOODS_NOT_FOUND")


async def test_who_may_change(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    officer = await official(client)
    assert_problem(
        await client.patch(url(SELLER, ITEM), json={"vatRate": "0.09"}, headers=officer), 403, "READ_ONLY_PRINCIPAL"
    )
    for headers in (parties.platform, parties.logistics):
        assert_problem(
            await client.patch(url(SELLER, ITEM), json={"vatRate": "0.09"}, headers=headers), 404, "GOODS_NOT_FOUND"
        )
    assert_problem(await client.patch(url(SELLER, ITEM), json={"vatRate": "0.09"}), 401, "UNAUTHENTICATED")
    assert (await client.get(url(SELLER, ITEM), headers=ADMIN)).json()["vatRate"] == "0.13"

    by_seller = await client.patch(url(SELLER, ITEM), json={"vatRate": "0.09"}, headers=parties.seller)
    assert by_seller.status_code == 200, by_seller.text
    assert by_seller.json()["vatRate"] == "0.09"
    by_admin = await client.patch(url(SELLER, ITEM), json={"consumptionTaxRate": "0"}, headers=ADMIN)
    assert by_admin.status_code == 200, by_admin.text
    assert (by_admin.json()["vatRate"], by_admin.json()["consumptionTaxRate"]) == ("0.09", "0")
    assert_problem(
        await client.patch(url(SELLER, "NO-SUCH-ITEM"), json={"vatRate": "0.09"}, headers=ADMIN), 404, "GOODS_NOT_FOUND"
    )


async def test_seller_that_lost_its_role_cannot_change_its_goods(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    response = await client.patch(f"/api/v1/enterprises/{SELLER}", json={"roles": ["platform"]}, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert_problem(
        await client.patch(url(SELLER, ITEM), json={"vatRate": "0.09"}, headers=parties.seller),
        422,
        "ENTERPRISE_ROLE_MISSING",
    )
    assert (await client.get(url(SELLER, ITEM), headers=parties.seller)).json()["vatRate"] == "0.13"


async def test_who_sees_what_in_the_list(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    other = await file_enterprise(client, OTHER_SELLER, "大阪严选", ["seller"])
    await file_goods(client, other, ebcCode=OTHER_SELLER, itemNo="OS-1")
    everything = [(SELLER, ITEM), (OTHER_SELLER, "OS-1")]
    for headers in (ADMIN, await official(client)):
        items = (await client.get(GOODS, headers=headers)).json()["items"]
        assert [(g["ebcCode"], g["itemNo"]) for g in items] == everything
    own = (await client.get(GOODS, headers=parties.seller)).json()["items"]
    assert [(g["ebcCode"], g["itemNo"]) for g in own] == [(SELLER, ITEM)]
    # Asking for another seller's goods by filter gives nothing, not an error.
    asked = await client.get(GOODS, params={"ebcCode": OTHER_SELLER}, headers=parties.seller)
    assert asked.status_code == 200, asked.text
    assert asked.json() == {"items": [], "nextCursor": None}
    assert (await client.get(GOODS, headers=parties.platform)).json() == {"items": [], "nextCursor": None}
    assert_problem(await client.get(GOODS), 401, "UNAUTHENTICATED")


# --- changes ----------------------------------------------------------------------------------


async def test_patch_changes_only_the_given_fields(client: httpx.AsyncClient) -> None:
    await file_parties(client)
    before = (await client.get(url(SELLER, ITEM), headers=ADMIN)).json()
    change = {
        "gcode": "3304100090",
        "gname": "资生堂唇部精华 50ml",
        "unit1": "036",
        "qty1Factor": "50",
        "country": "502",
        "vatRate": "0.09",
        "consumptionTaxRate": "0",
        "positiveList": False,
    }
    response = await client.patch(url(SELLER, ITEM), json=change, headers=ADMIN)
    assert response.status_code == 200, response.text
    after = response.json()
    assert after == before | change | {"updatedAt": after["updatedAt"]}
    assert after["updatedAt"] > before["updatedAt"]
    assert after["createdAt"] == before["createdAt"]
    assert (await client.get(url(SELLER, ITEM), headers=ADMIN)).json() == after

    # An empty change keeps every field.
    same = await client.patch(url(SELLER, ITEM), json={}, headers=ADMIN)
    assert same.status_code == 200, same.text
    assert {k: v for k, v in same.json().items() if k != "updatedAt"} == {
        k: v for k, v in after.items() if k != "updatedAt"
    }


async def test_second_unit_is_set_and_removed_together(client: httpx.AsyncClient) -> None:
    await file_parties(client)
    removed = await client.patch(url(SELLER, ITEM), json={"unit2": None, "qty2Factor": None}, headers=ADMIN)
    assert removed.status_code == 200, removed.text
    assert (removed.json()["unit2"], removed.json()["qty2Factor"]) == (None, None)
    for alone in ({"unit2": "011"}, {"qty2Factor": "1"}, {"unit2": None}, {"unit2": "011", "qty2Factor": None}):
        assert_problem(await client.patch(url(SELLER, ITEM), json=alone, headers=ADMIN), 422, "VALIDATION_FAILED")
    restored = await client.patch(url(SELLER, ITEM), json={"unit2": "007", "qty2Factor": "2"}, headers=ADMIN)
    assert restored.status_code == 200, restored.text
    assert (restored.json()["unit2"], restored.json()["qty2Factor"]) == ("007", "2")


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"gcode": None}, "body"),
        ({"vatRate": None}, "body"),
        ({"positiveList": None}, "body"),
        ({"gcode": "33049900"}, "body/gcode"),
        ({"vatRate": "1"}, "body/vatRate"),
        ({"qty1Factor": "0"}, "body/qty1Factor"),
        ({"ebcCode": OTHER_SELLER}, "body/ebcCode"),
        ({"itemNo": "RENAMED"}, "body/itemNo"),
    ],
)
async def test_invalid_patch_changes_nothing(client: httpx.AsyncClient, change: dict[str, Any], path: str) -> None:
    await file_parties(client)
    before = (await client.get(url(SELLER, ITEM), headers=ADMIN)).json()
    body = assert_problem(await client.patch(url(SELLER, ITEM), json=change, headers=ADMIN), 422, "VALIDATION_FAILED")
    assert path in error_paths(body), body
    assert (await client.get(url(SELLER, ITEM), headers=ADMIN)).json() == before


# --- filters and pages ------------------------------------------------------------------------


async def _file_catalogue(client: httpx.AsyncClient) -> Parties:
    """The example item plus: seller A02 has 6 more, another seller 3; HS codes from three headings."""
    parties = await file_parties(client)
    other = await file_enterprise(client, OTHER_SELLER, "大阪严选", ["seller"])
    for n in range(1, 7):
        gcode = "3304990099" if n % 2 else "3401110000"
        await file_goods(client, parties.seller, itemNo=f"A-{n:02d}", gcode=gcode)
    for n in range(1, 4):
        await file_goods(client, other, ebcCode=OTHER_SELLER, itemNo=f"B-{n:02d}", gcode="1901101000")
    return parties


def keys(page: dict[str, Any]) -> list[tuple[str, str]]:
    return [(g["ebcCode"], g["itemNo"]) for g in page["items"]]


async def test_filters(client: httpx.AsyncClient) -> None:
    parties = await _file_catalogue(client)

    async def listed(headers: dict[str, str], **params: Any) -> list[tuple[str, str]]:
        response = await client.get(GOODS, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return keys(response.json())

    a = [(SELLER, f"A-{n:02d}") for n in range(1, 7)]
    b = [(OTHER_SELLER, f"B-{n:02d}") for n in range(1, 4)]
    assert await listed(ADMIN) == [*a, (SELLER, ITEM), *b]
    assert await listed(ADMIN, ebcCode=OTHER_SELLER) == b
    assert await listed(ADMIN, itemNo="A-03") == [(SELLER, "A-03")]
    assert await listed(ADMIN, itemNo=ITEM) == [(SELLER, ITEM)]
    assert await listed(ADMIN, gcode="3304990099") == [
        (SELLER, "A-01"),
        (SELLER, "A-03"),
        (SELLER, "A-05"),
        (SELLER, ITEM),
    ]
    assert await listed(ADMIN, gcode="34") == [(SELLER, "A-02"), (SELLER, "A-04"), (SELLER, "A-06")]
    assert await listed(ADMIN, gcode="3") == [*a, (SELLER, ITEM)]
    assert await listed(ADMIN, gcode="1901") == b
    assert await listed(ADMIN, gcode="1902") == []
    assert await listed(ADMIN, ebcCode=OTHER_SELLER, gcode="3304") == []
    assert await listed(ADMIN, ebcCode=SELLER, itemNo="B-01") == []
    assert await listed(parties.seller, gcode="1901") == []
    assert await listed(parties.seller, gcode="3401") == [(SELLER, "A-02"), (SELLER, "A-04"), (SELLER, "A-06")]
    bad_queries: list[dict[str, Any]] = [
        {"gcode": "33%"},
        {"gcode": "3304_"},
        {"gcode": "33049900991"},
        {"ebcCode": "X" * 19},
        {"itemNo": "X" * 31},
        {"limit": 0},
        {"limit": 501},
    ]
    for bad in bad_queries:
        body = assert_problem(await client.get(GOODS, params=bad, headers=ADMIN), 422, "VALIDATION_FAILED")
        assert f"query/{next(iter(bad))}" in error_paths(body)


async def test_pages_follow_the_cursor_to_the_end(client: httpx.AsyncClient) -> None:
    await _file_catalogue(client)
    everything = keys((await client.get(GOODS, params={"limit": 500}, headers=ADMIN)).json())
    assert len(everything) == 10
    for limit in (1, 3, 4, 10):
        seen: list[tuple[str, str]] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
            page = (await client.get(GOODS, params=params, headers=ADMIN)).json()
            pages += 1
            assert len(page["items"]) <= limit
            seen += keys(page)
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert seen == everything, limit
        assert pages == -(-10 // limit), limit  # the last page says so itself: no empty page after it


async def test_cursor_keeps_the_filter_and_the_tenancy(client: httpx.AsyncClient) -> None:
    parties = await _file_catalogue(client)
    first = (await client.get(GOODS, params={"limit": 2, "gcode": "3304"}, headers=parties.seller)).json()
    assert keys(first) == [(SELLER, "A-01"), (SELLER, "A-03")]
    second = await client.get(
        GOODS, params={"limit": 2, "gcode": "3304", "cursor": first["nextCursor"]}, headers=parties.seller
    )
    assert keys(second.json()) == [(SELLER, "A-05"), (SELLER, ITEM)]
    assert second.json()["nextCursor"] is None
    # A seller's cursor into the other seller's range still shows only its own goods.
    last_page = await client.get(GOODS, params={"cursor": first["nextCursor"]}, headers=parties.seller)
    assert {code for code, _ in keys(last_page.json())} == {SELLER}


@pytest.mark.parametrize("cursor", ["not-a-cursor", "W10", "WyJhIl0", "eyJhIjogMX0", "WzEsIDJd", "%%%"])
async def test_a_cursor_not_issued_here_is_refused(client: httpx.AsyncClient, cursor: str) -> None:
    await file_parties(client)
    response = await client.get(GOODS, params={"cursor": cursor}, headers=ADMIN)
    assert_problem(response, 422, "INVALID_CURSOR")


# --- what matching makes of them ---------------------------------------------------------------


async def test_matching_reads_the_goods_records_filed_here(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    line = dict(examples.ORDER["orderList"][0]) | {"itemNo": "JP-UNFILED-1"}
    *_, waybill = await post_triple(client, parties, purchase(order={"orderList": [line]}))
    assert waybill.status_code == 201, waybill.text
    receipt = waybill.json()
    assert receipt["recordStatus"] == "MISMATCHED"
    assert [(d["code"], d["field"], d["actual"]) for d in receipt["discrepancies"]] == [
        ("GOODS_NOT_FILED", "order.orderList[0].itemNo", "JP-UNFILED-1")
    ]

    # The seller changes its rates: the next purchase's taxTotal 46.12 is now off — a warning, not a block.
    # VAT 9 %, no consumption tax: 200.00 × 0.09 × 0.7 = 12.60.
    patched = await client.patch(
        url(SELLER, ITEM), json={"vatRate": "0.09", "consumptionTaxRate": "0"}, headers=parties.seller
    )
    assert patched.status_code == 200, patched.text
    *_, waybill = await post_triple(client, parties, purchase())
    receipt = waybill.json()
    assert [(d["code"], d["severity"], d["expected"], d["actual"]) for d in receipt["discrepancies"]] == [
        ("TAX_TOTAL_MISMATCH", "warning", "12.60", "46.12")
    ]
    assert receipt["recordStatus"] not in ("MISMATCHED", "AWAITING_DOCUMENTS")


# --- the API describes itself -----------------------------------------------------------------


async def test_openapi_declares_the_goods_routes(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    operations = {
        ("post", "/api/v1/goods"): ("create_goods", {"201", "400", "401", "403", "409", "422", "503"}),
        ("get", "/api/v1/goods"): ("list_goods", {"200", "401", "422", "503"}),
        ("get", "/api/v1/goods/{ebcCode}/{itemNo}"): ("get_goods", {"200", "401", "404", "422", "503"}),
        ("patch", "/api/v1/goods/{ebcCode}/{itemNo}"): ("patch_goods", {"200", "401", "403", "404", "422", "503"}),
    }
    for (method, path), (operation_id, statuses) in operations.items():
        operation = schema["paths"][path][method]
        assert operation["operationId"] == operation_id
        assert operation["tags"] == ["Goods records (商品备案)"]
        assert statuses <= set(operation["responses"]), (method, path)
    example = schema["paths"]["/api/v1/goods"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert example["serum"]["value"] == EXAMPLE_GOODS
    # The example a newcomer pastes is accepted as it stands.
    await file_enterprise(client, SELLER, "东京优选海外旗舰店", ["seller"])
    for sample in example.values():
        assert (await client.post(GOODS, json=sample["value"], headers=ADMIN)).status_code == 201
