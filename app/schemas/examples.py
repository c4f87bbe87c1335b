"""Realistic examples for Swagger UI: a matched triple a newcomer can paste in order, and a mismatched one."""

from __future__ import annotations

from typing import Any

PLATFORM = {"code": "3120960A01", "name": "环球购跨境电商平台", "roles": ["platform"]}
SELLER = {"code": "3120960A02", "name": "东京优选海外旗舰店", "roles": ["seller"]}
PAYMENT_FIRM = {"code": "3120960P01", "name": "易付宝支付有限公司", "roles": ["payment"]}
CARRIER = {"code": "3120960L01", "name": "顺达国际物流有限公司", "roles": ["logistics"]}
DECLARANT = {"code": "3120960D01", "name": "杭州通关报关有限公司", "roles": ["declarant"]}
ENTERPRISES = [PLATFORM, SELLER, PAYMENT_FIRM, CARRIER]
# One example per role for Swagger UI's POST /api/v1/enterprises (the first four fit the document examples).
ENTERPRISE_EXAMPLES: dict[str, dict[str, Any]] = {
    "platform": {"summary": "Platform 电商平台 (ebpCode of the examples)", "value": PLATFORM},
    "seller": {"summary": "Seller 电商企业 (ebcCode)", "value": SELLER},
    "payment": {"summary": "Payment firm 支付企业 (payCode)", "value": PAYMENT_FIRM},
    "logistics": {"summary": "Carrier 物流企业 (logisticsCode)", "value": CARRIER},
    "declarant": {"summary": "Customs declarant 报关企业", "value": DECLARANT},
}

ORDER: dict[str, Any] = {
    "orderType": "I",
    "orderNo": "GW20261123000101",
    "ebpCode": "3120960A01",
    "ebpName": "环球购跨境电商平台",
    "ebcCode": "3120960A02",
    "ebcName": "东京优选海外旗舰店",
    "goodsValue": "200.00",
    "freight": "0",
    "discount": "0",
    "taxTotal": "46.12",
    "acturalPaid": "246.12",
    "currency": "142",
    "buyerRegNo": "hqg_user_88231",
    "buyerName": "王小明",
    "buyerTelephone": "13800138000",
    "buyerIdType": "1",
    "buyerIdNumber": "33010619900101123X",
    "payCode": "3120960P01",
    "payName": "易付宝支付有限公司",
    "payTransactionId": "PAY202611230001",
    "consignee": "王小明",
    "consigneeTelephone": "13800138000",
    "consigneeAddress": "浙江省杭州市西湖区文三路100号",
    "consigneeDistrict": "330106",
    "orderList": [
        {
            "gnum": 1,
            "itemNo": "JP-SSD-50",
            "itemName": "资生堂红腰子精华液 50ml",
            "gmodel": "50ml/瓶,精华液,资生堂",
            "barCode": "4909978112345",
            "unit": "142",
            "qty": "1",
            "price": "200.00",
            "totalPrice": "200.00",
            "currency": "142",
            "country": "116",
        }
    ],
}

PAYMENT: dict[str, Any] = {
    "payCode": "3120960P01",
    "payName": "易付宝支付有限公司",
    "payTransactionId": "PAY202611230001",
    "orderNo": "GW20261123000101",
    "ebpCode": "3120960A01",
    "ebpName": "环球购跨境电商平台",
    "payerIdType": "1",
    "payerIdNumber": "33010619900101123X",
    "payerName": "王小明",
    "telephone": "13800138000",
    "amountPaid": "246.12",
    "currency": "142",
    "payTime": "20261123101500",
}

WAYBILL: dict[str, Any] = {
    "logisticsCode": "3120960L01",
    "logisticsName": "顺达国际物流有限公司",
    "logisticsNo": "SD7700012345CN",
    "billNo": "999-12345675",
    "orderNo": "GW20261123000101",
    "freight": "0",
    "insuredFee": "0",
    "currency": "142",
    "weight": "0.35",
    "packNo": 1,
    "goodsInfo": "精华液1瓶",
    "consignee": "王小明",
    "consigneeAddress": "浙江省杭州市西湖区文三路100号",
    "consigneeTelephone": "13800138000",
}

# The same purchase paid by someone else, for less: PAYMENT_AMOUNT_MISMATCH and PAYER_NOT_BUYER.
MISMATCHED_ORDER = {**ORDER, "orderNo": "GW20261123000102", "payTransactionId": "PAY202611230002"}
MISMATCHED_PAYMENT = {
    **PAYMENT,
    "orderNo": "GW20261123000102",
    "payTransactionId": "PAY202611230002",
    "payerName": "李四",
    "payerIdNumber": "330106198805054329",
    "amountPaid": "240.00",
}
MISMATCHED_WAYBILL = {**WAYBILL, "orderNo": "GW20261123000102", "logisticsNo": "SD7700012346CN"}

DOCUMENT_EXAMPLES: dict[str, dict[str, dict[str, Any]]] = {
    "order": {
        "matched": {"summary": "① Order of a matching purchase", "value": ORDER},
        "mismatched": {"summary": "Order of a purchase that will not match", "value": MISMATCHED_ORDER},
    },
    "payment": {
        "matched": {"summary": "② Payment of the matching purchase", "value": PAYMENT},
        "mismatched": {"summary": "Payment by another person, for less", "value": MISMATCHED_PAYMENT},
    },
    "waybill": {
        "matched": {"summary": "③ Waybill of the matching purchase", "value": WAYBILL},
        "mismatched": {"summary": "Waybill of the mismatched purchase", "value": MISMATCHED_WAYBILL},
    },
}
