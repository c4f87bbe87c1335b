"""The record page's verdict and side-by-side comparison, as pure functions of the API's record."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from app.console.record_view import compare_documents, verdict
from app.rules.matching import Discrepancy, DocumentRef, Message
from app.schemas import examples
from app.schemas.records import DocumentOut, RecordDetail

NOW = datetime(2026, 11, 23, 2, 15, tzinfo=UTC)


def _doc(doc_type: str, payload: dict[str, Any]) -> DocumentOut:
    return DocumentOut(
        documentType=doc_type,  # type: ignore[arg-type]
        key={},
        state="active",
        version=1,
        recordId=None,
        senderCode="x",
        rawMessageId=uuid.uuid4(),
        createdAt=NOW,
        updatedAt=NOW,
        document=payload,
    )


def _issue(code: str, field: str, docs: tuple[str, ...], expected: str, actual: str) -> Discrepancy:
    return Discrepancy(
        code=code,
        severity="error",
        documents=[DocumentRef(type=d, key=d) for d in docs],  # type: ignore[arg-type]
        field=field,
        expected=expected,
        actual=actual,
        message=Message(zh="中", en="en"),
    )


def _record(status: str, discrepancies: list[Discrepancy], docs: list[DocumentOut], **extra: Any) -> RecordDetail:
    return RecordDetail(
        id=uuid.uuid4(),
        ebpCode="3120960A01",
        orderNo="GW1",
        ebcCode="3120960A02",
        buyerIdNumber=None,
        status=status,  # type: ignore[arg-type]
        missing=extra.pop("missing", []),
        discrepancies=discrepancies,
        createdAt=NOW,
        updatedAt=NOW,
        matchedAt=None,
        documents=docs,
        timeline=[],
        **extra,
    )


def test_a_discrepancy_marks_its_field_in_every_document_it_names() -> None:
    record = _record(
        "MISMATCHED",
        [
            _issue("PAYMENT_AMOUNT_MISMATCH", "payment.amountPaid", ("order", "payment"), "246.12", "240.00"),
            _issue("CONSIGNEE_NAME_MISMATCH", "waybill.consignee", ("order", "waybill"), "王小明", "王五"),
            _issue("ORDER_LINE_TOTAL", "order.orderList[0].totalPrice", ("order",), "200.00", "199.00"),
        ],
        [
            _doc("order", examples.ORDER),
            _doc("payment", examples.MISMATCHED_PAYMENT),
            _doc("waybill", examples.WAYBILL | {"consignee": "王五"}),
        ],
    )
    comparison = compare_documents(record)
    marked = {
        (doc_type, cell.field, cell.value)
        for row in comparison.rows
        for doc_type, cell in row.cells.items()
        if cell.mismatched
    }
    assert marked == {
        ("order", "acturalPaid", "246.12"),
        ("payment", "amountPaid", "240.00"),
        ("order", "consignee", "王小明"),
        ("waybill", "consignee", "王五"),
        # A field outside the compared rows gets a row of its own, with the value read from the document.
        ("order", "orderList[0].totalPrice", "200.00"),
    }
    amount = next(row for row in comparison.rows if row.label == "field.amount")
    assert amount.codes == ("PAYMENT_AMOUNT_MISMATCH",)
    assert amount.cells["waybill"].field is None  # a waybill has no amount paid: nothing to compare
    assert comparison.present == {"order": True, "payment": True, "waybill": True}


def test_a_missing_document_shows_as_absent_and_the_verdict_names_it() -> None:
    record = _record("AWAITING_DOCUMENTS", [], [_doc("order", examples.ORDER)], missing=["payment", "waybill"])
    comparison = compare_documents(record)
    assert comparison.present == {"order": True, "payment": False, "waybill": False}
    assert all(not row.mismatched for row in comparison.rows)
    said = verdict(record)
    assert said.key == "verdict.AWAITING_DOCUMENTS"
    assert said.params == {"missing": ["payment", "waybill"]}


def test_verdicts_count_errors_and_name_the_rejecting_agency() -> None:
    warning = _issue("TAX_TOTAL_MISMATCH", "order.taxTotal", ("order",), "46.12", "40.00")
    warning = warning.model_copy(update={"severity": "warning"})
    error = _issue("PAYER_NOT_BUYER", "payment.payerName", ("order", "payment"), "王小明", "李四")
    assert verdict(_record("MISMATCHED", [error, warning], [])).params == {"count": 1}
    rejected = _record("REJECTED", [], [], rejection={"agency": "customs", "returnInfo": "超过年度限额"})
    assert verdict(rejected).params == {"agency": "customs", "reason": "超过年度限额"}
    assert verdict(_record("CLEARED", [], [])).key == "verdict.CLEARED"
