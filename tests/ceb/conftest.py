"""Helpers for the CEB XML tests: messages built from the factories' documents, posted over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from app.ceb import codec
from app.ceb.kinds import DocType
from app.schemas import examples
from tests.factories import Parties, file_parties

CEB_NS = "http://www.chinaport.gov.cn/ceb"
SENDERS = {
    "order": examples.PLATFORM,
    "payment": examples.PAYMENT_FIRM,
    "waybill": examples.CARRIER,
}


def ceb(document: dict[str, Any], **transport: str) -> dict[str, Any]:
    """A JSON document with the transport fields the XSD requires (guid, appType, appTime, appStatus)."""
    return {
        "guid": str(uuid.uuid4()).upper(),
        "appType": "1",
        "appTime": "20261123101800",
        "appStatus": "2",
        **document,
        **transport,
    }


def transfer(code: str, name: str = "传输企业") -> dict[str, str]:
    return {"copCode": code, "copName": name, "dxpMode": "DXP", "dxpId": f"DXPENT{code}"}


def message(doc_type: DocType, documents: Sequence[dict[str, Any]], cop_code: str | None = None) -> bytes:
    """A CEB311/411/511 message (ceb:-prefixed, UTF-8) of the given documents, as a sender wrote it (not checked:
    tests send messages that break the XSD on purpose)."""
    sender = SENDERS[doc_type]
    code = cop_code or str(sender["code"])
    body = [ceb(d) if "guid" not in d else d for d in documents]
    return codec.render_message(doc_type, body, transfer(code, str(sender["name"])), check=False)


async def post_xml(
    client: httpx.AsyncClient,
    body: bytes,
    headers: dict[str, str],
    content_type: str = "application/xml",
) -> httpx.Response:
    return await client.post("/api/v1/messages", content=body, headers={**headers, "Content-Type": content_type})


def receipts(response: httpx.Response, expected_root: str | None = None) -> list[dict[str, str]]:
    """The ``…Return`` records of an XML answer, after checking it against our XSD."""
    assert response.headers["content-type"].startswith("application/xml"), response.text
    parsed = codec.parse_receipts(response.content)
    assert parsed.problems == [], parsed.problems
    if expected_root is not None:
        assert parsed.message == expected_root, response.text
    return parsed.records


@pytest.fixture
async def parties(client: httpx.AsyncClient) -> Parties:
    return await file_parties(client)
