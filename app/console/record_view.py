"""What an official reads first on a record page, as pure functions of the record the API returns: the
one-line verdict, and the three documents side by side with the fields the rules found in disagreement.

The rows pair the fields that matching compares (app/rules/matching.py); a discrepancy's ``field`` path
(``payment.amountPaid``, ``waybill.consignee``) marks the row holding that field, in every document the
discrepancy names. A discrepancy on a field outside these rows (an order line's price) gets a row of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from app.schemas.records import RecordDetail, RecordSummary

DocType = Literal["order", "payment", "waybill"]
DOC_TYPES: tuple[DocType, ...] = ("order", "payment", "waybill")


@dataclass(frozen=True)
class Row:
    """One compared concept: the catalogue key of its label, and the field holding it in each document."""

    label: str
    fields: dict[DocType, str]


ROWS: tuple[Row, ...] = (
    Row("field.orderNo", {"order": "orderNo", "payment": "orderNo", "waybill": "orderNo"}),
    Row("field.ebpCode", {"order": "ebpCode", "payment": "ebpCode", "waybill": "ebpCode"}),
    Row("field.ebcCode", {"order": "ebcCode"}),
    Row("field.amount", {"order": "acturalPaid", "payment": "amountPaid"}),
    Row("field.goodsValue", {"order": "goodsValue"}),
    Row("field.taxTotal", {"order": "taxTotal"}),
    Row("field.freight", {"order": "freight", "waybill": "freight"}),
    Row("field.currency", {"order": "currency", "payment": "currency", "waybill": "currency"}),
    Row("field.payCode", {"order": "payCode", "payment": "payCode"}),
    Row("field.payTransactionId", {"order": "payTransactionId", "payment": "payTransactionId"}),
    Row("field.person", {"order": "buyerName", "payment": "payerName"}),
    Row("field.idNumber", {"order": "buyerIdNumber", "payment": "payerIdNumber"}),
    Row("field.telephone", {"order": "buyerTelephone", "payment": "telephone"}),
    Row("field.payTime", {"payment": "payTime"}),
    Row("field.consignee", {"order": "consignee", "waybill": "consignee"}),
    Row("field.consigneeTelephone", {"order": "consigneeTelephone", "waybill": "consigneeTelephone"}),
    Row("field.consigneeAddress", {"order": "consigneeAddress", "waybill": "consigneeAddress"}),
    Row("field.logisticsCode", {"waybill": "logisticsCode"}),
    Row("field.logisticsNo", {"waybill": "logisticsNo"}),
    Row("field.weight", {"waybill": "weight"}),
)


@dataclass(frozen=True)
class Cell:
    field: str | None  # the document's field name, None where the document has no such field
    value: str | None
    mismatched: bool = False


@dataclass(frozen=True)
class ComparedRow:
    label: str  # a catalogue key, or a raw field path for a row the rules alone named
    cells: dict[DocType, Cell]
    codes: tuple[str, ...] = ()  # the discrepancy codes that mark this row

    @property
    def mismatched(self) -> bool:
        return any(cell.mismatched for cell in self.cells.values())


@dataclass(frozen=True)
class Comparison:
    present: dict[DocType, bool]  # which documents the caller can see on the record
    rows: list[ComparedRow] = field(default_factory=list)


_INDEX = re.compile(r"\[(\d+)\]")


def _lookup(payload: dict[str, Any] | None, path: str) -> str | None:
    """``orderList[0].totalPrice`` in a document payload, as text."""
    value: Any = payload
    for part in path.split("."):
        name, *indexes = _INDEX.split(part)
        if not isinstance(value, dict):
            return None
        value = value.get(name)
        for index in indexes[::2]:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
    return None if value is None else str(value)


def compare_documents(record: RecordDetail) -> Comparison:
    """The documents of ``record`` the caller may see, field by field, with disagreeing fields marked."""
    payloads: dict[DocType, dict[str, Any] | None] = dict.fromkeys(DOC_TYPES)
    for doc in record.documents:
        if doc.state != "cancelled" and payloads[doc.documentType] is None:
            payloads[doc.documentType] = doc.document
    # field path → the documents each discrepancy on it names, and its codes
    marks: dict[tuple[DocType, str], set[str]] = {}
    for discrepancy in record.discrepancies:
        owner, _, name = discrepancy.field.partition(".")
        for ref in discrepancy.documents:
            counterpart = _counterpart(owner, name, ref.type)
            if counterpart is not None:
                marks.setdefault((ref.type, counterpart), set()).add(discrepancy.code)
    rows: list[ComparedRow] = []
    claimed: set[tuple[DocType, str]] = set()
    for row in ROWS:
        cells = {}
        codes: set[str] = set()
        for doc_type in DOC_TYPES:
            field_name = row.fields.get(doc_type)
            if field_name is None:
                cells[doc_type] = Cell(None, None)
                continue
            claimed.add((doc_type, field_name))
            mark = marks.get((doc_type, field_name), set())
            codes |= mark
            cells[doc_type] = Cell(field_name, _lookup(payloads[doc_type], field_name), bool(mark))
        rows.append(ComparedRow(row.label, cells, tuple(sorted(codes))))
    for (doc_type, name), codes in sorted(marks.items()):
        if (doc_type, name) not in claimed:
            cells = {d: Cell(None, None) for d in DOC_TYPES}
            cells[doc_type] = Cell(name, _lookup(payloads[doc_type], name), True)
            rows.append(ComparedRow(f"{doc_type}.{name}", cells, tuple(sorted(codes))))
    present = {d: payloads[d] is not None for d in DOC_TYPES}
    return Comparison(present, rows)


def _counterpart(owner: str, name: str, doc_type: DocType) -> str | None:
    """The field in ``doc_type`` that a discrepancy on ``owner.name`` compares: the same row's field."""
    if owner == doc_type:
        return name
    for row in ROWS:
        if row.fields.get(owner) == name:  # type: ignore[call-overload]
            return row.fields.get(doc_type)
    return None


@dataclass(frozen=True)
class Verdict:
    key: str  # catalogue key
    params: dict[str, object]


def verdict(record: RecordSummary) -> Verdict:
    """One line that says where the purchase stands and why."""
    status = record.status
    if status == "AWAITING_DOCUMENTS":
        return Verdict("verdict.AWAITING_DOCUMENTS", {"missing": list(record.missing)})
    if status == "MISMATCHED":
        errors = [d for d in record.discrepancies if d.severity == "error"]
        return Verdict("verdict.MISMATCHED", {"count": len(errors)})
    if status == "REJECTED":
        rejection = record.rejection or {}
        reason = rejection.get("returnInfo") or rejection.get("code") or rejection.get("cebReturnStatus") or ""
        return Verdict("verdict.REJECTED", {"agency": rejection.get("agency") or "", "reason": reason})
    return Verdict(f"verdict.{status}", {})
