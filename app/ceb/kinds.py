"""The CEB messages we read and write, with their field order (ceb-messages.md §2, §3).

The field tuples are the element order of our XSDs (a test checks the two agree) and the field names of the
JSON wire models in ``app/schemas/documents.py`` (a test checks that too): one record of a CEB311 message is
exactly one ``OrderIn``, head fields flat and the ``OrderList`` elements under ``orderList``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CEB_NS = "http://www.chinaport.gov.cn/ceb"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"

DocType = Literal["order", "payment", "waybill"]

ORDER_HEAD = (
    "guid",
    "appType",
    "appTime",
    "appStatus",
    "orderType",
    "orderNo",
    "ebpCode",
    "ebpName",
    "ebcCode",
    "ebcName",
    "goodsValue",
    "freight",
    "discount",
    "taxTotal",
    "acturalPaid",
    "currency",
    "buyerRegNo",
    "buyerName",
    "buyerTelephone",
    "buyerIdType",
    "buyerIdNumber",
    "payCode",
    "payName",
    "payTransactionId",
    "batchNumbers",
    "consignee",
    "consigneeTelephone",
    "consigneeAddress",
    "consigneeDistrict",
    "note",
)
ORDER_LIST = (
    "gnum",
    "itemNo",
    "itemName",
    "gmodel",
    "itemDescribe",
    "barCode",
    "unit",
    "qty",
    "price",
    "totalPrice",
    "currency",
    "country",
    "note",
)
PAYMENT_HEAD = (
    "guid",
    "appType",
    "appTime",
    "appStatus",
    "payCode",
    "payName",
    "payTransactionId",
    "orderNo",
    "ebpCode",
    "ebpName",
    "payerIdType",
    "payerIdNumber",
    "payerName",
    "telephone",
    "amountPaid",
    "currency",
    "payTime",
    "note",
)
LOGISTICS_HEAD = (
    "guid",
    "appType",
    "appTime",
    "appStatus",
    "logisticsCode",
    "logisticsName",
    "logisticsNo",
    "billNo",
    "orderNo",
    "freight",
    "insuredFee",
    "currency",
    "weight",
    "packNo",
    "goodsInfo",
    "consignee",
    "consigneeAddress",
    "consigneeTelephone",
    "note",
)
BASE_TRANSFER = ("copCode", "copName", "dxpMode", "dxpId", "note")

# CEB621 InventoryHead / InventoryList, in XSD order (ceb-messages.md §2.4) — rendered, never parsed here.
INVENTORY_HEAD = (
    "guid", "appType", "appTime", "appStatus", "orderNo", "ebpCode", "ebpName", "ebcCode", "ebcName",
    "logisticsNo", "logisticsCode", "logisticsName", "copNo", "preNo", "assureCode", "emsNo", "invtNo", "ieFlag",
    "declTime", "customsCode", "portCode", "ieDate", "buyerIdType", "buyerIdNumber", "buyerName", "buyerTelephone",
    "consigneeAddress", "agentCode", "agentName", "areaCode", "areaName", "tradeMode", "trafMode", "trafNo",
    "voyageNo", "billNo", "loctNo", "licenseNo", "country", "freight", "insuredFee", "currency", "wrapType",
    "packNo", "grossWeight", "netWeight", "note",
)  # fmt: skip
INVENTORY_LIST = (
    "gnum", "itemRecordNo", "itemNo", "itemName", "gcode", "gname", "gmodel", "barCode", "country",
    "tradeCountry", "currency", "qty", "unit", "qty1", "unit1", "qty2", "unit2", "price", "totalPrice", "note",
)  # fmt: skip

# N19,5 fields (written without exponent) and integer fields (read as int) of the three records.
DECIMAL_FIELDS = frozenset(
    {
        "goodsValue",
        "freight",
        "discount",
        "taxTotal",
        "acturalPaid",
        "qty",
        "price",
        "totalPrice",
        "amountPaid",
        "insuredFee",
        "weight",
    }
)
INT_FIELDS = frozenset({"gnum", "packNo"})


@dataclass(frozen=True)
class MessageKind:
    """One declaration message and its receipt."""

    doc_type: DocType
    message: str  # root element, e.g. CEB311Message
    xsd: str
    record: str  # Order / Payment / Logistics
    head: str
    head_fields: tuple[str, ...]
    lines: str | None  # OrderList, or None
    line_fields: tuple[str, ...]
    receipt_message: str
    receipt_xsd: str
    receipt_record: str
    receipt_keys: tuple[str, ...]  # the business key echoed in the receipt, in XSD order


ORDER = MessageKind(
    doc_type="order",
    message="CEB311Message",
    xsd="CEB311.xsd",
    record="Order",
    head="OrderHead",
    head_fields=ORDER_HEAD,
    lines="OrderList",
    line_fields=ORDER_LIST,
    receipt_message="CEB312Message",
    receipt_xsd="CEB312.xsd",
    receipt_record="OrderReturn",
    receipt_keys=("ebpCode", "ebcCode", "orderNo"),
)
PAYMENT = MessageKind(
    doc_type="payment",
    message="CEB411Message",
    xsd="CEB411.xsd",
    record="Payment",
    head="PaymentHead",
    head_fields=PAYMENT_HEAD,
    lines=None,
    line_fields=(),
    receipt_message="CEB412Message",
    receipt_xsd="CEB412.xsd",
    receipt_record="PaymentReturn",
    receipt_keys=("payCode", "payTransactionId"),
)
WAYBILL = MessageKind(
    doc_type="waybill",
    message="CEB511Message",
    xsd="CEB511.xsd",
    record="Logistics",
    head="LogisticsHead",
    head_fields=LOGISTICS_HEAD,
    lines=None,
    line_fields=(),
    receipt_message="CEB512Message",
    receipt_xsd="CEB512.xsd",
    receipt_record="LogisticsReturn",
    receipt_keys=("logisticsCode", "logisticsNo"),
)

KINDS: dict[DocType, MessageKind] = {"order": ORDER, "payment": PAYMENT, "waybill": WAYBILL}
KIND_BY_MESSAGE = {kind.message: kind for kind in KINDS.values()}

# Every message our XSD folder describes (the declaration uses 621/622; cancel and return 623–626).
XSD_BY_MESSAGE = {
    "CEB311Message": "CEB311.xsd",
    "CEB312Message": "CEB312.xsd",
    "CEB411Message": "CEB411.xsd",
    "CEB412Message": "CEB412.xsd",
    "CEB511Message": "CEB511.xsd",
    "CEB512Message": "CEB512.xsd",
    "CEB621Message": "CEB621.xsd",
    "CEB622Message": "CEB622.xsd",
    "CEB623Message": "CEB623.xsd",
    "CEB624Message": "CEB624.xsd",
    "CEB625Message": "CEB625.xsd",
    "CEB626Message": "CEB626.xsd",
    "CEB900Message": "CEB900.xsd",
}
