"""Builders for realistic documents and filed parties, all through the HTTP API."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from stdnum.cn import ric

from app.schemas import examples
from app.schemas.goods import EXAMPLE_GOODS
from tests.conftest import ADMIN

_counter = itertools.count(1)


@dataclass
class Parties:
    """Four filed enterprises (the codes of the Swagger examples) and a key for each."""

    platform: dict[str, str]
    seller: dict[str, str]
    payment: dict[str, str]
    logistics: dict[str, str]


def key_header(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


async def file_enterprise(client: httpx.AsyncClient, code: str, name: str, roles: list[str]) -> dict[str, str]:
    response = await client.post(
        "/api/v1/enterprises", json={"code": code, "name": name, "roles": roles}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    key = await client.post(f"/api/v1/enterprises/{code}/keys", json={}, headers=ADMIN)
    assert key.status_code == 201, key.text
    return key_header(key.json()["key"])


async def file_parties(client: httpx.AsyncClient) -> Parties:
    """The four example enterprises, and the goods record (商品备案) of the example order's item."""
    keys = [await file_enterprise(client, e["code"], e["name"], e["roles"]) for e in examples.ENTERPRISES]
    await file_goods(client)
    return Parties(*keys)


def goods_record(**overrides: Any) -> dict[str, Any]:
    """The goods record of the example item (seller 3120960A02, itemNo JP-SSD-50), with ``overrides``."""
    return copy.deepcopy(EXAMPLE_GOODS) | overrides


async def file_goods(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None, **overrides: Any
) -> dict[str, Any]:
    """File a goods record through the API (as admin unless ``headers`` say otherwise); the stored record."""
    response = await client.post("/api/v1/goods", json=goods_record(**overrides), headers=headers or ADMIN)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


PAID_FROM = datetime(2026, 11, 23, 8, 0)  # noqa: DTZ001 - a CEB wall-clock time


def purchase(
    order_no: str | None = None, own_buyer: bool = False, **changes: Any
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A consistent order / payment / waybill triple with fresh keys."""
    n = next(_counter)
    order_no = order_no or f"T{n:010d}"
    order = copy.deepcopy(examples.ORDER) | {"orderNo": order_no, "payTransactionId": f"PAY{order_no}"}
    payment = copy.deepcopy(examples.PAYMENT) | {
        "orderNo": order_no,
        "payTransactionId": f"PAY{order_no}",
        # A second of its own: many buyers paying one platform in one second is risk rule R7.
        "payTime": f"{PAID_FROM + timedelta(seconds=n % 28_800):%Y%m%d%H%M%S}",
    }
    waybill = copy.deepcopy(examples.WAYBILL) | {"orderNo": order_no, "logisticsNo": f"WB{order_no}"}
    if own_buyer:
        # A buyer of their own, for tests of many purchases that must not reach the annual quota (26,000 CNY),
        # living at an address and telephone of their own (many buyers at one address is risk rule R1).
        order["buyerIdNumber"] = payment["payerIdNumber"] = resident_id(n)
        phone = f"139{n:08d}"
        address = f"浙江省杭州市西湖区文三路{n}号"
        order |= {"buyerTelephone": phone, "consigneeTelephone": phone, "consigneeAddress": address}
        waybill |= {"consigneeTelephone": phone, "consigneeAddress": address}
    order.update(changes.get("order", {}))
    payment.update(changes.get("payment", {}))
    waybill.update(changes.get("waybill", {}))
    return order, payment, waybill


def resident_id(n: int) -> str:
    """The n-th distinct resident ID with a valid GB 11643 check digit (matching refuses a wrong one)."""
    born = date(1990, 1, 1) + timedelta(days=n // 1000)
    body = f"330106{born:%Y%m%d}{n % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")  # the function reads the first 17 characters of 18


async def post_triple(
    client: httpx.AsyncClient, parties: Parties, triple: tuple[dict[str, Any], dict[str, Any], dict[str, Any]]
) -> list[httpx.Response]:
    order, payment, waybill = triple
    return [
        await client.post("/api/v1/orders", json=order, headers=parties.platform),
        await client.post("/api/v1/payments", json=payment, headers=parties.payment),
        await client.post("/api/v1/waybills", json=waybill, headers=parties.logistics),
    ]
