"""Wire models of a cancel (撤销, CEB623 InvtCancel) and a return (退货, CEB625 InvtRefund) of a declared
inventory, and of the request as stored with customs' answers (CEB624 / CEB626).

The sender names the inventory (``ebpCode`` + ``orderNo``) and gives the ``reason``; every other InvtCancel
field is the inventory's, filled in by the single window. Any of them the sender does give must agree with the
inventory (``REQUEST_DIFFERS_FROM_INVENTORY``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.ceb_types import EnterpriseCode, Guid, PositiveAmount, Str60, Str1000

RequestStatus = Literal["declared", "approved", "rejected"]


class InventoryCancelIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {"ebpCode": "3120960A01", "orderNo": "T0000000001", "reason": "订购人取消订单 (buyer cancelled)"}
            ]
        },
    )

    ebpCode: EnterpriseCode
    orderNo: Str60
    reason: Str1000 = Field(description="Why the inventory is cancelled (InvtCancel.reason)")
    guid: Guid | None = Field(default=None, description="The request's own guid (a fresh one if omitted)")
    note: Str1000 | None = None
    # Optional: the inventory's own values, checked against it when given.
    ebcCode: EnterpriseCode | None = None
    logisticsCode: EnterpriseCode | None = None
    logisticsNo: Str60 | None = None
    buyerIdNumber: Str60 | None = None
    invtNo: Annotated[str, Field(max_length=18)] | None = None
    agentCode: EnterpriseCode | None = None


class ReturnLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gnum: int = Field(ge=1, le=9999, description="The inventory line (InventoryList.gnum)")
    qty: PositiveAmount | None = Field(default=None, description="Quantity returned; the line's whole qty if omitted")


class InventoryReturnIn(InventoryCancelIn):
    invtRefundList: list[ReturnLineIn] | None = Field(
        default=None, min_length=1, max_length=99, description="The lines returned; every line in full if omitted"
    )


class RequestReceipt(BaseModel):
    returnStatus: str = Field(description="2 with the single window; 120 / 399 approved by customs; 100 refused")
    returnInfo: str
    returnTime: str = Field(description="YYYYMMDDhhmmssSSS, China time")


class InventoryRequestOut(BaseModel):
    id: uuid.UUID
    kind: Literal["cancel", "return"]
    recordId: uuid.UUID
    status: RequestStatus = Field(description="declared: with customs; approved; rejected")
    request: dict[str, Any] = Field(description="The InvtCancel / InvtRefundHead fields sent (and invtRefundList)")
    quotaReturned: Decimal | None = Field(default=None, description="What an approved request gives the buyer back")
    goodsBackBy: datetime | None = Field(default=None, description="A return: the goods back at the site by then")
    receipts: list[RequestReceipt]
    delivery: str = Field(description="Delivery to customs: pending | in_flight | delivered | retry | dead")
    lastError: str | None = None
    createdAt: datetime
    decidedAt: datetime | None = None
