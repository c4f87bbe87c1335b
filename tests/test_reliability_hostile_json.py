"""Hostile JSON, the equivalents of the XML attack corpus (tests/ceb/test_hostile_xml.py), sent to every route
that takes a JSON body: deep nesting, huge numbers, huge strings, huge collections, wrong encodings, values
PostgreSQL cannot store. Each is refused with a 4xx problem (never a 5xx), answered with a small body (no
amplification), and stores nothing.

The normal suite sends every case to every route, except the heavy cases (bodies of megabytes), which go to
one document route here and to every route in the soak suite (tests/soak/test_hostile_input.py), which also
measures the time and memory each case takes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from app.schemas import examples
from app.webhooks import sign
from tests.conftest import ADMIN
from tests.factories import Parties, file_parties, goods_record, purchase
from tests.signing import identity

PROBLEM_JSON = "application/problem+json"
CALLBACK_SECRET = "single-window-dev-callback-secret"  # the development default of the test settings
SENTINEL = "\u00a7HOSTILE\u00a7"  # replaced by the hostile literal in the serialised body
MAX_ANSWER_BYTES = 64 * 1024  # no hostile body gets a bigger answer than this (no amplification)

PLATFORM, SELLER, CARRIER = examples.PLATFORM["code"], examples.SELLER["code"], examples.CARRIER["code"]


@dataclass(frozen=True)
class Route:
    """A route with a JSON body: how to reach it, a valid body, and the fields hostile values go into."""

    method: str
    path: str
    body: Callable[[], Any]
    text_field: tuple[Any, ...]
    number_field: tuple[Any, ...] | None = None
    key: str = "admin"  # admin | platform | payment | carrier | signed (an agency callback)
    body_optional: bool = False  # no body at all is a valid request


def _order() -> dict[str, Any]:
    return purchase()[0]


def _payment() -> dict[str, Any]:
    return purchase()[1]


def _waybill() -> dict[str, Any]:
    return purchase()[2]


def _callback() -> dict[str, Any]:
    return {"recordId": str(uuid.uuid4()), "receipts": [{"returnStatus": "120", "returnInfo": "ok"}]}


ROUTES = [
    Route("POST", "/api/v1/orders", _order, ("buyerName",), ("goodsValue",), "platform"),
    Route(
        "POST",
        "/api/v1/orders/batch",
        lambda: {"items": [_order()]},
        ("items", 0, "buyerName"),
        ("items", 0, "orderList", 0, "price"),
        "platform",
    ),
    Route("POST", "/api/v1/payments", _payment, ("payerName",), ("amountPaid",), "payment"),
    Route(
        "POST",
        "/api/v1/payments/batch",
        lambda: {"items": [_payment()]},
        ("items", 0, "payerName"),
        ("items", 0, "amountPaid"),
        "payment",
    ),
    Route("POST", "/api/v1/waybills", _waybill, ("consignee",), ("weight",), "carrier"),
    Route(
        "POST",
        "/api/v1/waybills/batch",
        lambda: {"items": [_waybill()]},
        ("items", 0, "consignee"),
        ("items", 0, "freight"),
        "carrier",
    ),
    Route(
        "POST", "/api/v1/enterprises", lambda: {"code": "3120960B01", "name": "新企业", "roles": ["seller"]}, ("name",)
    ),
    Route("PATCH", f"/api/v1/enterprises/{SELLER}", lambda: {"name": "新名字"}, ("name",)),
    Route("POST", f"/api/v1/enterprises/{PLATFORM}/keys", lambda: {"label": "ERP"}, ("label",), body_optional=True),
    Route(
        "POST",
        f"/api/v1/enterprises/{PLATFORM}/keys/{uuid.UUID(int=1)}/rotate",
        lambda: {"label": "ERP 2", "overlapSeconds": 3600},
        ("label",),
        ("overlapSeconds",),
        body_optional=True,
    ),
    Route("POST", "/api/v1/officials", lambda: {"label": "李四"}, ("label",)),
    Route(
        "POST",
        f"/api/v1/enterprises/{PLATFORM}/delegations",
        lambda: {"agentCode": CARRIER, "documentTypes": ["order"]},
        ("agentCode",),
    ),
    Route(
        "POST",
        f"/api/v1/enterprises/{PLATFORM}/certificates",
        lambda: {"pem": identity("SM2", "hostile")[1].pem().decode(), "label": "card 0001"},
        ("pem",),
    ),
    Route(
        "POST",
        f"/api/v1/enterprises/{PLATFORM}/subscriptions",
        lambda: {"url": "https://hooks.example.com/sw", "events": ["status_changed"], "format": "json"},
        ("url",),
    ),
    Route("PATCH", f"/api/v1/enterprises/{PLATFORM}/subscriptions/{uuid.UUID(int=2)}", lambda: {}, ("status",)),
    Route(
        "POST",
        f"/api/v1/enterprises/{PLATFORM}/subscriptions/{uuid.UUID(int=2)}/replay",
        lambda: {"after": "0.0"},
        ("after",),
    ),
    Route(
        "PUT",
        f"/api/v1/enterprises/{SELLER}/credit",
        lambda: {"level": "certified", "basis": "AEO", "effectiveDate": "2026-11-01"},
        ("basis",),
    ),
    Route(
        "PUT",
        "/api/v1/risk/profiles",
        lambda: {"profiles": [{"level": "regular", "inspectionRate": "0.03"}]},
        ("profiles", 0, "level"),
        ("profiles", 0, "inspectionRate"),
    ),
    Route("POST", f"/api/v1/risk/warnings/{uuid.UUID(int=3)}/acknowledge", lambda: {"note": "已核查"}, ("note",)),
    Route(
        "POST",
        f"/api/v1/complaints/{uuid.UUID(int=4)}/triage",
        lambda: {"status": "investigating", "note": "已受理"},
        ("note",),
    ),
    Route(
        "POST",
        "/api/v1/public/complaints",
        lambda: {"kind": "other", "name": "王小明", "what": "hostile"},
        ("name",),
    ),
    Route(
        "POST",
        "/api/v1/public/quota-check",
        lambda: {"idNumber": "33010619900101123X", "name": "王小明", "telephone": "13800138000"},
        ("name",),
    ),
    Route(
        "POST",
        "/api/v1/inventory-cancels",
        lambda: {"ebpCode": PLATFORM, "orderNo": "HOSTILE0001", "reason": "买家取消"},
        ("reason",),
        key="platform",
    ),
    Route(
        "POST",
        "/api/v1/inventory-returns",
        lambda: {
            "ebpCode": PLATFORM,
            "orderNo": "HOSTILE0001",
            "reason": "买家退货",
            "invtRefundList": [{"gnum": 1, "qty": "1"}],
        },
        ("reason",),
        ("invtRefundList", 0, "qty"),
        "platform",
    ),
    Route("POST", "/api/v1/goods", lambda: goods_record(itemNo="HOSTILE-1"), ("gname",), ("vatRate",)),
    Route("PATCH", f"/api/v1/goods/{SELLER}/JP-SSD-50", lambda: {"vatRate": "0.13"}, ("gname",), ("vatRate",)),
    Route(
        "POST",
        "/api/v1/agency-callbacks/customs",
        _callback,
        ("receipts", 0, "returnInfo"),
        ("receipts", 0, "returnStatus"),
        "signed",
    ),
]
DOCUMENT_ROUTE = ROUTES[0]


# --- the corpus ------------------------------------------------------------------------------------

MiB = 1024 * 1024


def _deep(depth: int, open_: bytes = b"[", close: bytes = b"]", inner: bytes = b"") -> bytes:
    return open_ * depth + inner + close * depth


def _many_keys(n: int) -> bytes:
    return b"{" + b",".join(b'"k%d":0' % i for i in range(n)) + b"}"


# Hostile values, put into a route's field: the literal JSON text of the value, and where it goes —
# "number" into the number field (a bare number, else the text field), "numeric text" into the number field
# only (as text it is a fine name), "text" and "structure" into the text field.
VALUES: dict[str, tuple[str, bytes]] = {
    "number 1e999999": ("number", b"1e999999"),
    "number -1e999999": ("number", b"-1e999999"),
    "number 1e-999999": ("number", b"1e-999999"),
    "integer of 100,001 digits (10**100000)": ("number", b"1" + b"0" * 100_000),
    "decimal of 100,001 digits": ("number", b"1" + b"0" * 100_000 + b".5"),
    "NaN": ("number", b"NaN"),
    "Infinity": ("number", b"Infinity"),
    "-Infinity": ("number", b"-Infinity"),
    'text "1e999999"': ("numeric text", b'"1e999999"'),
    'text "NaN"': ("numeric text", b'"NaN"'),
    'text "sNaN"': ("numeric text", b'"sNaN"'),
    'text "-Infinity"': ("numeric text", b'"-Infinity"'),
    "NUL in text": ("text", b'"a\\u0000b"'),
    "lone surrogate in text": ("text", b'"a\\ud800b"'),
    "text of 9 MiB": ("text", b'"' + b"A" * (9 * MiB) + b'"'),
    "text of 3,000,000 CJK characters": ("text", b'"' + "长".encode() * 3_000_000 + b'"'),
    "text of 1,000,000 escapes": ("text", b'"' + b"\\u4e2d" * 1_000_000 + b'"'),
    "value nested 100,000 deep": ("structure", _deep(100_000)),
    "value nested 5,000 deep": ("structure", _deep(5_000, b'{"a":', b"}", b"1")),
    "array of 3,000,000 empty objects": ("structure", b"[" + b"{}," * 3_000_000 + b"{}]"),
    "array of 5,000,000 zeros": ("structure", b"[" + b"0," * 5_000_000 + b"0]"),
    "object of 600,000 keys": ("structure", _many_keys(600_000)),
}


def _non_ascii(template: bytes) -> str:
    return template.decode().replace(SENTINEL, "Zoë Müller")


def _encoded(template: bytes, encoding: str) -> bytes:
    return _non_ascii(template).encode(encoding, "replace")


def _utf8_with(template: bytes, bad: bytes) -> bytes:
    return _non_ascii(template).encode().replace("ë".encode(), bad)


# Hostile bodies that replace the route's body (built from its template): structure and encoding.
WHOLE: dict[str, Callable[[bytes], bytes]] = {
    "body nested 100,000 deep (arrays)": lambda _: _deep(100_000),
    "body nested 100,000 deep (objects)": lambda _: _deep(100_000, b'{"a":', b"}", b"1"),
    "body of 600,000 keys": lambda _: _many_keys(600_000),
    "UTF-16 with BOM": lambda t: _encoded(t, "utf-16"),
    "UTF-16BE without BOM": lambda t: _encoded(t, "utf-16-be"),
    "UTF-16LE without BOM": lambda t: _encoded(t, "utf-16-le"),
    "UTF-32": lambda t: _encoded(t, "utf-32"),
    "latin-1": lambda t: _encoded(t, "latin-1"),
    "invalid UTF-8 bytes": lambda t: _utf8_with(t, b"\xff\xfe\xfd"),
    "overlong UTF-8": lambda t: _utf8_with(t, b"\xc0\xaf"),
    "UTF-8-encoded surrogate": lambda t: _utf8_with(t, b"\xed\xa0\x80"),
    "truncated": lambda t: _non_ascii(t).encode()[: len(t) // 2],
    "empty": lambda _: b"",
    "over the body limit (10 MiB + 1)": lambda _: b" " * (10 * MiB + 1),
}


HEAVY = {name for name, (_, value) in VALUES.items() if len(value) > MiB} | {
    "integer of 100,001 digits (10**100000)",
    "decimal of 100,001 digits",
    "body nested 100,000 deep (arrays)",
    "body nested 100,000 deep (objects)",
    "body of 600,000 keys",
    "over the body limit (10 MiB + 1)",
}


def _set(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


def _template(route: Route, field: tuple[Any, ...]) -> bytes:
    template = json.dumps(_set(route.body(), field, SENTINEL), ensure_ascii=False).encode()
    assert template.count(_MARKER) == 1
    return template


_MARKER = json.dumps(SENTINEL, ensure_ascii=False).encode()


def case_names(route: Route) -> list[str]:
    """Every hostile case that applies to ``route``."""
    names = [name for name, (kind, _) in VALUES.items() if kind != "numeric text" or route.number_field]
    return names + [name for name in WHOLE if not (name == "empty" and route.body_optional)]


def case_body(route: Route, name: str) -> bytes:
    """The hostile body ``name`` for ``route`` (built on demand: some are megabytes)."""
    if name in WHOLE:
        return WHOLE[name](_template(route, route.text_field))
    kind, literal = VALUES[name]
    into_number = kind in ("number", "numeric text") and route.number_field is not None
    field = route.number_field if into_number and route.number_field else route.text_field
    return _template(route, field).replace(_MARKER, literal)


# --- sending and checking -----------------------------------------------------------------------------


def headers_for(route: Route, parties: Parties, body: bytes) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if route.key == "signed":
        webhook_id, timestamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
        signature = sign(CALLBACK_SECRET, webhook_id, timestamp, body)
        return headers | {"webhook-id": webhook_id, "webhook-timestamp": timestamp, "webhook-signature": signature}
    keys = {"admin": ADMIN, "platform": parties.platform, "payment": parties.payment, "carrier": parties.logistics}
    return headers | keys[route.key]


def check_refused(response: httpx.Response, route: Route, case: str) -> None:
    """A 4xx problem+json with a stable code and a small body; nothing of the input echoed at length."""
    where = f"{case} → {route.method} {route.path}"
    assert len(response.content) <= MAX_ANSWER_BYTES, f"{where}: a {len(response.content)}-byte answer"
    if route.path.endswith("/batch") and response.status_code == 200:
        # A batch answers 200 with a result per item (docs/api-guide.md): the item itself must be refused.
        [item] = response.json()["items"]
        assert 400 <= item["status"] < 500, f"{where}: item {item['status']} {response.text[:300]}"
        assert item["problem"]["code"], where
        return
    assert 400 <= response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
    assert response.headers["content-type"].startswith(PROBLEM_JSON), where
    assert response.json()["code"], where


async def send(client: httpx.AsyncClient, route: Route, parties: Parties, body: bytes) -> httpx.Response:
    return await client.request(route.method, route.path, content=body, headers=headers_for(route, parties, body))


async def stored_state(client: httpx.AsyncClient) -> dict[str, Any]:
    """What a refused request must not have changed."""
    enterprises = (await client.get("/api/v1/enterprises", headers=ADMIN)).json()["items"]
    goods = (await client.get("/api/v1/goods", headers=ADMIN)).json()["items"]
    records = (await client.get("/api/v1/records", headers=ADMIN)).json()["items"]
    listed = (await client.get(f"/api/v1/enterprises/{PLATFORM}/keys", headers=ADMIN)).json()["items"]
    # A refused request is still a use of its key: the last use may move, nothing else.
    keys = [{k: v for k, v in key.items() if k != "lastUsedAt"} for key in listed]
    delegations = (await client.get(f"/api/v1/enterprises/{PLATFORM}/delegations", headers=ADMIN)).json()
    certificates = (await client.get(f"/api/v1/enterprises/{PLATFORM}/certificates", headers=ADMIN)).json()
    return {
        "enterprises": enterprises,
        "goods": goods,
        "records": records,
        "keys": keys,
        "delegations": delegations,
        "certificates": certificates,
    }


# --- memory, from /proc (no psutil) -------------------------------------------------------------------


def _status(field: str) -> int:
    """A ``/proc/self/status`` field in KiB (0 where there is no /proc)."""
    status = Path("/proc/self/status")
    if not status.exists():
        return 0
    for line in status.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def rss_kib() -> int:
    return _status("VmRSS")


def reset_peak_rss() -> bool:
    """Reset VmHWM (the peak RSS) to the current RSS (Linux ≥ 4.0); False if it cannot be done."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_kib() -> int:
    return _status("VmHWM")


# --- the tests -------------------------------------------------------------------------------------------


# Seconds each on a document route (every unknown member is one validation error to build), so only in the soak
# suite; the figure there shows them until intake stops building errors past the first hundred.
SOAK_ONLY = {"object of 600,000 keys", "body of 600,000 keys"}


def matrix(heavy_everywhere: bool, soak_only: bool = False) -> list[tuple[Route, str]]:
    """(route, case) pairs: every case on every route, or the heavy ones on the document route only (and the
    ``SOAK_ONLY`` ones there too if asked)."""
    skipped = set() if soak_only else SOAK_ONLY
    return [
        (route, name)
        for route in ROUTES
        for name in case_names(route)
        if heavy_everywhere or (name not in skipped and (name not in HEAVY or route is DOCUMENT_ROUTE))
    ]


def test_every_json_route_is_in_the_corpus(app: FastAPI) -> None:
    """A new route with a JSON body must be added to ROUTES."""
    openapi = app.openapi()
    with_json = {
        (method.upper(), path)
        for path, operations in openapi["paths"].items()
        for method, operation in operations.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    }
    templates = {
        (
            r.method,
            r.path.replace(SELLER, "{code}")
            .replace(PLATFORM, "{code}")
            .replace("customs", "{agency}")
            .replace(str(uuid.UUID(int=1)), "{key_id}")
            .replace(str(uuid.UUID(int=2)), "{subscription_id}")
            .replace(f"{uuid.UUID(int=3)}/acknowledge", "{warning_id}/{action}")
            .replace(str(uuid.UUID(int=4)), "{complaint_id}"),
        )
        for r in ROUTES
    }
    templates = {
        (m, p.replace("/api/v1/goods/{code}/JP-SSD-50", "/api/v1/goods/{ebcCode}/{itemNo}")) for m, p in templates
    }
    assert with_json == templates


async def test_hostile_json_is_refused_on_every_route(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    before = await stored_state(client)
    failures = []
    for route, name in matrix(heavy_everywhere=False):
        response = await send(client, route, parties, case_body(route, name))
        try:
            check_refused(response, route, name)
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0])
    assert failures == [], "\n".join(failures)
    assert await stored_state(client) == before
