"""CEB623 (撤销申请单) and CEB625 (退货申请单) and their receipts CEB624 / CEB626: read from an enterprise, written
for customs (then signed, ``app/services/after_release_messages.py``) and as receipts.

Field order is the element order of our XSDs (``CEB623.xsd`` … ``CEB626.xsd``, ceb-messages.md §9). Reading
follows ``codec.parse_message``: the hardened parser, the XSD (its ``ds:Signature`` requirement set aside, the
sender's signature policy decides), then flat dicts with the JSON field names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lxml import etree

from app.ceb import safe_xml
from app.ceb.codec import (
    MessageRejected,
    _bytes,
    _fill,
    _flat,
    _receipt_root,
    _short,
    add_return_records,
    new_guid,
)
from app.ceb.kinds import BASE_TRANSFER, CEB_NS, XSD_BY_MESSAGE
from app.ceb.signature import EnvelopedSignature, read_signature

RequestKind = Literal["cancel", "return"]

_P = "{" + CEB_NS + "}"

# InvtCancel (CEB623) and InvtRefundHead (CEB625): the same fields, in XSD order.
REQUEST_HEAD = (
    "guid", "appType", "appTime", "appStatus", "customsCode", "orderNo", "ebpCode", "ebpName", "ebcCode",
    "ebcName", "logisticsNo", "logisticsCode", "logisticsName", "copNo", "preNo", "invtNo", "buyerIdType",
    "buyerIdNumber", "buyerName", "buyerTelephone", "agentCode", "agentName", "reason", "note",
)  # fmt: skip
REFUND_LIST = ("gnum", "gcode", "gname", "qty", "unit", "note")
REQUEST_RETURN = (
    "guid", "customsCode", "agentCode", "ebpCode", "ebcCode", "copNo", "preNo", "invtNo", "returnStatus",
    "returnTime", "returnInfo",
)  # fmt: skip


@dataclass(frozen=True)
class RequestMessageKind:
    kind: RequestKind
    message: str
    record: str
    head: str | None  # InvtRefundHead; a cancel's fields are the record itself
    lines: str | None
    receipt_message: str
    receipt_record: str


CANCEL = RequestMessageKind("cancel", "CEB623Message", "InvtCancel", None, None, "CEB624Message", "InvtCancelReturn")
RETURN = RequestMessageKind(
    "return", "CEB625Message", "InvtRefund", "InvtRefundHead", "InvtRefundList", "CEB626Message", "InvtRefundReturn"
)
REQUEST_KINDS: dict[RequestKind, RequestMessageKind] = {"cancel": CANCEL, "return": RETURN}
KIND_BY_MESSAGE = {kind.message: kind for kind in REQUEST_KINDS.values()}


def request_message_type(body: bytes) -> RequestMessageKind | None:
    """The request kind when ``body`` is (by its root element) a CEB623 or CEB625 message; None otherwise (or
    when it cannot be read at all — the document door answers that)."""
    if b"CEB623Message" not in body and b"CEB625Message" not in body:
        return None  # most messages are documents: no second parse for them
    try:
        root = safe_xml.parse(body)
    except safe_xml.XmlRejected:
        return None
    if not root.tag.startswith(_P):
        return None
    return KIND_BY_MESSAGE.get(root.tag[len(_P) :])


@dataclass(frozen=True)
class ParsedRequests:
    kind: RequestMessageKind
    guid: str
    transfer: dict[str, str]
    records: list[dict[str, Any]] = field(default_factory=list)  # head fields flat, lines under invtRefundList
    signature: EnvelopedSignature | None = None


def parse_requests(body: bytes) -> ParsedRequests:
    """Read a CEB623 / CEB625 message; :class:`MessageRejected` when it breaks our XSD."""
    root = safe_xml.parse(body)
    local = root.tag[len(_P) :]
    kind = KIND_BY_MESSAGE[local]
    guid = (root.get("guid") or "").strip()
    problems = safe_xml.validate(root, XSD_BY_MESSAGE[local], signature_optional=True)
    if problems:
        raise MessageRejected(
            "XML_SCHEMA_INVALID",
            f"The {local} does not follow the schema",
            [_short(p) for p in problems],
            message_type=local,
            message_guid=guid,
        )
    signature = read_signature(root)
    records = []
    for element in root.iterchildren(_P + kind.record):
        if kind.head is None:
            records.append(_flat(element))
        else:
            children = list(element)
            records.append({**_flat(children[0]), "invtRefundList": [_flat(line) for line in children[1:]]})
    transfer_element = root.find(_P + "BaseTransfer")
    transfer = {k: str(v) for k, v in _flat(transfer_element).items()} if transfer_element is not None else {}
    return ParsedRequests(kind, guid, transfer, records, signature)


def request_element(
    kind: RequestKind, fields: Mapping[str, Any], transfer: Mapping[str, str], *, guid: str | None = None
) -> etree._Element:
    """The one-request CEB623 / CEB625 tree, not yet checked (signed, then checked, by the caller)."""
    spec = REQUEST_KINDS[kind]
    root = etree.Element(_P + spec.message, nsmap={"ceb": CEB_NS})
    root.set("guid", guid or new_guid())
    root.set("version", "1.0")
    record = etree.SubElement(root, _P + spec.record)
    head = record if spec.head is None else etree.SubElement(record, _P + spec.head)
    _fill(head, REQUEST_HEAD, fields)
    if spec.lines is not None:
        for line in fields.get("invtRefundList") or ():
            _fill(etree.SubElement(record, _P + spec.lines), REFUND_LIST, line)
    _fill(etree.SubElement(root, _P + "BaseTransfer"), BASE_TRANSFER, transfer)
    return root


def render_request_receipts(kind: RequestKind, rows: Sequence[Mapping[str, Any]], guid: str | None = None) -> bytes:
    """A CEB624 / CEB626 message: one ``…Return`` per answer, in the order given; ``returnTime`` as C17 text or
    a datetime."""
    spec = REQUEST_KINDS[kind]
    root = _receipt_root(spec.receipt_message, guid)
    add_return_records(root, spec.receipt_record, REQUEST_RETURN, rows)
    return _bytes(root, False)
