"""Pure tests of the 三单对碰 rules (app/rules/matching.py): every reason code fires when it should, with the
right severity, documents, field, expected and actual values, and stays silent on a consistent purchase."""

from __future__ import annotations

import copy
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.rules.matching import (
    CENT,
    Discrepancy,
    DocumentRef,
    GoodsFacts,
    MatchInput,
    Message,
    assess_order,
    check_goods,
    check_order,
    check_payment,
    check_waybill,
    evaluate,
    status_for,
)
from app.rules.reason_codes import REASON_CODES
from app.schemas import examples
from app.schemas.documents import OrderIn, PaymentIn, WaybillIn
from app.schemas.goods import EXAMPLE_GOODS, GoodsCreate

ZERO = Decimal("0")
ORDER_REF = DocumentRef(type="order", key="3120960A01/GW20261123000101")
PAYMENT_REF = DocumentRef(type="payment", key="3120960P01/PAY202611230001")
WAYBILL_REF = DocumentRef(type="waybill", key="3120960L01/SD7700012345CN")


def order(**changes: Any) -> OrderIn:
    return OrderIn.model_validate(copy.deepcopy(examples.ORDER) | changes)


def line(**changes: Any) -> dict[str, Any]:
    return copy.deepcopy(examples.ORDER["orderList"][0]) | changes


def payment(**changes: Any) -> PaymentIn:
    return PaymentIn.model_validate(copy.deepcopy(examples.PAYMENT) | changes)


def waybill(**changes: Any) -> WaybillIn:
    return WaybillIn.model_validate(copy.deepcopy(examples.WAYBILL) | changes)


def full(o: OrderIn | None = None, p: PaymentIn | None = None, w: WaybillIn | None = None, **kwargs: Any) -> MatchInput:
    return MatchInput(order=o or order(), payments=[p or payment()], waybills=[w or waybill()], **kwargs)


def facts(item_no: str = "JP-SSD-50", vat: str = "0.13", consumption: str = "0.15") -> GoodsFacts:
    return GoodsFacts(item_no=item_no, vat_rate=Decimal(vat), consumption_tax_rate=Decimal(consumption))


# The Swagger example's goods record (商品备案) as matching sees it: VAT 13 %, consumption tax 15 %.
_EXAMPLE = GoodsCreate.model_validate(EXAMPLE_GOODS)
FILED = {_EXAMPLE.itemNo: GoodsFacts(_EXAMPLE.itemNo, _EXAMPLE.vatRate, _EXAMPLE.consumptionTaxRate)}


def issue(code: str, documents: list[DocumentRef], field: str, expected: str | None, actual: str | None) -> Discrepancy:
    rc = REASON_CODES[code]
    return Discrepancy(
        code=code,
        severity=rc.severity,
        documents=documents,
        field=field,
        expected=expected,
        actual=actual,
        message=Message(zh=rc.zh, en=rc.en),
    )


# --- the consistent example triple -------------------------------------------------------------


def test_example_triple_matches_with_no_discrepancy() -> None:
    o, p, w = order(), payment(), waybill()
    assert check_order(o, ZERO) == []
    assert check_payment(o, p, ZERO) == []
    assert check_waybill(o, w) == []
    outcome = evaluate(full(o, p, w))
    assert outcome.status == "MATCHED"
    assert outcome.missing == []
    assert outcome.discrepancies == []


def test_mismatched_swagger_example_names_both_reasons() -> None:
    outcome = evaluate(
        MatchInput(
            order=OrderIn.model_validate(examples.MISMATCHED_ORDER),
            payments=[PaymentIn.model_validate(examples.MISMATCHED_PAYMENT)],
            waybills=[WaybillIn.model_validate(examples.MISMATCHED_WAYBILL)],
        )
    )
    assert outcome.status == "MISMATCHED"
    assert [(d.code, d.field) for d in outcome.discrepancies] == [
        ("PAYMENT_AMOUNT_MISMATCH", "payment.amountPaid"),
        ("PAYER_NOT_BUYER", "payment.payerIdNumber"),
        ("PAYER_NOT_BUYER", "payment.payerName"),
    ]


# --- each reason code fires, exactly and alone -------------------------------------------------

BOTH_PAY = [ORDER_REF, PAYMENT_REF]
BOTH_WAY = [ORDER_REF, WAYBILL_REF]
SECOND_PAYMENT = DocumentRef(type="payment", key="3120960P01/PAY202611230009")
SECOND_WAYBILL = DocumentRef(type="waybill", key="3120960L01/SD7700099999CN")

CASES: dict[str, tuple[Any, list[Discrepancy]]] = {
    "acturalPaid off the formula": (
        lambda: full(order(acturalPaid="250.00"), payment(amountPaid="250.00")),
        [issue("ORDER_AMOUNT_FORMULA", [ORDER_REF], "order.acturalPaid", "246.12", "250.00")],
    ),
    "freight missing from acturalPaid": (
        lambda: full(order(freight="10.00")),
        [issue("ORDER_AMOUNT_FORMULA", [ORDER_REF], "order.acturalPaid", "256.12", "246.12")],
    ),
    "discount not subtracted": (
        lambda: full(order(discount="6.12")),
        [issue("ORDER_AMOUNT_FORMULA", [ORDER_REF], "order.acturalPaid", "240.00", "246.12")],
    ),
    "taxTotal not added": (
        lambda: full(order(taxTotal="0")),
        [issue("ORDER_AMOUNT_FORMULA", [ORDER_REF], "order.acturalPaid", "200.00", "246.12")],
    ),
    "line total is not price x qty": (
        lambda: full(order(orderList=[line(qty="2")])),
        [issue("ORDER_LINE_TOTAL", [ORDER_REF], "order.orderList[0].totalPrice", "400.00", "200.00")],
    ),
    "second line total wrong": (
        lambda: full(
            order(
                goodsValue="231.00",
                acturalPaid="277.12",
                orderList=[line(), line(gnum=2, qty="3", price="10.00", totalPrice="31.00")],
            ),
            payment(amountPaid="277.12"),
        ),
        [issue("ORDER_LINE_TOTAL", [ORDER_REF], "order.orderList[1].totalPrice", "30.00", "31.00")],
    ),
    "goodsValue is not the sum of lines": (
        lambda: full(order(goodsValue="190.00", taxTotal="56.12")),
        [issue("ORDER_GOODS_VALUE", [ORDER_REF], "order.goodsValue", "200.00", "190.00")],
    ),
    "gnum skips a number": (
        lambda: full(
            order(
                goodsValue="200.00",
                orderList=[line(totalPrice="150.00", price="150.00"), line(gnum=3, price="50.00", totalPrice="50.00")],
            )
        ),
        [issue("ORDER_LINE_NUMBERING", [ORDER_REF], "order.orderList[1].gnum", "2", "3")],
    ),
    "gnum starts at 2": (
        lambda: full(order(orderList=[line(gnum=2)])),
        [issue("ORDER_LINE_NUMBERING", [ORDER_REF], "order.orderList[0].gnum", "1", "2")],
    ),
    "payment amount differs by a cent": (
        lambda: full(p=payment(amountPaid="246.13")),
        [issue("PAYMENT_AMOUNT_MISMATCH", BOTH_PAY, "payment.amountPaid", "246.12", "246.13")],
    ),
    "payer ID number differs": (
        lambda: full(p=payment(payerIdNumber="330106198805054329")),
        [issue("PAYER_NOT_BUYER", BOTH_PAY, "payment.payerIdNumber", "33010619900101123X", "330106198805054329")],
    ),
    "payer name differs": (
        lambda: full(p=payment(payerName="李四")),
        [issue("PAYER_NOT_BUYER", BOTH_PAY, "payment.payerName", "王小明", "李四")],
    ),
    "order names another payCode": (
        lambda: full(order(payCode="3120960P02")),
        [issue("PAYMENT_REFERENCE_MISMATCH", BOTH_PAY, "order.payCode", "3120960P01", "3120960P02")],
    ),
    "order names another payTransactionId": (
        lambda: full(order(payTransactionId="PAY202611239999")),
        [
            issue(
                "PAYMENT_REFERENCE_MISMATCH",
                BOTH_PAY,
                "order.payTransactionId",
                "PAY202611230001",
                "PAY202611239999",
            )
        ],
    ),
    "two payments for one order": (
        lambda: MatchInput(
            order=order(payTransactionId=None),
            payments=[payment(), payment(payTransactionId="PAY202611230009")],
            waybills=[waybill()],
        ),
        [
            issue("MULTIPLE_PAYMENTS", [PAYMENT_REF, SECOND_PAYMENT], "payment.orderNo", "1", "2"),
        ],
    ),
    "two waybills for one order": (
        lambda: MatchInput(
            order=order(), payments=[payment()], waybills=[waybill(), waybill(logisticsNo="SD7700099999CN")]
        ),
        [issue("MULTIPLE_WAYBILLS", [WAYBILL_REF, SECOND_WAYBILL], "waybill.orderNo", "1", "2")],
    ),
    "consignee name differs": (
        lambda: full(w=waybill(consignee="王大明")),
        [issue("CONSIGNEE_NAME_MISMATCH", BOTH_WAY, "waybill.consignee", "王小明", "王大明")],
    ),
    "consignee phone differs": (
        lambda: full(w=waybill(consigneeTelephone="13900139000")),
        [issue("CONSIGNEE_PHONE_MISMATCH", BOTH_WAY, "waybill.consigneeTelephone", "13800138000", "13900139000")],
    ),
    "consignee address differs": (
        lambda: full(w=waybill(consigneeAddress="浙江省杭州市西湖区文三路101号")),
        [
            issue(
                "CONSIGNEE_ADDRESS_MISMATCH",
                BOTH_WAY,
                "waybill.consigneeAddress",
                "浙江省杭州市西湖区文三路100号",
                "浙江省杭州市西湖区文三路101号",
            )
        ],
    ),
    "order head in USD": (
        lambda: full(order(currency="502")),
        [issue("CURRENCY_NOT_CNY", [ORDER_REF], "order.currency", "142", "502")],
    ),
    "order line in JPY": (
        lambda: full(order(orderList=[line(currency="116")])),
        [issue("CURRENCY_NOT_CNY", [ORDER_REF], "order.orderList[0].currency", "142", "116")],
    ),
    "payment in USD": (
        lambda: full(p=payment(currency="502")),
        [issue("CURRENCY_NOT_CNY", [PAYMENT_REF], "payment.currency", "142", "502")],
    ),
    "waybill in USD": (
        lambda: full(w=waybill(currency="502")),
        [issue("CURRENCY_NOT_CNY", [WAYBILL_REF], "waybill.currency", "142", "502")],
    ),
    "waybill ambiguous and none linked": (
        lambda: MatchInput(order=order(), payments=[payment()], ambiguous_waybills=[waybill()]),
        [issue("WAYBILL_AMBIGUOUS", [WAYBILL_REF], "waybill.ebpCode", "3120960A01", None)],
    ),
    "waybill ambiguous, naming another platform": (
        lambda: MatchInput(order=order(), payments=[payment()], ambiguous_waybills=[waybill(ebpCode="3120960A09")]),
        [issue("WAYBILL_AMBIGUOUS", [WAYBILL_REF], "waybill.ebpCode", "3120960A01", "3120960A09")],
    ),
    "waybill ambiguous, no order yet": (
        lambda: MatchInput(order=None, payments=[payment()], ambiguous_waybills=[waybill()]),
        [issue("WAYBILL_AMBIGUOUS", [WAYBILL_REF], "waybill.ebpCode", None, None)],
    ),
    "order line without itemNo": (
        lambda: full(order(orderList=[line(itemNo=None)]), goods=FILED),
        [issue("GOODS_NOT_FILED", [ORDER_REF], "order.orderList[0].itemNo", "a filed itemNo", None)],
    ),
    "second line's item not filed": (
        # A gift line (price 0) keeps the amounts consistent; the tax is not checked while an item is unfiled.
        lambda: full(
            order(orderList=[line(), line(gnum=2, itemNo="JP-SSD-99", price="0", totalPrice="0")]), goods=FILED
        ),
        [issue("GOODS_NOT_FILED", [ORDER_REF], "order.orderList[1].itemNo", "a filed itemNo", "JP-SSD-99")],
    ),
    "item filed by no goods record at all": (
        lambda: full(goods={}),
        [issue("GOODS_NOT_FILED", [ORDER_REF], "order.orderList[0].itemNo", "a filed itemNo", "JP-SSD-50")],
    ),
    "item filed under another itemNo": (
        lambda: full(goods={"JP-SSD-50-B": facts("JP-SSD-50-B")}),
        [issue("GOODS_NOT_FILED", [ORDER_REF], "order.orderList[0].itemNo", "a filed itemNo", "JP-SSD-50")],
    ),
    "taxTotal leaves out the freight (warning)": (
        # Dutiable value 200 + 10 freight = 210.00. Consumption tax 210 / 0.85 × 0.15 = 37.0588 statutory,
        # × 0.7 = 25.9412 → 25.94; VAT (210 + 37.0588) × 0.13 = 32.1176, × 0.7 = 22.4824 → 22.48;
        # 25.94 + 22.48 = 48.42, where the order says 46.12 (the tax of the goods alone).
        lambda: full(order(freight="10.00", acturalPaid="256.12"), payment(amountPaid="256.12"), goods=FILED),
        [issue("TAX_TOTAL_MISMATCH", [ORDER_REF], "order.taxTotal", "48.42", "46.12")],
    ),
    "taxTotal leaves out the insurance (warning)": (
        # Insurance from the waybill: 200 + 5 = 205.00. Consumption tax 205 / 0.85 × 0.15 × 0.7 = 25.3235 →
        # 25.32; VAT (205 + 36.1765) × 0.13 × 0.7 = 21.9471 → 21.95; total 47.27.
        lambda: full(w=waybill(insuredFee="5.00"), goods=FILED),
        [issue("TAX_TOTAL_MISMATCH", [ORDER_REF], "order.taxTotal", "47.27", "46.12")],
    ),
    "buyer ID with a wrong check digit": (
        lambda: full(order(buyerIdNumber="330106199001011234"), payment(payerIdNumber="330106199001011234")),
        [issue("BUYER_ID_INVALID", [ORDER_REF], "order.buyerIdNumber", None, "330106199001011234")],
    ),
    "buyer ID with an impossible birth date": (
        lambda: full(order(buyerIdNumber="330106199002301236"), payment(payerIdNumber="330106199002301236")),
        [issue("BUYER_ID_INVALID", [ORDER_REF], "order.buyerIdNumber", None, "330106199002301236")],
    ),
    "telephones that are not telephone numbers": (
        lambda: full(
            order(buyerTelephone="12345", consigneeTelephone="1380013800"), w=waybill(consigneeTelephone="1380013800")
        ),
        [
            issue("TELEPHONE_INVALID", [ORDER_REF], "order.buyerTelephone", "a telephone number", "12345"),
            issue("TELEPHONE_INVALID", [ORDER_REF], "order.consigneeTelephone", "a telephone number", "1380013800"),
        ],
    ),
    "no tax collected (warning)": (
        lambda: full(order(taxTotal="0", acturalPaid="200.00"), payment(amountPaid="200.00"), goods=FILED),
        [issue("TAX_TOTAL_MISMATCH", [ORDER_REF], "order.taxTotal", "46.12", "0.00")],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_reason_code_fires_with_its_details(case: str) -> None:
    build, expected = CASES[case]
    outcome = evaluate(build())
    assert outcome.discrepancies == expected
    blocking = any(d.severity == "error" for d in expected)
    assert blocking == ("(warning)" not in case)
    # A warning informs and never blocks the match.
    assert outcome.status == ("AWAITING_DOCUMENTS" if outcome.missing else "MISMATCHED" if blocking else "MATCHED")


def test_every_reason_code_is_exercised() -> None:
    fired = {d.code for _, expected in CASES.values() for d in expected}
    assert fired == set(REASON_CODES)


@pytest.mark.parametrize("code", sorted(REASON_CODES))
def test_catalogue_entry_is_complete(code: str) -> None:
    rc = REASON_CODES[code]
    assert rc.code == code
    assert rc.severity in ("error", "warning")
    assert rc.zh
    assert rc.en
    assert rc.field
    fired = [d for _, expected in CASES.values() for d in expected if d.code == code]
    assert fired
    for discrepancy in fired:
        assert {doc.type for doc in discrepancy.documents} <= set(rc.documents)


def test_each_check_alone() -> None:
    o = order(acturalPaid="250.00")
    [formula] = check_order(o, ZERO)
    assert (formula.code, formula.expected, formula.actual) == ("ORDER_AMOUNT_FORMULA", "246.12", "250.00")
    [amount] = check_payment(order(), payment(amountPaid="1.00"), ZERO)
    assert (amount.code, amount.documents) == ("PAYMENT_AMOUNT_MISMATCH", BOTH_PAY)
    issues = check_waybill(order(), waybill(consignee="x", consigneeTelephone="1", consigneeAddress="y"))
    assert [d.code for d in issues] == [
        "CONSIGNEE_NAME_MISMATCH",
        "CONSIGNEE_PHONE_MISMATCH",
        "CONSIGNEE_ADDRESS_MISMATCH",
    ]


# --- goods records (商品备案) and the tax -------------------------------------------------------


def test_swagger_triple_matches_with_its_goods_record() -> None:
    # The example order's taxTotal 46.12 is the tax of its filed item (tax.py: 24.71 + 21.41).
    assert assess_order(order(), FILED, waybill()).tax_total == Decimal("46.12")
    outcome = evaluate(full(goods=FILED))
    assert (outcome.status, outcome.discrepancies) == ("MATCHED", [])
    assert check_goods(order(), FILED, [waybill()], ZERO) == []


def test_without_goods_data_both_goods_checks_are_skipped() -> None:
    unfiled = full(order(orderList=[line(itemNo=None)]))
    untaxed = full(order(taxTotal="0", acturalPaid="200.00"), payment(amountPaid="200.00"))
    for data in (unfiled, untaxed):
        assert data.goods is None
        assert (evaluate(data).status, evaluate(data).discrepancies) == ("MATCHED", [])
    # The same purchases with the goods records: each check speaks.
    assert [d.code for d in evaluate(full(order(orderList=[line(itemNo=None)]), goods=FILED)).discrepancies] == [
        "GOODS_NOT_FILED"
    ]
    untaxed_checked = evaluate(
        full(order(taxTotal="0", acturalPaid="200.00"), payment(amountPaid="200.00"), goods=FILED)
    )
    assert [d.code for d in untaxed_checked.discrepancies] == ["TAX_TOTAL_MISMATCH"]


def test_goods_checks_wait_for_an_order() -> None:
    outcome = evaluate(MatchInput(order=None, payments=[payment()], waybills=[waybill()], goods={}))
    assert (outcome.status, outcome.missing, outcome.discrepancies) == ("AWAITING_DOCUMENTS", ["order"], [])


def test_unfiled_goods_block_while_a_tax_difference_warns() -> None:
    unfiled_untaxed = order(orderList=[line(itemNo=None)], taxTotal="0", acturalPaid="200.00")
    both = evaluate(full(unfiled_untaxed, payment(amountPaid="200.00"), goods=FILED))
    # With an item unfiled the tax cannot be computed, so only GOODS_NOT_FILED is reported.
    assert [d.code for d in both.discrepancies] == ["GOODS_NOT_FILED"]
    assert both.status == "MISMATCHED"
    # A warning rides along with an error of another check, and the error decides the status.
    mixed = evaluate(full(order(taxTotal="0", acturalPaid="200.00"), payment(amountPaid="201.00"), goods=FILED))
    assert [(d.code, d.severity) for d in mixed.discrepancies] == [
        ("TAX_TOTAL_MISMATCH", "warning"),
        ("PAYMENT_AMOUNT_MISMATCH", "error"),
    ]
    assert mixed.status == "MISMATCHED"


def test_tax_total_compares_to_the_cent_within_the_tolerance() -> None:
    def warned(tax_total: str, tolerance: str = "0") -> bool:
        paid = str(Decimal("200.00") + Decimal(tax_total))
        data = full(
            order(taxTotal=tax_total, acturalPaid=paid),
            payment(amountPaid=paid),
            goods=FILED,
            tolerance=Decimal(tolerance),
        )
        return [d.code for d in evaluate(data).discrepancies] == ["TAX_TOTAL_MISMATCH"]

    assert not warned("46.12")
    assert not warned("46.12000")
    assert not warned("46.124")  # 46.12 to the cent
    assert warned("46.125")  # 46.13 to the cent
    assert warned("46.11")
    assert not warned("46.10", tolerance="0.05")
    assert warned("46.06", tolerance="0.05")


def test_tax_over_several_lines_and_rates() -> None:
    # Line 1: the cosmetic, 24.71 + 21.41 = 46.12. Line 2: a 100.00 VAT-only item (13 %, no consumption tax):
    # 100 × 0.13 × 0.7 = 9.10. Total 55.22.
    goods = FILED | {"JP-MILK-1": facts("JP-MILK-1", consumption="0")}
    lines = [line(), line(gnum=2, itemNo="JP-MILK-1", price="100.00", totalPrice="100.00")]
    o = order(goodsValue="300.00", taxTotal="55.22", acturalPaid="355.22", orderList=lines)
    assert assess_order(o, goods, None).tax_total == Decimal("55.22")
    assert evaluate(full(o, payment(amountPaid="355.22"), goods=goods)).discrepancies == []
    off = order(goodsValue="300.00", taxTotal="46.12", acturalPaid="346.12", orderList=lines)
    [warning] = evaluate(full(off, payment(amountPaid="346.12"), goods=goods)).discrepancies
    assert (warning.code, warning.expected, warning.actual) == ("TAX_TOTAL_MISMATCH", "55.22", "46.12")


# --- silence where the documents agree --------------------------------------------------------


@pytest.mark.parametrize(
    ("acturalPaid", "amountPaid", "agree"),
    [
        ("19050", "19050.00000", True),
        ("10.00", "10.004", True),
        ("10.004", "10.00", True),
        ("10.00", "10.01", False),
        ("10.01", "10.00", False),
        ("10.00", "9.99", False),
        ("10.00", "10.00999", False),
    ],
)
def test_amounts_compare_to_the_cent(acturalPaid: str, amountPaid: str, agree: bool) -> None:
    o = order(
        goodsValue=acturalPaid,
        taxTotal="0",
        acturalPaid=acturalPaid,
        orderList=[line(price=acturalPaid, totalPrice=acturalPaid)],
    )
    assert check_order(o, ZERO) == []
    issues = check_payment(o, payment(amountPaid=amountPaid), ZERO)
    assert [d.code for d in issues] == ([] if agree else ["PAYMENT_AMOUNT_MISMATCH"])


def test_line_and_formula_compare_to_the_cent() -> None:
    # 3 × 3.333 = 9.999 → 10.00 to the cent; goodsValue written with 5 decimals.
    o = order(
        goodsValue="10.00000",
        taxTotal="0",
        acturalPaid="10.004",
        orderList=[line(qty="3", price="3.333", totalPrice="10.00")],
    )
    assert check_order(o, ZERO) == []


def test_tolerance_setting() -> None:
    within = full(p=payment(amountPaid="246.17"), tolerance=Decimal("0.05"))
    assert evaluate(within).status == "MATCHED"
    assert evaluate(within).discrepancies == []
    beyond = full(p=payment(amountPaid="246.18"), tolerance=Decimal("0.05"))
    assert [d.code for d in evaluate(beyond).discrepancies] == ["PAYMENT_AMOUNT_MISMATCH"]
    below = full(p=payment(amountPaid="246.07"), tolerance=Decimal("0.05"))
    assert evaluate(below).discrepancies == []
    # The default tolerance is 0: the same cent-level difference blocks the match.
    assert evaluate(full(p=payment(amountPaid="246.17"))).status == "MISMATCHED"
    # The tolerance reaches the order formula as well.
    formula = full(order(acturalPaid="246.15"), payment(amountPaid="246.15"), tolerance=Decimal("0.05"))
    assert evaluate(formula).discrepancies == []
    assert [
        d.code for d in evaluate(full(order(acturalPaid="246.15"), payment(amountPaid="246.15"))).discrepancies
    ] == ["ORDER_AMOUNT_FORMULA"]


def test_gift_line_with_price_zero() -> None:
    gift = line(gnum=2, itemNo="GIFT-1", itemName="赠品小样", price="0", totalPrice="0", qty="1")
    outcome = evaluate(full(order(orderList=[line(), gift])))
    assert outcome.status == "MATCHED"
    assert outcome.discrepancies == []


def test_full_formula_with_discount_freight_and_tax() -> None:
    o = order(
        goodsValue="300.00",
        freight="12.50",
        discount="20.00",
        taxTotal="30.25",
        acturalPaid="322.75",
        orderList=[
            line(qty="2", price="100.00", totalPrice="200.00"),
            line(gnum=2, qty="4", price="25", totalPrice="100"),
        ],
    )
    outcome = evaluate(full(o, payment(amountPaid="322.75")))
    assert outcome.discrepancies == []
    assert outcome.status == "MATCHED"


@pytest.mark.parametrize(
    ("buyer", "payer"), [("33010619900101123X", "33010619900101123x"), ("33010619900101123x", "33010619900101123X")]
)
def test_id_number_case_does_not_matter(buyer: str, payer: str) -> None:
    assert check_payment(order(buyerIdNumber=buyer), payment(payerIdNumber=payer), ZERO) == []


def test_payment_references_optional_on_the_order() -> None:
    assert check_payment(order(payCode=None, payName=None, payTransactionId=None), payment(), ZERO) == []
    both = check_payment(order(payCode="3120960P02", payTransactionId="X1"), payment(), ZERO)
    assert [(d.code, d.field) for d in both] == [
        ("PAYMENT_REFERENCE_MISMATCH", "order.payCode"),
        ("PAYMENT_REFERENCE_MISMATCH", "order.payTransactionId"),
    ]


def test_ambiguous_waybill_silent_once_a_waybill_is_linked() -> None:
    outcome = evaluate(full(ambiguous_waybills=[waybill(logisticsNo="SD7700099999CN")]))
    assert outcome.discrepancies == []
    assert outcome.status == "MATCHED"


# --- statuses ----------------------------------------------------------------------------------


def test_awaiting_documents_lists_missing_and_discrepancies_so_far() -> None:
    only_order = evaluate(MatchInput(order=order(acturalPaid="250.00")))
    assert only_order.status == "AWAITING_DOCUMENTS"
    assert only_order.missing == ["payment", "waybill"]
    assert [d.code for d in only_order.discrepancies] == ["ORDER_AMOUNT_FORMULA"]

    no_waybill = evaluate(MatchInput(order=order(), payments=[payment(payerName="李四")]))
    assert no_waybill.status == "AWAITING_DOCUMENTS"
    assert no_waybill.missing == ["waybill"]
    assert [d.code for d in no_waybill.discrepancies] == ["PAYER_NOT_BUYER"]

    no_order = evaluate(MatchInput(order=None, payments=[payment(currency="502")], waybills=[waybill()]))
    assert no_order.status == "AWAITING_DOCUMENTS"
    assert no_order.missing == ["order"]
    assert [d.field for d in no_order.discrepancies] == ["payment.currency"]

    nothing = evaluate(MatchInput(order=None))
    assert (nothing.status, nothing.missing, nothing.discrepancies) == (
        "AWAITING_DOCUMENTS",
        ["order", "payment", "waybill"],
        [],
    )


def test_mismatched_and_matched() -> None:
    assert evaluate(full(p=payment(amountPaid="1.00"))).status == "MISMATCHED"
    assert evaluate(full()).status == "MATCHED"


def test_warnings_do_not_block_a_match() -> None:
    warning = Discrepancy(
        code="SOME_WARNING",
        severity="warning",
        documents=[ORDER_REF],
        field="order.note",
        expected=None,
        actual=None,
        message=Message(zh="提示", en="note"),
    )
    assert status_for([], [warning]) == "MATCHED"
    error = issue("PAYER_NOT_BUYER", BOTH_PAY, "payment.payerName", "a", "b")
    assert status_for([], [warning, error]) == "MISMATCHED"
    assert status_for(["waybill"], [error]) == "AWAITING_DOCUMENTS"


# --- property: random consistent purchases ---------------------------------------------------

money = st.decimals(min_value=Decimal("0"), max_value=Decimal("99999.99"), places=2)
quantity = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999.99"), places=2)


@st.composite
def purchases(draw: st.DrawFn) -> tuple[OrderIn, PaymentIn, WaybillIn]:
    n = draw(st.integers(min_value=1, max_value=5))
    lines = []
    for gnum in range(1, n + 1):
        price, qty = draw(money), draw(quantity)
        total = (price * qty).quantize(CENT, rounding=ROUND_HALF_UP)  # 四舍五入, as customs rounds
        lines.append(line(gnum=gnum, price=str(price), qty=str(qty), totalPrice=str(total)))
    goods_value = sum((Decimal(str(x["totalPrice"])) for x in lines), Decimal("0"))
    freight, tax = draw(money), draw(money)
    discount = draw(st.decimals(min_value=Decimal("0"), max_value=goods_value, places=2))
    paid = goods_value + freight + tax - discount
    o = order(
        goodsValue=str(goods_value),
        freight=str(freight),
        discount=str(discount),
        taxTotal=str(tax),
        acturalPaid=str(paid),
        orderList=lines,
    )
    return o, payment(amountPaid=str(paid)), waybill()


@settings(max_examples=150, deadline=None)
@given(
    purchase=purchases(),
    delta=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000"), places=5),
    down=st.booleans(),
)
def test_random_consistent_purchases_match(
    purchase: tuple[OrderIn, PaymentIn, WaybillIn], delta: Decimal, down: bool
) -> None:
    o, p, w = purchase
    outcome = evaluate(MatchInput(order=o, payments=[p], waybills=[w]))
    assert outcome.discrepancies == []
    assert outcome.status == "MATCHED"

    perturbed = o.acturalPaid - delta if down and delta <= o.acturalPaid else o.acturalPaid + delta
    changed = evaluate(MatchInput(order=o, payments=[p.model_copy(update={"amountPaid": perturbed})], waybills=[w]))
    assert [d.code for d in changed.discrepancies] == ["PAYMENT_AMOUNT_MISMATCH"]
    assert changed.status == "MISMATCHED"


def test_goods_checks_before_the_waybill_arrives_take_no_insurance() -> None:
    assert check_goods(order(), FILED, [], ZERO) == []
    assert assess_order(order(), FILED, None).tax_total == Decimal("46.12")


def test_the_assessment_keeps_each_lines_number() -> None:
    o = order(orderList=[line(gnum=1), line(gnum=2)])
    assert [t.gnum for t in assess_order(o, FILED, None).lines] == [1, 2]
