"""The tenancy matrix over every route of the app: every kind of caller (admin, official, platform, seller,
payment firm, carrier, an unrelated enterprise, no key, a revoked key) × every operation × its own data, another
enterprise's data and data that does not exist.

tests/test_filing_and_access.py states the access rules route by route; this checks the properties that must
hold on every route, including routes added later (the table below must name every route of the app):
- nothing of another enterprise's data in any answer (its order, payment and waybill numbers, its buyer, its
  record, dispatch and key ids, its goods, its name), unless the caller sent it;
- another enterprise's data is refused with 403 or 404, and a 404 for it is indistinguishable (status and code)
  from the 404 for data that does not exist;
- nothing of another enterprise's data changes, whatever a caller sends;
- no key and a revoked key get 401 on every route that is not public; no route answers 5xx;
- API keys are stored hashed: no plain key (or its secret part) anywhere in the database;
- keys and signatures are compared in constant time (``hmac.compare_digest``, never ``==``).
"""

from __future__ import annotations

import ast
import copy
import inspect
import re
import textwrap
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.ceb import codec
from app.models import Base
from app.services import auth, callbacks
from tests.conftest import ADMIN
from tests.factories import file_enterprise, file_goods, goods_record, purchase
from tests.signing import identity

G_PLATFORM, G_SELLER, G_PAYMENT, G_CARRIER = "3120960A01", "3120960A02", "3120960P01", "3120960L01"
U_CODE, V_CODE = "3120960X01", "3120960X02"  # the unrelated enterprise, and the agent it delegates to
MISSING_CODE = "3120960Z99"
PUBLIC_HOOK = "https://93.184.216.34/hooks"  # a public address: the SSRF guard lets it through without DNS
ALL_ROLES = ["platform", "seller", "payment", "logistics"]
ROLES = ["official", "no key", "revoked key", "platform", "seller", "payment", "carrier", "unrelated", "admin"]
ENTERPRISE_ROLES = {"platform", "seller", "payment", "carrier", "unrelated"}
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/redoc"),
    ("GET", "/reason-codes"),
    # The console reads its own session cookie, never X-API-Key: with a key alone it sends the caller to its
    # sign-in page (or refuses a form without its CSRF token), and shows nothing of anyone's data.
    ("GET", "/console"),
    ("GET", "/console/sign-in"),
    ("POST", "/console/sign-in"),
    ("POST", "/console/sign-out"),
    ("POST", "/console/language"),
    ("GET", "/console/records"),
    ("GET", "/console/records/{record_id}"),
    ("GET", "/console/records/{record_id}/live"),
    ("GET", "/console/dashboard"),
    ("GET", "/console/dashboard/live"),
    ("GET", "/console/warnings"),
    ("POST", "/console/warnings/{warning_id}"),
    ("GET", "/console/enterprises"),
    ("GET", "/console/enterprises/{code}"),
    # Public services: credit disclosure (of an enterprise no group's markers name), complaints, a buyer's own
    # check (which answers only with the buyer's own purchases, masked).
    ("GET", "/api/v1/public/enterprises/{code}"),
    ("POST", "/api/v1/public/complaints"),
    ("POST", "/api/v1/public/quota-check"),
}
SIGNED = {("POST", "/api/v1/agency-callbacks/{agency}")}  # Standard Webhooks signature instead of a key


@dataclass
class Group:
    """One enterprise's (or one group of enterprises') data: what the other side must never see or change."""

    codes: dict[str, str]  # role → enterprise code
    triple: tuple[dict[str, Any], dict[str, Any], dict[str, Any]]
    item_no: str
    record_id: str = ""
    dispatch_id: str = ""
    spare_keys: dict[str, str] = field(default_factory=dict)  # code → id of a key nobody uses
    delegation_id: str = ""
    certificate_id: str = ""
    subscription_id: str = ""
    delivery_id: str = ""
    markers: set[str] = field(default_factory=set)

    @property
    def platform(self) -> str:
        return self.codes["platform"]


@dataclass
class World:
    groups: dict[str, Group]  # "G" (the four example firms) and "U" (one unrelated firm with every role)
    keys: dict[str, dict[str, str]]  # role → headers
    plain_keys: set[str]
    fresh: int = 0

    def next(self) -> int:
        self.fresh += 1
        return self.fresh


def _triple(group: str, codes: dict[str, str], item_no: str) -> tuple[dict[str, Any], ...]:
    order, payment, waybill = purchase(order_no=f"{group}SECRET0001", own_buyer=True)
    buyer = {"G": ("钱机密", "330106198512120011"), "U": ("赵秘密", "110101199003074514")}[group]
    names = {code: f"{group}企业{n}" for n, code in enumerate(sorted(set(codes.values())))}
    order |= {
        "ebpCode": codes["platform"],
        "ebpName": names[codes["platform"]],
        "ebcCode": codes["seller"],
        "ebcName": names[codes["seller"]],
        "payCode": codes["payment"],
        "payName": names[codes["payment"]],
        "payTransactionId": f"{group}PAYSECRET0001",
        "buyerName": buyer[0],
        "consignee": buyer[0],
        "buyerIdNumber": buyer[1],
    }
    order["orderList"][0]["itemNo"] = item_no
    payment |= {
        "payCode": codes["payment"],
        "payName": names[codes["payment"]],
        "ebpCode": codes["platform"],
        "ebpName": names[codes["platform"]],
        "payTransactionId": f"{group}PAYSECRET0001",
        "payerName": buyer[0],
        "payerIdNumber": buyer[1],
    }
    waybill |= {
        "logisticsCode": codes["carrier"],
        "logisticsName": names[codes["carrier"]],
        "logisticsNo": f"{group}WBSECRET0001",
        "consignee": buyer[0],
    }
    return order, payment, waybill


async def _post_ok(client: httpx.AsyncClient, path: str, body: Any, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code in (200, 201), (path, response.text)
    answer: dict[str, Any] = response.json()
    return answer


async def build_world(client: httpx.AsyncClient) -> World:
    """Both groups filed, each with a declared purchase, goods, a delegation and a spare key; every role's key."""
    g_codes = {"platform": G_PLATFORM, "seller": G_SELLER, "payment": G_PAYMENT, "carrier": G_CARRIER}
    u_codes = dict.fromkeys(g_codes, U_CODE)
    keys: dict[str, dict[str, str]] = {"admin": ADMIN, "no key": {}}
    for role, code in g_codes.items():
        keys[role] = await file_enterprise(client, code, f"G企业{code}", [{"carrier": "logistics"}.get(role, role)])
    keys["unrelated"] = await file_enterprise(client, U_CODE, "无关企业秘密", ALL_ROLES)
    await file_enterprise(client, V_CODE, "无关代理秘密", ["logistics"])
    official = await _post_ok(client, "/api/v1/officials", {"label": "审计"}, ADMIN)
    keys["official"] = {"X-API-Key": official["key"]}
    revoked = await _post_ok(client, f"/api/v1/enterprises/{G_PLATFORM}/keys", {"label": "old"}, ADMIN)
    gone = await client.delete(f"/api/v1/enterprises/{G_PLATFORM}/keys/{revoked['id']}", headers=ADMIN)
    assert gone.status_code == 204
    keys["revoked key"] = {"X-API-Key": revoked["key"]}
    plain = {official["key"], revoked["key"]} | {h["X-API-Key"] for h in keys.values() if h and h is not ADMIN}

    groups = {}
    for name, codes, agent in (("G", g_codes, G_CARRIER), ("U", u_codes, V_CODE)):
        item_no = f"{name}-SECRET-ITEM"
        await file_goods(client, ebcCode=codes["seller"], itemNo=item_no)
        group = Group(codes, _triple(name, codes, item_no), item_no)  # type: ignore[arg-type]
        order, payment, waybill = group.triple
        senders = {"G": (keys["platform"], keys["payment"], keys["carrier"]), "U": (keys["unrelated"],) * 3}[name]
        await _post_ok(client, "/api/v1/orders", order, senders[0])
        await _post_ok(client, "/api/v1/payments", payment, senders[1])
        receipt = await _post_ok(client, "/api/v1/waybills", waybill, senders[2])
        assert receipt["recordStatus"] == "DECLARED", receipt
        group.record_id = receipt["recordId"]
        dispatches = await client.get("/api/v1/admin/dispatches", params={"recordId": group.record_id}, headers=ADMIN)
        group.dispatch_id = dispatches.json()["items"][0]["id"]
        for code in set(codes.values()):
            spare = await _post_ok(client, f"/api/v1/enterprises/{code}/keys", {"label": "spare"}, ADMIN)
            group.spare_keys[code] = spare["id"]
            plain.add(spare["key"])
        delegation = {"agentCode": agent, "documentTypes": ["order"]}
        group.delegation_id = (
            await _post_ok(client, f"/api/v1/enterprises/{group.platform}/delegations", delegation, ADMIN)
        )["id"]
        pem = identity("SM2", f"tenancy {name}")[1].pem().decode()
        group.certificate_id = (
            await _post_ok(client, f"/api/v1/enterprises/{group.platform}/certificates", {"pem": pem}, ADMIN)
        )["id"]
        subscription = await _post_ok(
            client,
            f"/api/v1/enterprises/{group.platform}/subscriptions",
            {"url": PUBLIC_HOOK, "events": ["status_changed"]},
            ADMIN,
        )
        group.subscription_id = subscription["id"]
        subscription_path = f"/api/v1/enterprises/{group.platform}/subscriptions/{group.subscription_id}"
        await _post_ok(client, f"{subscription_path}/replay", {"after": "0.0"}, ADMIN)
        deliveries = await client.get(f"{subscription_path}/deliveries", headers=ADMIN)
        group.delivery_id = deliveries.json()["items"][0]["id"]
        group.markers = {
            order["orderNo"],
            order["payTransactionId"],
            waybill["logisticsNo"],
            order["buyerIdNumber"],
            order["buyerIdNumber"][-8:],  # what is left of a masked buyer ID
            order["buyerName"],
            group.record_id,
            group.dispatch_id,
            group.delegation_id,
            group.certificate_id,
            group.subscription_id,
            group.delivery_id,
            item_no,
            *group.spare_keys.values(),
        }
        groups[name] = group
    groups["U"].markers |= {U_CODE, V_CODE, "无关企业秘密", "无关代理秘密"}
    return World(groups, keys, plain)


# --- the operations -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    content_type: str | None = None

    def sent(self) -> str:
        """Everything the caller put into the request (what it may see again in the answer)."""
        return f"{self.path} {self.params} {self.json} {self.content!r}"


@dataclass(frozen=True)
class Target:
    """Whose data a call names: the group, and whether it is that group's data or data that does not exist."""

    group: Group
    missing: bool = False


Build = Callable[[World, str, Target], Call]


def _code(world: World, role: str, target: Target, kind: str = "platform") -> str:
    if target.missing:
        return MISSING_CODE
    mine = world.groups["U" if role == "unrelated" else "G"]
    if target.group is mine and role in ENTERPRISE_ROLES and role != "unrelated":
        return mine.codes[role]  # an enterprise's own code
    return target.group.codes[kind]


def _doc(target: Target, index: int) -> dict[str, Any]:
    return copy.deepcopy(target.group.triple[index])


def _new_document(world: World, target: Target, index: int) -> dict[str, Any]:
    """A document of the target's enterprises: a new one, or (other's data) its stored one with other content."""
    document = _doc(target, index)
    if target.missing:
        document |= {"ebpCode": MISSING_CODE, "payCode": MISSING_CODE, "logisticsCode": MISSING_CODE}
        document.update({"orderNo": f"NOSUCH{world.next():06d}"})
    else:  # the stored key with other content: must not tell "exists" from "does not"
        document[("buyerName", "payerName", "consignee")[index]] = "改过的名字"
    return document


def _number(document: dict[str, Any], index: int) -> tuple[str, str]:
    owner = ("ebpCode", "payCode", "logisticsCode")[index]
    number = ("orderNo", "payTransactionId", "logisticsNo")[index]
    return document[owner], document[number]


def _doc_path(kind: str, index: int) -> Build:
    def build(world: World, role: str, target: Target) -> Call:
        owner, number = _number(_doc(target, index), index)
        return Call("GET", f"/api/v1/{kind}/{MISSING_CODE if target.missing else owner}/{number}")

    return build


def _post_doc(kind: str, index: int, batch: bool) -> Build:
    def build(world: World, role: str, target: Target) -> Call:
        document = _new_document(world, target, index)
        body = {"items": [document]} if batch else document
        return Call("POST", f"/api/v1/{kind}{'/batch' if batch else ''}", json=body)

    return build


def _message(world: World, role: str, target: Target) -> Call:
    document = _new_document(world, target, 0)
    transport = {"guid": str(uuid.uuid4()).upper(), "appType": "1", "appTime": "20261123101800", "appStatus": "2"}
    sender = {"copCode": document["ebpCode"], "copName": "x", "dxpMode": "DXP", "dxpId": "DXPENT0000000001"}
    body = codec.render_message("order", [transport | document], sender)
    return Call("POST", "/api/v1/messages", content=body, content_type="application/xml")


def _record(target: Target) -> str:
    return str(uuid.uuid4()) if target.missing else target.group.record_id


def _key_id(world: World, role: str, target: Target) -> str:
    if target.missing:
        return str(uuid.uuid4())
    return target.group.spare_keys[_code(world, role, target)]


def _subscription(world: World, role: str, target: Target) -> str:
    """A subscription of the target's platform, named under the code the caller uses for it."""
    subscription = uuid.uuid4() if target.missing else target.group.subscription_id
    return f"/api/v1/enterprises/{_code(world, role, target)}/subscriptions/{subscription}"


OPERATIONS: dict[tuple[str, str], Build] = {
    ("GET", "/healthz"): lambda w, r, t: Call("GET", "/healthz"),
    ("GET", "/readyz"): lambda w, r, t: Call("GET", "/readyz"),
    ("GET", "/metrics"): lambda w, r, t: Call("GET", "/metrics"),
    ("GET", "/openapi.json"): lambda w, r, t: Call("GET", "/openapi.json"),
    ("GET", "/docs"): lambda w, r, t: Call("GET", "/docs"),
    ("GET", "/redoc"): lambda w, r, t: Call("GET", "/redoc"),
    ("GET", "/reason-codes"): lambda w, r, t: Call("GET", "/reason-codes"),
    ("GET", "/console"): lambda w, r, t: Call("GET", "/console"),
    ("GET", "/console/sign-in"): lambda w, r, t: Call("GET", "/console/sign-in"),
    ("POST", "/console/sign-in"): lambda w, r, t: Call("POST", "/console/sign-in"),
    ("POST", "/console/sign-out"): lambda w, r, t: Call("POST", "/console/sign-out"),
    ("POST", "/console/language"): lambda w, r, t: Call("POST", "/console/language"),
    ("GET", "/console/records"): lambda w, r, t: Call(
        "GET", "/console/records", params={"orderNo": t.group.triple[0]["orderNo"]}
    ),
    ("GET", "/console/records/{record_id}"): lambda w, r, t: Call("GET", f"/console/records/{t.group.record_id}"),
    ("GET", "/console/records/{record_id}/live"): lambda w, r, t: Call(
        "GET", f"/console/records/{t.group.record_id}/live"
    ),
    ("GET", "/console/dashboard"): lambda w, r, t: Call(
        "GET", "/console/dashboard", params={"ebpCode": t.group.triple[0]["ebpCode"]}
    ),
    ("GET", "/console/warnings"): lambda w, r, t: Call(
        "GET", "/console/warnings", params={"enterprise": t.group.triple[0]["ebpCode"]}
    ),
    ("POST", "/console/warnings/{warning_id}"): lambda w, r, t: Call(
        "POST",
        "/console/warnings/1",
        content=b"action=dismiss&note=x",
        content_type="application/x-www-form-urlencoded",
    ),
    ("GET", "/console/enterprises"): lambda w, r, t: Call(
        "GET", "/console/enterprises", params={"code": t.group.triple[0]["ebpCode"]}
    ),
    ("GET", "/console/enterprises/{code}"): lambda w, r, t: Call(
        "GET", f"/console/enterprises/{t.group.triple[0]['ebpCode']}"
    ),
    ("GET", "/console/dashboard/live"): lambda w, r, t: Call(
        "GET", "/console/dashboard/live", params={"ebpCode": t.group.triple[0]["ebpCode"]}
    ),
    ("GET", "/api/v1/enterprises"): lambda w, r, t: Call("GET", "/api/v1/enterprises"),
    ("POST", "/api/v1/enterprises"): lambda w, r, t: Call(
        "POST", "/api/v1/enterprises", json={"code": f"3120960B{w.next() % 100:02d}", "name": "新", "roles": ["seller"]}
    ),
    ("GET", "/api/v1/enterprises/{code}"): lambda w, r, t: Call("GET", f"/api/v1/enterprises/{_code(w, r, t)}"),
    ("PATCH", "/api/v1/enterprises/{code}"): lambda w, r, t: Call(
        "PATCH", f"/api/v1/enterprises/{_code(w, r, t)}", json={"name": "被改名"}
    ),
    ("POST", "/api/v1/enterprises/{code}/keys"): lambda w, r, t: Call(
        "POST", f"/api/v1/enterprises/{_code(w, r, t)}/keys", json={"label": "新钥匙"}
    ),
    ("GET", "/api/v1/enterprises/{code}/keys"): lambda w, r, t: Call(
        "GET", f"/api/v1/enterprises/{_code(w, r, t)}/keys"
    ),
    ("DELETE", "/api/v1/enterprises/{code}/keys/{key_id}"): lambda w, r, t: Call(
        "DELETE", f"/api/v1/enterprises/{_code(w, r, t)}/keys/{_key_id(w, r, t)}"
    ),
    ("POST", "/api/v1/enterprises/{code}/keys/{key_id}/rotate"): lambda w, r, t: Call(
        "POST", f"/api/v1/enterprises/{_code(w, r, t)}/keys/{_key_id(w, r, t)}/rotate"
    ),
    ("POST", "/api/v1/officials"): lambda w, r, t: Call("POST", "/api/v1/officials", json={"label": "官员"}),
    ("POST", "/api/v1/enterprises/{code}/delegations"): lambda w, r, t: Call(
        "POST",
        f"/api/v1/enterprises/{_code(w, r, t)}/delegations",
        json={"agentCode": V_CODE, "documentTypes": ["waybill"]},
    ),
    ("GET", "/api/v1/enterprises/{code}/delegations"): lambda w, r, t: Call(
        "GET", f"/api/v1/enterprises/{_code(w, r, t)}/delegations"
    ),
    ("DELETE", "/api/v1/enterprises/{code}/delegations/{delegation_id}"): lambda w, r, t: Call(
        "DELETE",
        f"/api/v1/enterprises/{_code(w, r, t)}/delegations/{uuid.uuid4() if t.missing else t.group.delegation_id}",
    ),
    ("POST", "/api/v1/enterprises/{code}/certificates"): lambda w, r, t: Call(
        "POST",
        f"/api/v1/enterprises/{_code(w, r, t)}/certificates",
        json={"pem": identity("SM2", f"tenancy call {w.next()}")[1].pem().decode()},
    ),
    ("GET", "/api/v1/enterprises/{code}/certificates"): lambda w, r, t: Call(
        "GET", f"/api/v1/enterprises/{_code(w, r, t)}/certificates"
    ),
    ("DELETE", "/api/v1/enterprises/{code}/certificates/{certificate_id}"): lambda w, r, t: Call(
        "DELETE",
        f"/api/v1/enterprises/{_code(w, r, t)}/certificates/{uuid.uuid4() if t.missing else t.group.certificate_id}",
    ),
    ("POST", "/api/v1/goods"): lambda w, r, t: Call(
        "POST",
        "/api/v1/goods",
        json=goods_record(ebcCode=_code(w, r, t, "seller"), itemNo=f"NEW-{w.next()}"),
    ),
    ("GET", "/api/v1/goods"): lambda w, r, t: Call(
        "GET", "/api/v1/goods", params={"ebcCode": _code(w, r, t, "seller")}
    ),
    ("GET", "/api/v1/goods/{ebcCode}/{itemNo}"): lambda w, r, t: Call(
        "GET", f"/api/v1/goods/{_code(w, r, t, 'seller')}/{'NO-SUCH' if t.missing else t.group.item_no}"
    ),
    ("PATCH", "/api/v1/goods/{ebcCode}/{itemNo}"): lambda w, r, t: Call(
        "PATCH",
        f"/api/v1/goods/{_code(w, r, t, 'seller')}/{'NO-SUCH' if t.missing else t.group.item_no}",
        json={"positiveList": False},
    ),
    ("POST", "/api/v1/orders"): _post_doc("orders", 0, batch=False),
    ("POST", "/api/v1/orders/batch"): _post_doc("orders", 0, batch=True),
    ("GET", "/api/v1/orders/{ebpCode}/{orderNo}"): _doc_path("orders", 0),
    ("POST", "/api/v1/payments"): _post_doc("payments", 1, batch=False),
    ("POST", "/api/v1/payments/batch"): _post_doc("payments", 1, batch=True),
    ("GET", "/api/v1/payments/{payCode}/{payTransactionId}"): _doc_path("payments", 1),
    ("POST", "/api/v1/waybills"): _post_doc("waybills", 2, batch=False),
    ("POST", "/api/v1/waybills/batch"): _post_doc("waybills", 2, batch=True),
    ("GET", "/api/v1/waybills/{logisticsCode}/{logisticsNo}"): _doc_path("waybills", 2),
    ("POST", "/api/v1/messages"): _message,
    ("GET", "/api/v1/records"): lambda w, r, t: Call(
        "GET",
        "/api/v1/records",
        params={"orderNo": "NOSUCH0001" if t.missing else t.group.triple[0]["orderNo"]},
    ),
    ("GET", "/api/v1/records/export"): lambda w, r, t: Call(
        "GET",
        "/api/v1/records/export",
        params={"orderNo": "NOSUCH0001" if t.missing else t.group.triple[0]["orderNo"]},
    ),
    **{
        ("GET", f"/api/v1/stats/{name}"): lambda w, r, t, name=name: Call(
            "GET", f"/api/v1/stats/{name}", params={"ebpCode": t.group.triple[0]["ebpCode"]}
        )
        for name in (
            "summary",
            "timeseries",
            "mismatch-reasons",
            "rejections",
            "clearance-times",
            "backlog",
            "inspections",
            "warnings",
        )
    },
    ("GET", "/api/v1/records/{record_id}"): lambda w, r, t: Call("GET", f"/api/v1/records/{_record(t)}"),
    ("GET", "/api/v1/records/{record_id}/receipts/{kind}"): lambda w, r, t: Call(
        "GET", f"/api/v1/records/{_record(t)}/receipts/order"
    ),
    ("GET", "/api/v1/records/{record_id}/declaration"): lambda w, r, t: Call(
        "GET", f"/api/v1/records/{_record(t)}/declaration"
    ),
    ("GET", "/api/v1/admin/dispatches"): lambda w, r, t: Call(
        "GET", "/api/v1/admin/dispatches", params={"recordId": _record(t)}
    ),
    ("POST", "/api/v1/admin/dispatches/{dispatch_id}/retry"): lambda w, r, t: Call(
        "POST", f"/api/v1/admin/dispatches/{uuid.uuid4() if t.missing else t.group.dispatch_id}/retry"
    ),
    ("GET", "/api/v1/admin/submissions"): lambda w, r, t: Call("GET", "/api/v1/admin/submissions"),
    ("POST", "/api/v1/admin/submissions/{seq}/retry"): lambda w, r, t: Call(
        "POST", f"/api/v1/admin/submissions/{999999999 if t.missing else 1}/retry"
    ),
    ("GET", "/api/v1/feed"): lambda w, r, t: Call("GET", "/api/v1/feed", params={"limit": "1000"}),
    ("POST", "/api/v1/enterprises/{code}/subscriptions"): lambda w, r, t: Call(
        "POST",
        f"/api/v1/enterprises/{_code(w, r, t)}/subscriptions",
        json={"url": PUBLIC_HOOK, "events": ["dead_letter"]},
    ),
    ("GET", "/api/v1/enterprises/{code}/subscriptions"): lambda w, r, t: Call(
        "GET", f"/api/v1/enterprises/{_code(w, r, t)}/subscriptions"
    ),
    ("GET", "/api/v1/enterprises/{code}/subscriptions/{subscription_id}"): lambda w, r, t: Call(
        "GET", _subscription(w, r, t)
    ),
    ("PATCH", "/api/v1/enterprises/{code}/subscriptions/{subscription_id}"): lambda w, r, t: Call(
        "PATCH", _subscription(w, r, t), json={"status": "active"}
    ),
    ("DELETE", "/api/v1/enterprises/{code}/subscriptions/{subscription_id}"): lambda w, r, t: Call(
        "DELETE", _subscription(w, r, t)
    ),
    ("POST", "/api/v1/enterprises/{code}/subscriptions/{subscription_id}/rotate-secret"): lambda w, r, t: Call(
        "POST", f"{_subscription(w, r, t)}/rotate-secret"
    ),
    ("GET", "/api/v1/enterprises/{code}/subscriptions/{subscription_id}/deliveries"): lambda w, r, t: Call(
        "GET", f"{_subscription(w, r, t)}/deliveries"
    ),
    ("POST", "/api/v1/enterprises/{code}/subscriptions/{subscription_id}/deliveries/{delivery_id}/redeliver"): (
        lambda w, r, t: Call(
            "POST",
            f"{_subscription(w, r, t)}/deliveries/{uuid.uuid4() if t.missing else t.group.delivery_id}/redeliver",
        )
    ),
    ("POST", "/api/v1/enterprises/{code}/subscriptions/{subscription_id}/replay"): lambda w, r, t: Call(
        "POST", f"{_subscription(w, r, t)}/replay", json={"after": "0.0"}
    ),
    ("GET", "/api/v1/audit"): lambda w, r, t: Call("GET", "/api/v1/audit", params={"targetId": _code(w, r, t)}),
    ("GET", "/api/v1/audit/messages/{message_id}"): lambda w, r, t: Call(
        "GET", f"/api/v1/audit/messages/{uuid.uuid4()}"
    ),
    ("POST", "/api/v1/records/{record_id}/redispatch"): lambda w, r, t: Call(
        "POST", f"/api/v1/records/{_record(t)}/redispatch"
    ),
    ("POST", "/api/v1/agency-callbacks/{agency}"): lambda w, r, t: Call(
        "POST",
        "/api/v1/agency-callbacks/customs",
        json={"recordId": _record(t), "receipts": [{"returnStatus": "800", "returnInfo": "放行"}]},
    ),
    ("GET", "/api/v1/enterprises/{code}/credit"): lambda w, r, t: Call(
        "GET", f"/api/v1/enterprises/{_code(w, r, t)}/credit"
    ),
    ("PUT", "/api/v1/enterprises/{code}/credit"): lambda w, r, t: Call(
        "PUT",
        f"/api/v1/enterprises/{_code(w, r, t)}/credit",
        json={"level": "regular", "basis": "复核", "effectiveDate": "2026-12-01"},
    ),
    ("GET", "/api/v1/enterprises/{code}/risk"): lambda w, r, t: Call(
        "GET", f"/api/v1/enterprises/{_code(w, r, t)}/risk"
    ),
    ("GET", "/api/v1/risk/profiles"): lambda w, r, t: Call("GET", "/api/v1/risk/profiles"),
    ("PUT", "/api/v1/risk/profiles"): lambda w, r, t: Call(
        "PUT",
        "/api/v1/risk/profiles",
        json={
            "profiles": [
                {"level": "advanced_certified", "inspectionRate": "0.002"},
                {"level": "certified", "inspectionRate": "0.004"},
                {"level": "regular", "inspectionRate": "0.0244"},
                {"level": "dishonest", "inspectionRate": "0.85"},
                {"level": "seriously_dishonest", "inspectionRate": "1"},
            ]
        },
    ),
    ("GET", "/api/v1/risk/warnings"): lambda w, r, t: Call(
        "GET", "/api/v1/risk/warnings", params={"recordId": _record(t)}
    ),
    ("POST", "/api/v1/risk/warnings/{warning_id}/{action}"): lambda w, r, t: Call(
        "POST", "/api/v1/risk/warnings/999999/acknowledge", json={"note": "核查"}
    ),
    ("GET", "/api/v1/complaints"): lambda w, r, t: Call("GET", "/api/v1/complaints"),
    ("POST", "/api/v1/complaints/{complaint_id}/triage"): lambda w, r, t: Call(
        "POST",
        "/api/v1/complaints/999999/triage",
        json={"status": "investigating", "recordIds": [_record(t)], "note": "核查"},
    ),
    # Cancels and returns name the inventory by its platform and order number: another's (or a missing one) is 404.
    # A request filed on one's own declared record stays pending (no dispatcher runs here), so the later roles'
    # own requests are refused as pending: none changes the record the snapshots compare.
    **{
        ("POST", f"/api/v1/inventory-{kind}"): lambda w, r, t, kind=kind: Call(
            "POST",
            f"/api/v1/inventory-{kind}",
            json={
                "ebpCode": t.group.triple[0]["ebpCode"],
                "orderNo": "NOSUCH0001" if t.missing else t.group.triple[0]["orderNo"],
                "reason": "买家申请",
            },
        )
        for kind in ("cancels", "returns")
    },
    # No request exists in this world: by id, every caller's answer is the same 404 (tests/test_cancel_returns.py
    # reads one's own and another's requests).
    **{
        ("GET", f"/api/v1/inventory-{kind}/{{request_id}}"): lambda w, r, t, kind=kind: Call(
            "GET", f"/api/v1/inventory-{kind}/00000000-0000-4000-8000-000000000623"
        )
        for kind in ("cancels", "returns")
    },
    ("GET", "/api/v1/public/enterprises/{code}"): lambda w, r, t: Call("GET", f"/api/v1/public/enterprises/{G_SELLER}"),
    ("POST", "/api/v1/public/complaints"): lambda w, r, t: Call(
        "POST", "/api/v1/public/complaints", json={"kind": "other", "what": "商品与描述不符"}
    ),
    # Whoever knows a buyer's ID number, name and telephone is answered with that buyer's purchases (masked), by
    # design: asked about group G, whose platform's name is no marker, the answer must show nothing else.
    ("POST", "/api/v1/public/quota-check"): lambda w, r, t: Call(
        "POST",
        "/api/v1/public/quota-check",
        json={
            "idNumber": w.groups["G"].triple[0]["buyerIdNumber"],
            "name": w.groups["G"].triple[0]["buyerName"],
            "telephone": w.groups["G"].triple[0]["buyerTelephone"],
        },
    ),
}
MOCK_AGENCIES = "/mock/"  # the mock agencies mounted in embedded mode: development only, no key (see docs)


def app_operations(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app serves, from its routes (the OpenAPI document omits a few)."""
    found = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method != "head"
    }
    routes = list(app.routes)
    while routes:
        route = routes.pop()
        included = getattr(route, "original_router", None)  # an included router (FastAPI ≥ 0.16x)
        if included is not None:
            routes.extend(included.routes)
            continue
        path, methods = getattr(route, "path", None), getattr(route, "methods", None) or set()
        if path is not None:  # as the OpenAPI document writes it: {itemNo}, not {itemNo:path}
            found |= {(m, re.sub(r"\{(\w+):\w+\}", r"{\1}", path)) for m in methods if m != "HEAD"}
    return {(m, p) for m, p in found if not p.startswith(MOCK_AGENCIES)}


# --- running it --------------------------------------------------------------------------------------


@dataclass
class Result:
    roles: int = 0
    operations: int = 0
    requests: int = 0
    refused: int = 0
    visible_to_readers: int = 0  # answers to admins and officials that show the other group's data
    server_errors: int = 0
    leaks: int = 0  # answers showing another group's data
    plain_keys: int = 0  # places in the database holding an issued key or its secret
    problems: list[str] = field(default_factory=list)


async def _send(client: httpx.AsyncClient, role: str, world: World, call: Call) -> httpx.Response:
    headers = dict(world.keys[role])
    if call.content_type:
        headers["content-type"] = call.content_type
    return await client.request(
        call.method, call.path, params=call.params or None, json=call.json, content=call.content, headers=headers
    )


def _status(response: httpx.Response, operation: tuple[str, str]) -> int:
    """The answer's status; for a batch (200 with a result per item) its one item's."""
    if operation[1].endswith("/batch") and response.status_code == 200:
        [item] = response.json()["items"]
        status: int = item["status"]
        return status
    return response.status_code


def _code_of(response: httpx.Response) -> str | None:
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        code: str | None = response.json().get("code")
        return code
    return None


async def snapshot(client: httpx.AsyncClient, group: Group) -> dict[str, Any]:
    """A group's data as an admin sees it (what another enterprise's calls must leave unchanged)."""
    state: dict[str, Any] = {}
    for code in sorted(set(group.codes.values())):
        for path in ("", "/keys", "/delegations", "/certificates"):
            state[code + path] = (await client.get(f"/api/v1/enterprises/{code}{path}", headers=ADMIN)).json()
    seller = group.codes["seller"]
    state["goods"] = (await client.get("/api/v1/goods", params={"ebcCode": seller}, headers=ADMIN)).json()
    record = (await client.get(f"/api/v1/records/{group.record_id}", headers=ADMIN)).json()
    state["record"] = {k: record[k] for k in ("status", "documents", "declaration") if k in record}
    return state


async def run_tenancy_matrix(app: FastAPI, client: httpx.AsyncClient) -> Result:
    world = await build_world(client)
    result = Result(roles=len(ROLES))
    operations = app_operations(app)
    assert operations == set(OPERATIONS), "classify the new routes in OPERATIONS"
    result.operations = len(operations)
    g, u = world.groups["G"], world.groups["U"]
    for role in ROLES:
        mine, other = (u, g) if role == "unrelated" else (g, u)
        untouched = [group for group in (g, u) if role in ("official", "no key", "revoked key") or group is other]
        if role == "admin":
            untouched = []
        before = [await snapshot(client, group) for group in untouched]
        for operation, build in sorted(OPERATIONS.items()):
            answers = {}
            targets = [("own", Target(mine)), ("other", Target(other)), ("missing", Target(other, True))]
            if role in ("no key", "revoked key"):
                targets = targets[1:2]  # 401 whatever the data
            elif role not in ENTERPRISE_ROLES or "{" not in operation[1]:
                targets = targets[:2]  # "missing" is only compared with "other" for enterprises, by id
            for name, target in targets:
                call = build(world, role, target)
                response = await _send(client, role, world, call)
                result.requests += 1
                answers[name] = response
                where = f"{role} {operation[0]} {operation[1]} ({name} data): {response.status_code}"
                if response.status_code >= 500:
                    result.server_errors += 1
                    result.problems.append(f"{where} {response.text[:200]}")
                if response.status_code == 201 and response.headers["content-type"] == "application/json":
                    issued = response.json()
                    if isinstance(issued, dict) and isinstance(issued.get("key"), str):
                        world.plain_keys.add(issued["key"])
                if role in ("admin", "official"):
                    # They read everything: proof that the markers are there to be found.
                    result.visible_to_readers += any(m in response.text for m in other.markers)
                    continue
                foreign = (g.markers | u.markers) if role in ("no key", "revoked key") else other.markers
                leaked = {m for m in foreign if m in response.text and m not in call.sent()}
                if leaked:
                    result.leaks += 1
                    result.problems.append(f"{where} shows {sorted(leaked)}")
                if operation in PUBLIC:
                    continue
                if role in ("no key", "revoked key") or operation in SIGNED:
                    if response.status_code != 401:
                        result.problems.append(f"{where}, expected 401")
                    continue
                if name == "other":
                    if _status(response, operation) in (403, 404):
                        result.refused += 1
                    elif not (response.status_code == 200 and operation[0] == "GET"):  # a list, filtered
                        result.problems.append(f"{where} {response.text[:200]}")
            if "missing" in answers and operation not in PUBLIC | SIGNED:
                other_answer, missing_answer = answers["other"], answers["missing"]
                if other_answer.status_code == 404 and (missing_answer.status_code, _code_of(missing_answer)) != (
                    404,
                    _code_of(other_answer),
                ):
                    result.problems.append(
                        f"{role} {operation}: another's data answers 404 {_code_of(other_answer)}, missing data "
                        f"{missing_answer.status_code} {_code_of(missing_answer)}"
                    )
        after = [await snapshot(client, group) for group in untouched]
        for group_before, group_after in zip(before, after, strict=True):
            if group_before != group_after:
                result.problems.append(f"{role} changed another's data")
    places = await plain_keys_in_database(app, world.plain_keys)
    result.plain_keys = len(places)
    result.problems += [f"a plain key in {place}" for place in places]
    secrets_compared_in_constant_time()
    return result


async def plain_keys_in_database(app: FastAPI, plain_keys: set[str]) -> list[str]:
    """Every place in the database where an issued key, or its secret part, appears."""
    needles = plain_keys | {key.split("_", 2)[2] for key in plain_keys}
    found = []
    async with app.state.sessionmaker() as session:
        for table in Base.metadata.sorted_tables:
            for row in await session.execute(select(table)):
                for column, value in zip(table.columns, row, strict=True):
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    found += [f"{table.name}.{column.name}" for needle in needles if needle in text]
    return found


def _comparisons(function: Callable[..., Any]) -> list[str]:
    """The ``==`` / ``!=`` comparisons in a function's source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    return [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare) and any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops)
    ]


def secrets_compared_in_constant_time() -> None:
    """Keys and signatures are compared with ``hmac.compare_digest``; no ``==`` touches a secret."""
    for function, secrets in (
        (auth.authenticate, ("key", "token", "hash")),
        (callbacks.verify, ("signature", "given", "wanted", "expected")),
    ):
        source = inspect.getsource(function)
        assert "hmac.compare_digest(" in source, function.__name__
        for comparison in _comparisons(function):
            assert not any(secret in comparison for secret in secrets), (function.__name__, comparison)


# --- the tests ------------------------------------------------------------------------------------------


async def test_no_role_sees_or_changes_another_enterprises_data_on_any_route(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    result = await run_tenancy_matrix(app, client)
    assert result.problems == [], "\n".join(result.problems)
    assert result.refused > 100
    assert result.visible_to_readers > 10  # the markers the leak check looks for do show where they may
