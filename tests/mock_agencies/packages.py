"""A consistent declaration package (the agency contract's shape) built from the Swagger example purchase."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from app.ceb.conformance import OutgoingMessageInvalid
from app.schemas import examples
from app.services.inventory_signing import signed_inventory_message
from tests.service_keys import service_identity

CALLBACK_URL = "http://single-window.test/api/v1/agency-callbacks/customs"


def package(agency: str = "customs", record_id: str | None = None, **changes: Any) -> dict[str, Any]:
    """One 200.00 cosmetic (VAT 13 %, consumption tax 15 %: tax 46.12) of buyer 33010619900101123X.

    ``changes`` replace top-level parts; ``inventory=`` / ``order=`` … are merged into the part instead.
    """
    order = copy.deepcopy(examples.ORDER)
    payment = copy.deepcopy(examples.PAYMENT)
    waybill = copy.deepcopy(examples.WAYBILL)
    dispatch_id = str(uuid.uuid4())
    record_id = record_id or str(uuid.uuid4())
    inventory: dict[str, Any] = {
        "guid": str(uuid.uuid4()).upper(),
        "appType": "1",
        "appTime": "20261123102000",
        "appStatus": "2",
        "orderNo": order["orderNo"],
        "ebpCode": order["ebpCode"],
        "ebpName": order["ebpName"],
        "ebcCode": order["ebcCode"],
        "ebcName": order["ebcName"],
        "logisticsNo": waybill["logisticsNo"],
        "logisticsCode": waybill["logisticsCode"],
        "logisticsName": waybill["logisticsName"],
        "copNo": order["orderNo"][:20],
        "assureCode": order["ebcCode"],
        "ieFlag": "I",
        "declTime": "20261123",
        "customsCode": "1501",
        "portCode": "1501",
        "buyerIdType": "1",
        "buyerIdNumber": order["buyerIdNumber"],
        "buyerName": order["buyerName"],
        "buyerTelephone": order["buyerTelephone"],
        "consigneeAddress": order["consigneeAddress"],
        "agentCode": order["ebcCode"],
        "agentName": order["ebcName"],
        "tradeMode": "9610",
        "trafMode": "5",
        "billNo": waybill["billNo"],
        "country": "116",
        "freight": "0",
        "insuredFee": "0",
        "currency": "142",
        "packNo": 1,
        "grossWeight": "0.35",
        "netWeight": "0.05",
        "inventoryList": [
            {
                "gnum": 1,
                "itemNo": "JP-SSD-50",
                "itemName": order["orderList"][0]["itemName"],
                "gcode": "3304990099",
                "gname": order["orderList"][0]["itemName"],
                "gmodel": order["orderList"][0]["gmodel"],
                "barCode": order["orderList"][0]["barCode"],
                "country": "116",
                "currency": "142",
                "qty": "1",
                "unit": "142",
                "qty1": "0.05",
                "unit1": "035",
                "price": "200.00",
                "totalPrice": "200.00",
            }
        ],
    }
    body: dict[str, Any] = {
        "dispatchId": dispatch_id,
        "recordId": record_id,
        "agency": agency,
        "callbackUrl": CALLBACK_URL,
        "inventory": inventory,
        "tax": {
            "customsTax": "0.00",
            "valueAddedTax": "21.41",
            "consumptionTax": "24.71",
            "taxTotal": "46.12",
            "dutiableValue": "200.00",
            "lines": [
                {
                    "gnum": 1,
                    "taxPrice": "200.00",
                    "customsTax": "0.00",
                    "valueAddedTax": "21.41",
                    "consumptionTax": "24.71",
                }
            ],
        },
        "order": order,
        "payment": payment,
        "waybill": waybill,
        "goods": [
            {
                "itemNo": "JP-SSD-50",
                "gcode": "3304990099",
                "gname": order["orderList"][0]["itemName"],
                "positiveList": True,
                "vatRate": "0.13",
                "consumptionTaxRate": "0.15",
            }
        ],
        "seller": {"code": order["ebcCode"], "creditLevel": "regular"},
        "riskDecision": {"decision": "release", "reasons": []},
    }
    for part, value in changes.items():
        if isinstance(value, dict) and isinstance(body.get(part), dict):
            body[part].update(value)
        else:
            body[part] = value
    if agency == "customs" and "inventoryMessage" not in changes:
        body["inventoryMessage"] = signed_inventory(body["inventory"])
    return body


def signed_inventory(inventory: Any) -> str | None:
    """The CEB621 of ``inventory`` signed by the test service identity, as the dispatcher sends it (None for an
    inventory too broken to render: such packages test other refusals)."""
    try:
        return signed_inventory_message(inventory, service_identity().identity).decode()
    except (KeyError, TypeError, ValueError, AttributeError, OutgoingMessageInvalid):
        return None


def two_line_package(**changes: Any) -> dict[str, Any]:
    """Two lines (200.00 cosmetic + 100.00 VAT-only), freight 10.00, for the per-line tax bill."""
    body = package(**changes)
    second_order_line = {
        **body["order"]["orderList"][0],
        "gnum": 2,
        "itemNo": "JP-TEA-01",
        "itemName": "抹茶粉 100g",
        "price": "100.00",
        "totalPrice": "100.00",
    }
    body["order"]["orderList"].append(second_order_line)
    body["inventory"]["inventoryList"].append(
        {
            **body["inventory"]["inventoryList"][0],
            "gnum": 2,
            "itemNo": "JP-TEA-01",
            "gcode": "0902100000",
            "gname": "抹茶粉 100g",
            "price": "100.00",
            "totalPrice": "100.00",
        }
    )
    body["inventory"]["freight"] = "10.00"
    body["goods"].append(
        {"itemNo": "JP-TEA-01", "gcode": "0902100000", "gname": "抹茶粉 100g", "positiveList": True,
         "vatRate": "0.13", "consumptionTaxRate": "0"}
    )  # fmt: skip
    return body


# The single window's decision to inspect (app/rules/supervision.py), as a package carries it.
INSPECT = {"decision": "inspect", "reasons": ["CREDIT_SAMPLED"]}
