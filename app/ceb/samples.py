"""Sample CEB messages built from the Swagger examples: the matched purchase as CEB311 + CEB411 + CEB511.

They are the request examples of ``POST /api/v1/messages`` and the files under ``docs/samples/`` (a test
keeps those files equal to what this module builds; ``sw samples`` rewrites them).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from app.ceb import codec
from app.ceb.codec import MessageRejected, ReturnRow
from app.ceb.kinds import KINDS, DocType
from app.schemas import examples

SAMPLES_DIR = Path(__file__).resolve().parent.parent.parent / "docs" / "samples"
_NAMESPACE = uuid.UUID("0b3c2f6e-5a41-4a7e-8f0e-3c9d7c1e2a55")
SAMPLE_TIME = datetime.fromisoformat("2026-11-23T10:20:00.123+08:00")


def _guid(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, name)).upper()


_SENDERS: dict[DocType, tuple[dict[str, Any], dict[str, Any], str]] = {
    # doc type: (document, sending enterprise, file name)
    "order": (examples.ORDER, examples.PLATFORM, "CEB311-order.xml"),
    "payment": (examples.PAYMENT, examples.PAYMENT_FIRM, "CEB411-payment.xml"),
    "waybill": (examples.WAYBILL, examples.CARRIER, "CEB511-waybill.xml"),
}


def sample_document(doc_type: DocType) -> dict[str, Any]:
    document, _, _ = _SENDERS[doc_type]
    return {
        "guid": _guid(f"{doc_type}:{document['orderNo']}"),
        "appType": "1",
        "appTime": "20261123101800",
        "appStatus": "2",
        **document,
    }


def transfer_for(enterprise: dict[str, Any]) -> dict[str, str]:
    return {
        "copCode": enterprise["code"],
        "copName": enterprise["name"],
        "dxpMode": "DXP",
        "dxpId": f"DXPENT{enterprise['code']}",
    }


def sample_message(doc_type: DocType) -> bytes:
    _, sender, _ = _SENDERS[doc_type]
    return codec.render_message(
        doc_type,
        [sample_document(doc_type)],
        transfer_for(sender),
        guid=_guid(f"message:{doc_type}"),
        pretty=True,
    )


def sample_files() -> dict[str, bytes]:
    return {name: sample_message(doc_type) for doc_type, (_, _, name) in _SENDERS.items()}


def sample_receipt(doc_type: DocType) -> bytes:
    kind = KINDS[doc_type]
    document = sample_document(doc_type)
    row = ReturnRow(
        guid=document["guid"],
        keys={name: document[name] for name in kind.receipt_keys},
        status="2",
        info=f"新增申报成功[{document['guid']}]",
    )
    return codec.render_receipts(kind, [row], now=SAMPLE_TIME, guid=_guid(f"receipt:{doc_type}"), pretty=True)


def sample_message_return(code: str = "XML_SCHEMA_INVALID") -> bytes:
    problems = {
        "XML_SCHEMA_INVALID": [
            "line 22: Element 'ceb:acturalPaid': '24612x' is not a valid value of the atomic type 'ceb:N19_5'."
        ],
    }.get(code, [])
    detail = {
        "XML_SCHEMA_INVALID": "The CEB311Message does not follow the schema",
        "COP_CODE_MISMATCH": "BaseTransfer/copCode 3120960A09 is not the enterprise of this key (3120960A01); "
        "transmit for other enterprises through a delegation, with your own copCode",
    }.get(code, code)
    rejected = MessageRejected(
        code, detail, problems, message_type="CEB311Message", message_guid=_guid("message:order")
    )
    return codec.render_message_return(rejected, now=SAMPLE_TIME, guid=_guid(f"900:{code}"), pretty=True)


def write() -> list[Path]:
    SAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for name, body in sample_files().items():
        path = SAMPLES_DIR / name
        path.write_bytes(body)
        written.append(path)
    return written
