"""三单对碰: pure checks over an order, its payments and its waybills.

No I/O and no ORM objects: the service loads the documents and hands them in; every check returns
``Discrepancy`` values with a stable code (see ``reason_codes.py`` and docs/reason-codes.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict

from app.rules.identity import valid_phone, valid_resident_id
from app.rules.reason_codes import REASON_CODES
from app.rules.tax import TaxableLine, TaxAssessment, assess, cents
from app.schemas.documents import OrderIn, PaymentIn, WaybillIn

CNY = "142"
CENT = Decimal("0.01")

RecordStatus = Literal["AWAITING_DOCUMENTS", "MISMATCHED", "MATCHED", "CANCELLED"]


class DocumentRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: Literal["order", "payment", "waybill"]
    key: str


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    zh: str
    en: str


class Discrepancy(BaseModel):
    """Why documents disagree: which documents, which field, what was expected and what was found."""

    model_config = ConfigDict(frozen=True)

    code: str
    severity: Literal["error", "warning"]
    documents: list[DocumentRef]
    field: str
    expected: str | None
    actual: str | None
    message: Message


@dataclass(frozen=True)
class MatchInput:
    """The active (declared, not cancelled) documents linked to one record."""

    order: OrderIn | None
    payments: Sequence[PaymentIn] = ()
    waybills: Sequence[WaybillIn] = ()
    ambiguous_waybills: Sequence[WaybillIn] = ()
    tolerance: Decimal = Decimal("0")
    # The seller's goods records by itemNo; None skips the goods checks (records without goods data).
    goods: Mapping[str, GoodsFacts] | None = None


@dataclass(frozen=True)
class GoodsFacts:
    """What matching needs of a goods record (商品备案)."""

    item_no: str
    vat_rate: Decimal
    consumption_tax_rate: Decimal


@dataclass(frozen=True)
class MatchOutcome:
    status: RecordStatus
    missing: list[str]
    discrepancies: list[Discrepancy] = field(default_factory=list)


def ref(doc: OrderIn | PaymentIn | WaybillIn) -> DocumentRef:
    if isinstance(doc, OrderIn):
        return DocumentRef(type="order", key=f"{doc.ebpCode}/{doc.orderNo}")
    if isinstance(doc, PaymentIn):
        return DocumentRef(type="payment", key=f"{doc.payCode}/{doc.payTransactionId}")
    return DocumentRef(type="waybill", key=f"{doc.logisticsCode}/{doc.logisticsNo}")


def _issue(
    code: str,
    docs: Iterable[OrderIn | PaymentIn | WaybillIn],
    field_path: str,
    expected: object,
    actual: object,
) -> Discrepancy:
    rc = REASON_CODES[code]
    return Discrepancy(
        code=code,
        severity=rc.severity,
        documents=[ref(d) for d in docs],
        field=field_path,
        expected=None if expected is None else _show(expected),
        actual=None if actual is None else _show(actual),
        message=Message(zh=rc.zh, en=rc.en),
    )


def _show(value: object) -> str:
    if isinstance(value, Decimal):
        return format(cents(value), "f")
    return str(value)


def amounts_agree(a: Decimal, b: Decimal, tolerance: Decimal) -> bool:
    """Amounts are N19,5 on the wire; customs compares money to the cent (spec §4.3)."""
    return abs(cents(a) - cents(b)) <= tolerance


# --- checks on the order alone ---------------------------------------------------------------


def check_order(order: OrderIn, tolerance: Decimal) -> list[Discrepancy]:
    issues: list[Discrepancy] = []
    expected_paid = order.goodsValue + order.freight + order.taxTotal - order.discount
    if not amounts_agree(order.acturalPaid, expected_paid, tolerance):
        issues.append(_issue("ORDER_AMOUNT_FORMULA", [order], "order.acturalPaid", expected_paid, order.acturalPaid))
    for index, line in enumerate(order.orderList):
        line_total = line.price * line.qty
        if not amounts_agree(line.totalPrice, line_total, tolerance):
            issues.append(
                _issue(
                    "ORDER_LINE_TOTAL",
                    [order],
                    f"order.orderList[{index}].totalPrice",
                    line_total,
                    line.totalPrice,
                )
            )
    lines_total = sum((line.totalPrice for line in order.orderList), Decimal("0"))
    if not amounts_agree(order.goodsValue, lines_total, tolerance):
        issues.append(_issue("ORDER_GOODS_VALUE", [order], "order.goodsValue", lines_total, order.goodsValue))
    for index, line in enumerate(order.orderList):
        if line.gnum != index + 1:
            issues.append(
                _issue("ORDER_LINE_NUMBERING", [order], f"order.orderList[{index}].gnum", index + 1, line.gnum)
            )
    issues.extend(_currency_issues(order, "order", [order.currency] + [line.currency for line in order.orderList]))
    issues.extend(check_identity(order))
    return issues


def check_identity(order: OrderIn) -> list[Discrepancy]:
    """The buyer's ID number (buyerIdType 1: resident ID) and both telephones are well-formed."""
    issues: list[Discrepancy] = []
    if not valid_resident_id(order.buyerIdNumber):
        # Stored as sent, like PAYER_NOT_BUYER: records.py masks *IdNumber fields for readers not party to it.
        issues.append(_issue("BUYER_ID_INVALID", [order], "order.buyerIdNumber", None, order.buyerIdNumber))
    for name in ("buyerTelephone", "consigneeTelephone"):
        phone = getattr(order, name)
        if not valid_phone(phone):
            issues.append(_issue("TELEPHONE_INVALID", [order], f"order.{name}", "a telephone number", phone))
    return issues


def _currency_issues(doc: OrderIn | PaymentIn | WaybillIn, prefix: str, currencies: list[str]) -> list[Discrepancy]:
    issues = []
    for index, currency in enumerate(currencies):
        if currency != CNY:
            path = f"{prefix}.currency" if index == 0 else f"{prefix}.orderList[{index - 1}].currency"
            issues.append(_issue("CURRENCY_NOT_CNY", [doc], path, CNY, currency))
    return issues


# --- order ↔ payment -------------------------------------------------------------------------


def check_payment(order: OrderIn, payment: PaymentIn, tolerance: Decimal) -> list[Discrepancy]:
    pair: list[OrderIn | PaymentIn | WaybillIn] = [order, payment]
    issues: list[Discrepancy] = []
    if not amounts_agree(payment.amountPaid, order.acturalPaid, tolerance):
        issues.append(
            _issue("PAYMENT_AMOUNT_MISMATCH", pair, "payment.amountPaid", order.acturalPaid, payment.amountPaid)
        )
    if payment.payerIdNumber.casefold() != order.buyerIdNumber.casefold():
        issues.append(
            _issue("PAYER_NOT_BUYER", pair, "payment.payerIdNumber", order.buyerIdNumber, payment.payerIdNumber)
        )
    if payment.payerName != order.buyerName:
        issues.append(_issue("PAYER_NOT_BUYER", pair, "payment.payerName", order.buyerName, payment.payerName))
    if order.payCode is not None and order.payCode != payment.payCode:
        issues.append(_issue("PAYMENT_REFERENCE_MISMATCH", pair, "order.payCode", payment.payCode, order.payCode))
    if order.payTransactionId is not None and order.payTransactionId != payment.payTransactionId:
        issues.append(
            _issue(
                "PAYMENT_REFERENCE_MISMATCH",
                pair,
                "order.payTransactionId",
                payment.payTransactionId,
                order.payTransactionId,
            )
        )
    return issues


# --- order ↔ waybill -------------------------------------------------------------------------


def check_waybill(order: OrderIn, waybill: WaybillIn) -> list[Discrepancy]:
    pair: list[OrderIn | PaymentIn | WaybillIn] = [order, waybill]
    issues: list[Discrepancy] = []
    for code, name in (
        ("CONSIGNEE_NAME_MISMATCH", "consignee"),
        ("CONSIGNEE_PHONE_MISMATCH", "consigneeTelephone"),
        ("CONSIGNEE_ADDRESS_MISMATCH", "consigneeAddress"),
    ):
        expected, actual = getattr(order, name), getattr(waybill, name)
        if expected != actual:
            issues.append(_issue(code, pair, f"waybill.{name}", expected, actual))
    return issues


# --- the whole record ------------------------------------------------------------------------


def evaluate(data: MatchInput) -> MatchOutcome:
    """Every check that the present documents allow, and the status they give the record."""
    issues: list[Discrepancy] = []
    order = data.order
    for payment in data.payments:
        issues.extend(_currency_issues(payment, "payment", [payment.currency]))
    for waybill in data.waybills:
        issues.extend(_currency_issues(waybill, "waybill", [waybill.currency]))
    if len(data.payments) > 1:
        issues.append(_issue("MULTIPLE_PAYMENTS", data.payments, "payment.orderNo", 1, len(data.payments)))
    if len(data.waybills) > 1:
        issues.append(_issue("MULTIPLE_WAYBILLS", data.waybills, "waybill.orderNo", 1, len(data.waybills)))
    if not data.waybills:
        for waybill in data.ambiguous_waybills:
            # Expected: this record's platform, which the waybill must name (JSON extension ebpCode).
            expected_platform = order.ebpCode if order is not None else None
            issues.append(_issue("WAYBILL_AMBIGUOUS", [waybill], "waybill.ebpCode", expected_platform, waybill.ebpCode))
    if order is not None:
        issues[:0] = check_order(order, data.tolerance)
        if data.goods is not None:
            issues.extend(check_goods(order, data.goods, data.waybills, data.tolerance))
        for payment in data.payments:
            issues.extend(check_payment(order, payment, data.tolerance))
        for waybill in data.waybills:
            issues.extend(check_waybill(order, waybill))

    missing = [
        name
        for name, present in (
            ("order", order is not None),
            ("payment", bool(data.payments)),
            ("waybill", bool(data.waybills)),
        )
        if not present
    ]
    return MatchOutcome(status=status_for(missing, issues), missing=missing, discrepancies=issues)


def check_goods(
    order: OrderIn, goods: Mapping[str, GoodsFacts], waybills: Sequence[WaybillIn], tolerance: Decimal
) -> list[Discrepancy]:
    """Every line's item is filed under the seller; the order's taxTotal is the tax those records give."""
    issues = [
        _issue("GOODS_NOT_FILED", [order], f"order.orderList[{index}].itemNo", "a filed itemNo", line.itemNo)
        for index, line in enumerate(order.orderList)
        if line.itemNo is None or line.itemNo not in goods
    ]
    if issues:
        return issues
    assessment = assess_order(order, goods, waybills[0] if len(waybills) == 1 else None)
    if not amounts_agree(order.taxTotal, assessment.tax_total, tolerance):
        issues.append(_issue("TAX_TOTAL_MISMATCH", [order], "order.taxTotal", assessment.tax_total, order.taxTotal))
    return issues


def assess_order(order: OrderIn, goods: Mapping[str, GoodsFacts], waybill: WaybillIn | None) -> TaxAssessment:
    """The tax of an order whose items are all filed: freight from the order, insurance from the waybill."""
    lines = [
        TaxableLine(
            gnum=line.gnum,
            goods_value=line.totalPrice,
            vat_rate=goods[cast(str, line.itemNo)].vat_rate,  # filed: check_goods looked first
            consumption_tax_rate=goods[cast(str, line.itemNo)].consumption_tax_rate,
        )
        for line in order.orderList
    ]
    insurance = waybill.insuredFee if waybill is not None and waybill.insuredFee is not None else Decimal("0")
    return assess(lines, freight=order.freight, insurance=insurance)


def status_for(missing: Sequence[str], issues: Sequence[Discrepancy]) -> RecordStatus:
    if missing:
        return "AWAITING_DOCUMENTS"
    if any(issue.severity == "error" for issue in issues):
        return "MISMATCHED"
    return "MATCHED"
