"""Receipts for submitted documents, and the match record as officials and enterprises read it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.rules.matching import Discrepancy
from app.schemas.after_release import InventoryRequestOut

RecordStatusName = Literal[
    "AWAITING_DOCUMENTS",
    "MISMATCHED",
    "MATCHED",
    "DECLARED",
    "INSPECTION",
    "CLEARED",
    "REJECTED",
    "CANCELLED",
    "REVOKED",
    "RETURNED",
]
DocumentState = Literal["active", "draft", "cancelled"]


class Receipt(BaseModel):
    """The answer to a submitted document, modelled on CEB312/412/512.

    ``returnStatus`` ``2`` (电子口岸申报中) acknowledges it: received and stored durably, the business result
    follows. ``120`` (入库) is that result: the document is checked and applied, with its record as it stands
    (a refused document, ``100`` 退单, answers with a problem and the spec's negative code instead).
    """

    returnStatus: Literal["2", "120"] = Field(description="2 accepted (the result follows), 120 stored")
    returnInfo: str = Field(examples=["新增申报成功[4CDE1CFD-EDED-46B1-946C-B8022E42FC94]"])
    documentType: Literal["order", "payment", "waybill"]
    key: dict[str, str] = Field(description="The natural key, with CEB field names")
    guid: str
    replayed: bool = Field(description="True when this exact document was already accepted (no new row)")
    submissionSeq: int | None = Field(
        default=None, description="The acceptance's position in the submission log (its business result follows)"
    )
    acceptedAt: datetime | None = None
    version: int | None = Field(default=None, description="The document's version (120 only)")
    state: DocumentState | None = None
    recordId: uuid.UUID | None = Field(default=None, description="Null while a waybill waits for its order")
    recordStatus: RecordStatusName | None = None
    missing: list[Literal["order", "payment", "waybill"]] = Field(default_factory=list)
    discrepancies: list[Discrepancy] = Field(default_factory=list)


class BatchItemResult(BaseModel):
    index: int
    status: int = Field(description="The HTTP status this item would have had on its own")
    receipt: Receipt | None = None
    problem: dict[str, Any] | None = Field(default=None, description="RFC 9457 problem for a rejected item")


class BatchSummary(BaseModel):
    stored: int
    replayed: int
    rejected: int
    accepted: int = Field(default=0, description="Accepted (returnStatus 2), their business result not yet known")


class BatchResult(BaseModel):
    items: list[BatchItemResult]
    summary: BatchSummary


class DocumentOut(BaseModel):
    documentType: Literal["order", "payment", "waybill"]
    key: dict[str, str]
    state: DocumentState
    version: int
    recordId: uuid.UUID | None
    senderCode: str
    rawMessageId: uuid.UUID
    createdAt: datetime
    updatedAt: datetime
    document: dict[str, Any] = Field(description="The document with its CEB field names (decimals as strings)")


class TimelineEvent(BaseModel):
    at: datetime
    kind: str
    actor: str
    detail: dict[str, Any]


class RecordSummary(BaseModel):
    id: uuid.UUID
    ebpCode: str
    orderNo: str
    ebcCode: str | None
    buyerIdNumber: str | None
    status: RecordStatusName
    missing: list[Literal["order", "payment", "waybill"]]
    discrepancies: list[Discrepancy]
    createdAt: datetime
    updatedAt: datetime
    matchedAt: datetime | None
    agencies: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per agency (customs, inspection, tax, fx): dispatch status, state, last returnStatus, returnInfo",
    )
    rejection: dict[str, Any] | None = Field(
        default=None, description="Who rejected the record, with the code and reason (REJECTED records)"
    )


class TaxLine(BaseModel):
    gnum: int
    taxPrice: str
    customsTax: str
    valueAddedTax: str
    consumptionTax: str


class TaxView(BaseModel):
    """The tax with the CEB816 names (decimal strings)."""

    customsTax: str
    valueAddedTax: str
    consumptionTax: str
    taxTotal: str
    dutiableValue: str
    lines: list[TaxLine]


class DeclarationOut(BaseModel):
    inventory: dict[str, Any] = Field(description="CEB621 InventoryHead fields with inventoryList")
    tax: TaxView
    risk: dict[str, Any] | None = Field(
        default=None,
        description="Officials and admins only: the risk and credit decision (release, inspect or block), the "
        "parties' credit levels, the sampling rate and draw, and the reasons (docs/risk.md)",
    )
    createdAt: datetime


class AgencyReceiptOut(BaseModel):
    agency: str
    returnStatus: str
    returnInfo: str
    source: Literal["reply", "callback"]
    receivedAt: datetime


class DocumentReceiptOut(BaseModel):
    """One receipt of a document submission (CEB312 / 412 / 512): 2 when accepted, then 120 or 100."""

    documentType: Literal["order", "payment", "waybill"]
    key: dict[str, str]
    guid: str
    submissionSeq: int
    appType: str
    returnStatus: str = Field(description="2 accepted, 120 stored, 100 refused")
    code: str | None = Field(default=None, description="The refusal's code (100), e.g. RECORD_ALREADY_DECLARED")
    cebReturnStatus: str | None = Field(default=None, description="The spec's negative code of a refusal")
    returnInfo: str
    at: datetime


class RecordDetail(RecordSummary):
    documents: list[DocumentOut]
    timeline: list[TimelineEvent]
    declaration: DeclarationOut | None = None
    receipts: list[AgencyReceiptOut] = Field(default_factory=list, description="Every agency answer, oldest first")
    documentReceipts: list[DocumentReceiptOut] = Field(
        default_factory=list,
        description="Every receipt of every submission of the record's documents (that the caller may read), "
        "in the order they happened",
    )
    inventoryRequests: list[InventoryRequestOut] = Field(
        default_factory=list,
        description="Cancels (CEB623) and returns (CEB625) of the inventory, oldest first, each with customs' "
        "answers (CEB624 / CEB626); shown to those who see the declaration",
    )


class RecordPage(BaseModel):
    items: list[RecordSummary]
    nextCursor: str | None = Field(description="Pass as `cursor` to get the next page; null at the end")
