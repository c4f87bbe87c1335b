"""Mock customs: a cancel (撤销, CEB623) or a return (退货, CEB625) of an inventory it was declared — pure.

Written apart from the single window's own rules (app/rules/after_release.py): customs reads the signed
message it is sent, checks the signature with the single window's certificate, and decides with what *it*
remembers of the inventory (``KnownInventory``: the lines it accepted and when it released them), not with
what the package claims. Approval is ``120`` (入库) then ``399`` (审结); a refusal is ``100`` with the spec's
``-623xxx`` / ``-625xxx`` code in ``returnInfo``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from app.ceb import safe_xml
from app.ceb.kinds import CEB_NS
from app.ceb.signature import read_signature
from app.crypto.certificates import CertificateInfo, fingerprint
from app.mock_agencies.rules.common import CN_TZ, AgencyDecision, Receipt, number, reject, text, whole

_P = "{" + CEB_NS + "}"
RETURN_DAYS = 30  # 退货申请: within 30 days of release
GOODS_BACK_DAYS = 45  # the goods back at the supervised site within 45 days of release
# InvtCancel / InvtRefundHead fields the spec marks required (ceb-messages.md §9).
REQUIRED = (
    "guid", "appType", "appTime", "appStatus", "customsCode", "orderNo", "ebpCode", "ebpName", "ebcCode",
    "ebcName", "logisticsNo", "logisticsCode", "logisticsName", "invtNo", "buyerIdType", "buyerIdNumber",
    "buyerName", "buyerTelephone", "agentCode", "agentName", "reason",
)  # fmt: skip
COMPARED = ("orderNo", "ebpCode", "ebcCode", "logisticsNo", "buyerIdNumber", "agentCode")


@dataclass
class KnownInventory:
    """What customs keeps of an inventory it accepted."""

    head: dict[str, str]  # the COMPARED fields
    lines: dict[int, Decimal]  # gnum → declared qty
    values: dict[int, Decimal] = field(default_factory=dict)  # gnum → declared totalPrice
    released_at: datetime | None = None
    state: str = "declared"  # declared | cancelled | returned
    invt_no: str = ""  # the number customs gave the inventory
    returned: dict[int, Decimal] = field(default_factory=dict)


def known_inventory(package: Mapping[str, Any]) -> KnownInventory:
    inventory = package.get("inventory") if isinstance(package.get("inventory"), Mapping) else {}
    assert isinstance(inventory, Mapping)
    lines, values = {}, {}
    for line in inventory.get("inventoryList") or ():
        gnum, qty = whole(line.get("gnum")), number(line.get("qty"))
        if gnum is not None and qty is not None:
            lines[gnum] = qty
            values[gnum] = number(line.get("totalPrice")) or Decimal(0)
    return KnownInventory({name: text(inventory.get(name)) for name in COMPARED}, lines, values)


def returned_share(known: KnownInventory) -> Decimal:
    """The part of the purchase a decided request gives back: all of it for a cancel, else the value of the
    quantities returned over the value declared."""
    declared = sum(known.values.values(), Decimal(0))
    if known.state == "cancelled" or declared <= 0:
        return Decimal(1)
    returned = sum(
        (
            known.values.get(g, Decimal(0)) * qty / known.lines[g]
            for g, qty in known.returned.items()
            if known.lines.get(g)
        ),
        Decimal(0),
    )
    return min(returned / declared, Decimal(1))


@dataclass(frozen=True)
class SignedRequest:
    head: dict[str, str]
    lines: list[dict[str, str]]


def read_request(message: Any, record: str, certificate: CertificateInfo) -> SignedRequest | str:
    """The request's fields from the signed message, or why customs cannot take it."""
    if not isinstance(message, str) or not message:
        return "申请单未加签 (the signed message is missing)"
    try:
        root = safe_xml.parse(message.encode())
    except safe_xml.XmlRejected as exc:
        return f"申请单无法解析 (the signed message cannot be read: {exc})"
    signature = read_signature(root)
    if signature is None:
        return "申请单未加签 (no ds:Signature)"
    if signature.problem is not None:
        return f"签名验证失败 ({signature.problem})"
    if fingerprint(signature.certificate) != certificate.fingerprint or not signature.verified_by(
        certificate.public_key
    ):
        return "签名验证失败 (the signature does not verify with the single window's certificate)"
    element = root.find(_P + record)
    if element is None:
        return f"申请单缺少{record} (no {record})"
    head_element = element.find(_P + "InvtRefundHead") if record == "InvtRefund" else element
    if head_element is None:
        return "申请单缺少表头 (no InvtRefundHead)"
    head = {child.tag[len(_P) :]: (child.text or "").strip() for child in head_element}
    lines = [
        {child.tag[len(_P) :]: (child.text or "").strip() for child in line}
        for line in element.iterchildren(_P + "InvtRefundList")
    ]
    return SignedRequest(head, lines)


def _common_problems(request: SignedRequest, known: KnownInventory | None, code: str) -> list[str]:
    missing = [name for name in REQUIRED if not request.head.get(name)]
    if missing:
        return [f"{code} 申请单缺少{', '.join(missing)} (required: {', '.join(missing)})"]
    if known is None:
        return [f"{code} 清单不存在 (customs has no such inventory)"]
    differing = [name for name in COMPARED if request.head.get(name, "") != known.head.get(name, "")]
    if differing:
        return [f"{code} 申请单与清单不一致 (differs from the inventory: {', '.join(differing)})"]
    if known.state == "cancelled":
        return [f"{code} 清单已撤销 (the inventory is cancelled)"]
    if known.state == "returned":
        return [f"{code} 清单已退货 (the goods were returned)"]
    return []


def cancel_decision(message: Any, known: KnownInventory | None, certificate: CertificateInfo) -> AgencyDecision:
    request = read_request(message, "InvtCancel", certificate)
    if isinstance(request, str):
        return reject(f"-623029 {request}")
    problems = _common_problems(request, known, "-623001")
    if problems:
        return reject(*problems)
    return AgencyDecision((Receipt("120", "海关入库"), Receipt("399", "撤销申请审核通过 (cancel approved)")))


def refund_decision(
    message: Any, known: KnownInventory | None, certificate: CertificateInfo, now: datetime
) -> AgencyDecision:
    request = read_request(message, "InvtRefund", certificate)
    if isinstance(request, str):
        return reject(f"-625029 {request}")
    problems = _common_problems(request, known, "-625001")
    if problems:
        return reject(*problems)
    assert known is not None
    if known.released_at is None:
        return reject("-625001 清单未放行,不能退货 (the inventory is not released)")
    if now > known.released_at + timedelta(days=RETURN_DAYS):
        return reject(f"-625003 超过放行后{RETURN_DAYS}日退货期限 (more than {RETURN_DAYS} days after release)")
    if not request.lines:
        return reject("-625209 退货表体为空 (no InvtRefundList)")
    for line in request.lines:
        gnum, qty = whole(line.get("gnum")), number(line.get("qty"))
        if gnum is None or gnum not in known.lines:
            return reject(f"-625209 清单表体{line.get('gnum')}不存在 (inventory line not found)")
        if qty is None or qty <= 0 or qty > known.lines[gnum]:
            return reject(f"-625010 第{gnum}项退货数量{qty}超过申报数量 (more than declared)")
    back_by = (known.released_at + timedelta(days=GOODS_BACK_DAYS)).astimezone(CN_TZ).date().isoformat()
    return AgencyDecision(
        (
            Receipt("120", "海关入库"),
            Receipt(
                "399", f"退货申请审核通过,货物须于{back_by}前退回监管场所 (return approved; goods back by {back_by})"
            ),
        )
    )


def returned_quantities(message: Any) -> dict[int, Decimal]:
    """The lines and quantities of an approved return (read again from the message, which was checked)."""
    root = safe_xml.parse(str(message).encode())
    out = {}
    for line in root.iter(_P + "InvtRefundList"):
        gnum, qty = whole(line.findtext(_P + "gnum")), number(line.findtext(_P + "qty"))
        if gnum is not None and qty is not None:
            out[gnum] = qty
    return out
