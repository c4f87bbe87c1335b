"""CEB XML ⇄ documents: read a CEB311/411/511 message into records with the JSON field names, and write
documents, receipts (CEB312/412/512) and format-failure receipts (CEB900) back as CEB XML.

Every message written here is checked against its XSD before it is serialised (``conformance.check``): a
writer never returns bytes our schema would refuse.

Reading is: the hardened parser (``safe_xml``), our XSD for the root element, then a flat walk that turns each
record into a dict — head fields at the top level, ``OrderList`` elements under ``orderList`` — with values as
strings trimmed of XML whitespace (``gnum`` and ``packNo`` as ints). Empty optional elements count as absent.
The dicts then go through the same ``validate_document`` as JSON, so the two formats share every rule.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

from app.ceb import conformance, return_codes, safe_xml
from app.ceb.kinds import (
    BASE_TRANSFER,
    CEB_NS,
    DECIMAL_FIELDS,
    INT_FIELDS,
    INVENTORY_HEAD,
    INVENTORY_LIST,
    KIND_BY_MESSAGE,
    KINDS,
    XSD_BY_MESSAGE,
    DocType,
    MessageKind,
)
from app.ceb.signature import EnvelopedSignature, read_signature
from app.schemas.ceb_types import CHINA_TZ

_P = "{" + CEB_NS + "}"
_P_LEN = len(_P)
# Characters XML 1.0 cannot carry at all (not even as a character reference).
_XML_SPACE = " \t\n\r"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# A CEB message type as CEB900 oriMessageType names it (at most 15 characters, e.g. CEB311Message).
_MESSAGE_TYPE = re.compile(r"^CEB\d{3}Message$")
UNKNOWN_MESSAGE_TYPE = "Unknown"  # the official schema's word for a message type that cannot be read


class MessageRejected(Exception):
    """The whole message is refused; answered with a CEB900 ``MessageReturn``."""

    def __init__(
        self,
        code: str,
        detail: str,
        problems: Sequence[object] = (),
        *,
        message_type: str | None = None,
        message_guid: str | None = None,
        http_status: int = 400,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.return_status = return_codes.MESSAGE_CODES[code][0]
        self.detail = detail
        self.problems = [str(p) for p in problems]
        self.message_type = message_type
        self.message_guid = message_guid
        self.http_status = http_status

    @property
    def return_info(self) -> str:
        return return_codes.return_info(
            self.code, self.detail, self.problems, limit=return_codes.MESSAGE_RETURN_INFO_MAX
        )


@dataclass(frozen=True)
class ParsedMessage:
    kind: MessageKind
    guid: str
    version: str
    transfer: dict[str, str]
    records: list[dict[str, Any]] = field(default_factory=list)
    # Each record's guid exactly as written (the XSD checked its raw length): what a receipt echoes for a
    # record whose guid the wire model refused.
    raw_guids: list[str] = field(default_factory=list)
    signature: EnvelopedSignature | None = None  # checked by app/services/message_signatures.py


@dataclass(frozen=True)
class ReturnRow:
    """One ``…Return`` of a receipt: the record's guid and business key, and the answer."""

    guid: str
    keys: Mapping[str, str]
    status: str
    info: str
    at: datetime | None = None  # when the answer was given (receipts over time); now, if not given


# --- reading -----------------------------------------------------------------------------------

_REFUSALS = {
    "not_well_formed": ("XML_NOT_WELL_FORMED", "The body is not well-formed XML"),
    "doctype": ("XML_DOCTYPE_FORBIDDEN", "A DOCTYPE is not allowed"),
    "xinclude": ("XML_XINCLUDE_FORBIDDEN", "XInclude is not allowed"),
}


def parse_message(body: bytes) -> ParsedMessage:
    """Read a CEB311/411/511 message; :class:`MessageRejected` when it is not one we can accept."""
    try:
        root = safe_xml.parse(body)
    except safe_xml.XmlRejected as exc:
        code, detail = _REFUSALS[exc.kind]
        raise MessageRejected(code, detail, exc.problems) from None
    tag = root.tag
    local = tag[_P_LEN:] if tag.startswith(_P) else etree.QName(root).localname
    guid = (root.get("guid") or "").strip() or None
    kind = KIND_BY_MESSAGE.get(local) if tag.startswith(_P) else None
    if kind is None:
        where = "" if tag.startswith(_P) else f" (namespace must be {CEB_NS})"
        readable = tag.startswith(_P) and _MESSAGE_TYPE.match(local) is not None
        raise MessageRejected(
            "MESSAGE_TYPE_NOT_ACCEPTED",
            f"{local}{where} is not accepted here; send CEB311Message, CEB411Message or CEB511Message",
            message_type=local if readable else UNKNOWN_MESSAGE_TYPE,
            message_guid=guid,
        )
    problems = safe_xml.validate(root, kind.xsd)
    if problems:
        raise MessageRejected(
            "XML_SCHEMA_INVALID",
            f"The {kind.message} does not follow the schema",
            [_short(p) for p in problems],
            message_type=kind.message,
            message_guid=guid,
        )
    # Before anything is read: the signature is detached from this very tree, its digest taken over the rest.
    signature = read_signature(root)
    elements = list(root.iterchildren(_P + kind.record))
    records = [_record(kind, element) for element in elements]
    # The XSD made the head's first child its guid.
    raw_guids = [element[0][0].text or "" for element in elements]
    transfer_element = root.find(_P + "BaseTransfer")
    transfer = {k: str(v) for k, v in _flat(transfer_element).items()} if transfer_element is not None else {}
    version = (root.get("version") or "").strip()
    return ParsedMessage(kind, guid or "", version, transfer, records, raw_guids, signature)


def _short(problem: safe_xml.XmlProblem) -> str:
    return str(problem).replace(_P, "ceb:")


def _flat(element: etree._Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in element:
        text = child.text
        if text is None:
            continue
        # Only XML whitespace (what the XSD collapses) is trimmed here; the wire models trim the rest,
        # exactly as they do for JSON.
        text = text.strip(_XML_SPACE)
        if not text:
            continue  # an empty optional element counts as absent
        name = child.tag[_P_LEN:]
        out[name] = int(text) if name in INT_FIELDS else text
    return out


def _record(kind: MessageKind, element: etree._Element) -> dict[str, Any]:
    children = list(element)
    record = _flat(children[0])
    if kind.lines is not None:
        record["orderList"] = [_flat(line) for line in children[1:]]
    return record


# --- writing -----------------------------------------------------------------------------------


def new_guid() -> str:
    return str(uuid.uuid4()).upper()


def return_time(now: datetime | None = None) -> str:
    """C17 ``YYYYMMDDhhmmssSSS``, China time."""
    moment = (now or datetime.now(CHINA_TZ)).astimezone(CHINA_TZ)
    return moment.strftime("%Y%m%d%H%M%S") + f"{moment.microsecond // 1000:03d}"


def _plain(value: Any) -> str:
    """An N19,5 value without exponent (``1E+2`` → ``100``), keeping the sender's spelling otherwise."""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    text = format(number, "f")
    if "." in text and len(text.split(".", 1)[1]) > 5:
        text = format(number.normalize(), "f")
    return text


def _fill(parent: etree._Element, fields: Iterable[str], values: Mapping[str, Any]) -> None:
    for name in fields:
        value = values.get(name)
        if value is None or value == "":
            continue
        child = etree.SubElement(parent, _P + name)
        child.text = _plain(value) if name in DECIMAL_FIELDS else str(value)


def render_message(
    doc_type: DocType,
    documents: Sequence[Mapping[str, Any]],
    transfer: Mapping[str, str],
    *,
    guid: str | None = None,
    version: str = "1.0",
    pretty: bool = False,
    check: bool = True,
) -> bytes:
    """Documents (CEB field names, as stored or as ``OrderIn.model_dump()``) → a CEB311/411/511 message.

    ``check=False`` only to build test input — a message as a sender might get it wrong (101 records, a value
    too long); everything the service itself writes is checked."""
    kind = KINDS[doc_type]
    root = etree.Element(_P + kind.message, nsmap={"ceb": CEB_NS})
    root.set("guid", guid or new_guid())
    root.set("version", version)
    for document in documents:
        record = etree.SubElement(root, _P + kind.record)
        _fill(etree.SubElement(record, _P + kind.head), kind.head_fields, document)
        if kind.lines is not None:
            for line in document.get("orderList") or ():
                _fill(etree.SubElement(record, _P + kind.lines), kind.line_fields, line)
    _fill(etree.SubElement(root, _P + "BaseTransfer"), BASE_TRANSFER, transfer)
    if not check:
        return _serialised(root, pretty)
    return _bytes(root, pretty)


def render_inventory(
    inventory: Mapping[str, Any], transfer: Mapping[str, str], *, guid: str | None = None, pretty: bool = False
) -> bytes:
    """A declaration's inventory (清单) as a one-record CEB621 message, unsigned.

    Checked against CEB621.xsd with only its ``ds:Signature`` requirement set aside (signing is a separate
    step, and a signed message is checked against the schema as it stands).
    """
    return _bytes(inventory_element(inventory, transfer, guid=guid), pretty, signature_optional=True)


def inventory_element(
    inventory: Mapping[str, Any], transfer: Mapping[str, str], *, guid: str | None = None
) -> etree._Element:
    """The CEB621 message tree of an inventory, not yet checked: ``render_inventory`` checks it unsigned; the
    signing path signs this very tree and checks it once, signed (no serialise-and-parse in between)."""
    root = etree.Element(_P + "CEB621Message", nsmap={"ceb": CEB_NS})
    root.set("guid", guid or new_guid())
    root.set("version", "1.0")
    record = etree.SubElement(root, _P + "Inventory")
    _fill(etree.SubElement(record, _P + "InventoryHead"), INVENTORY_HEAD, inventory)
    for line in inventory.get("inventoryList") or ():
        _fill(etree.SubElement(record, _P + "InventoryList"), INVENTORY_LIST, line)
    _fill(etree.SubElement(root, _P + "BaseTransfer"), BASE_TRANSFER, transfer)
    return root


def _receipt_root(message: str, guid: str | None) -> etree._Element:
    # Receipts are written in the default-namespace form, as the spec's samples show.
    root = etree.Element(_P + message, nsmap={None: CEB_NS})  # type: ignore[dict-item]
    root.set("guid", guid or new_guid())
    root.set("version", "1.0")
    return root


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


_RECEIPT_NAMESPACE = uuid.UUID("3f0c6b7e-5d1a-4f2b-8e9c-7a6b5c4d3e21")


def render_receipts(
    kind: MessageKind,
    rows: Sequence[ReturnRow],
    now: datetime | None = None,
    guid: str | None = None,
    pretty: bool = False,
) -> bytes:
    """One ``OrderReturn`` / ``PaymentReturn`` / ``LogisticsReturn`` per record, in message order.

    Without ``guid`` the message guid is derived from the rows (each with its own ``returnTime``), so the
    same answer is the same bytes: a replayed message, answered with each record's first acceptance and its
    time, gets back exactly the receipt it got the first time.
    """
    at = return_time(now)
    names = ("guid", *kind.receipt_keys, "returnStatus", "returnTime", "returnInfo")
    texts = []
    for row in rows:
        info = row.info if len(row.info) <= return_codes.RETURN_INFO_MAX else row.info[: return_codes.RETURN_INFO_MAX]
        when = return_time(row.at) if row.at is not None else at
        values = {"guid": row.guid, **row.keys, "returnStatus": row.status, "returnTime": when, "returnInfo": info}
        texts.append([_text(str(values.get(name) or "-")) for name in names])
    if guid is None:
        digest = "\x1e".join("\x1f".join(row) for row in texts)
        guid = str(uuid.uuid5(_RECEIPT_NAMESPACE, f"{kind.receipt_message}\x1d{digest}")).upper()
    root = _receipt_root(kind.receipt_message, guid)
    for row_texts in texts:
        record = etree.SubElement(root, _P + kind.receipt_record)
        for name, text in zip(names, row_texts, strict=True):
            etree.SubElement(record, _P + name).text = text
    return _bytes(root, pretty)


INVENTORY_RETURN_FIELDS = (
    "guid",
    "customsCode",
    "ebpCode",
    "ebcCode",
    "agentCode",
    "copNo",
    "preNo",
    "invtNo",
    "returnStatus",
    "returnTime",
    "returnInfo",
)


def render_inventory_receipts(rows: Sequence[Mapping[str, Any]], guid: str | None = None) -> bytes:
    """A CEB622Message: one ``InventoryReturn`` per receipt of the inventory, in the order given; each row has
    the InventoryReturn fields, ``returnTime`` as the agency's C17 text or a datetime."""
    root = _receipt_root("CEB622Message", guid)
    add_return_records(root, "InventoryReturn", INVENTORY_RETURN_FIELDS, rows)
    return _bytes(root, False)


# The fields of an inventory, cancel or return receipt that may be left out when empty (CEB622 / 624 / 626).
OPTIONAL_RETURN_FIELDS = frozenset({"customsCode", "ebpCode", "ebcCode", "agentCode", "invtNo"})


def add_return_records(
    root: etree._Element, record_name: str, fields: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> None:
    """One ``record_name`` per row, with ``fields`` in order: ``returnTime`` as C17 text or a datetime,
    ``returnInfo`` cut to its limit, the optional keys left out when empty."""
    for row in rows:
        record = etree.SubElement(root, _P + record_name)
        for name in fields:
            value = row.get(name)
            if name == "returnTime" and isinstance(value, datetime):
                value = return_time(value)
            elif name == "returnInfo":
                value = str(value or "-")[: return_codes.RETURN_INFO_MAX]
            if value in (None, "") and name in OPTIONAL_RETURN_FIELDS:
                continue
            etree.SubElement(record, _P + name).text = _text(str(value))


ORI_COP_MSG_ID_MAX = 255  # CEB900 oriCopMsgId, official schema


def ori_message_type(message_type: str | None) -> str:
    """CEB900 ``oriMessageType``: the refused message's type when it reads as one (``CEB311Message``, at most
    15 characters), else ``Unknown`` — a body that is not XML, a root outside the CEB namespace, or a root such
    as ``CEB311MessageExtended``."""
    if message_type and _MESSAGE_TYPE.match(message_type):
        return message_type
    return UNKNOWN_MESSAGE_TYPE


def render_message_return(
    rejected: MessageRejected, now: datetime | None = None, guid: str | None = None, pretty: bool = False
) -> bytes:
    """A CEB900 ``MessageReturn`` for a refused message. The root and ``MessageReturn`` carry the same guid;
    ``oriCopMsgId``, ``oriMessageType`` and ``oriBizMessage`` are always there (the official schema requires
    them), empty when unknown — ``oriBizMessage`` always: the original body is not echoed back."""
    guid = guid or new_guid()
    root = _receipt_root("CEB900Message", guid)
    record = etree.SubElement(root, _P + "MessageReturn")
    values = (
        ("guid", guid),
        ("returnStatus", rejected.return_status),
        ("returnInfo", rejected.return_info),
        ("returnTime", return_time(now)),
        ("oriCopMsgId", (rejected.message_guid or "")[:ORI_COP_MSG_ID_MAX]),
        ("oriMessageType", ori_message_type(rejected.message_type)),
        ("oriBizMessage", ""),
    )
    for name, value in values:
        etree.SubElement(record, _P + name).text = _text(value)
    return _bytes(root, pretty)


_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def _bytes(root: etree._Element, pretty: bool, *, signature_optional: bool = False) -> bytes:
    """The message as UTF-8 bytes, once it is checked against its XSD (``OutgoingMessageInvalid`` if not)."""
    conformance.check(root, signature_optional=signature_optional)
    return _serialised(root, pretty)


def _serialised(root: etree._Element, pretty: bool) -> bytes:
    return _DECLARATION + bytes(etree.tostring(root, encoding="UTF-8", pretty_print=pretty))


# --- reading receipts (the CLI and tests) ------------------------------------------------------


@dataclass(frozen=True)
class Receipts:
    message: str  # CEB312Message, …, CEB900Message
    records: list[dict[str, str]]
    problems: list[str]  # XSD problems (empty for a valid receipt)


def parse_receipts(body: bytes) -> Receipts:
    """Read any receipt we write (or any message our XSDs know) into flat records of strings."""
    root = safe_xml.parse(body)
    local = etree.QName(root).localname
    xsd = XSD_BY_MESSAGE.get(local)
    problems = [str(p) for p in safe_xml.validate(root, xsd)] if xsd else [f"no XSD for {local}"]
    records = [{k: str(v) for k, v in _flat(child).items()} for child in root if child.tag.startswith(_P)]
    return Receipts(local, records, problems)
