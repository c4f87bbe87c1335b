"""The mock agencies' rules, called directly: each one fires on a bad package and stays silent on a good one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from app.mock_agencies import rules
from tests.mock_agencies.packages import INSPECT, package, two_line_package

NOW = datetime(2026, 11, 23, 2, 20, 0, 123000, tzinfo=UTC)  # 10:20:00.123 in China


def statuses(decision: rules.AgencyDecision) -> list[str]:
    return [r.return_status for r in decision.receipts]


def info(decision: rules.AgencyDecision) -> str:
    return " ".join(r.return_info for r in decision.receipts)


# --- customs -------------------------------------------------------------------------------------------


def test_customs_accepts_a_good_inventory_with_120_399_800() -> None:
    decision = rules.customs_decision(package(), inspect=False)
    assert statuses(decision) == ["120", "399", "800"]
    assert rules.customs_problems(package()) == []
    assert rules.customs_problems(two_line_package()) == []
    assert not decision.held_for_inspection


def test_customs_holds_for_inspection_with_120_500() -> None:
    decision = rules.customs_decision(package(), inspect=True)
    assert statuses(decision) == ["120", "500"]
    assert decision.held_for_inspection
    assert rules.RELEASE_AFTER_INSPECTION.return_status == "800"


def _drop_head(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda p: p["inventory"].pop(name)


def _set_head(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda p: p["inventory"].__setitem__(name, value)


def _set_line(name: str, value: Any, index: int = 0) -> Callable[[dict[str, Any]], None]:
    return lambda p: p["inventory"]["inventoryList"][index].__setitem__(name, value)


CUSTOMS_FAULTS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("no inventory", lambda p: p.pop("inventory"), "no inventory"),
    ("head field missing", _drop_head("assureCode"), "InventoryHead.assureCode is required"),
    ("head field blank", _set_head("buyerName", " "), "InventoryHead.buyerName is required"),
    ("trade mode", _set_head("tradeMode", "0110"), "tradeMode must be 9610 or 1210"),
    ("export flag", _set_head("ieFlag", "E"), "ieFlag must be I"),
    ("customs office", _set_head("customsCode", "15A1"), "customsCode must be 4 digits"),
    ("port", _set_head("portCode", "15011"), "portCode must be 4 digits"),
    ("currency", _set_head("currency", "502"), "currency must be 142"),
    ("no lines", _set_head("inventoryList", []), "inventoryList is empty"),
    ("line field missing", lambda p: p["inventory"]["inventoryList"][0].pop("unit1"), "line 1: unit1 is required"),
    ("gcode 8 digits", _set_line("gcode", "33049900"), "gcode must be 10 digits"),
    ("gcode letters", _set_line("gcode", "33049900AB"), "gcode must be 10 digits"),
    ("gnum from 2", _set_line("gnum", 2), "gnum must run 1..1"),
    ("no order", lambda p: p.pop("order"), "no order"),
    ("other order", _set_head("orderNo", "GW-OTHER"), "InventoryHead.orderNo differs from the order"),
    ("other seller", _set_head("ebcCode", "3120960A09"), "InventoryHead.ebcCode differs from the order"),
    ("other item", _set_line("itemNo", "JP-OTHER"), "itemNo JP-OTHER ≠ order JP-SSD-50"),
    ("other quantity", _set_line("qty", "2"), "qty 2 ≠ order 1"),
    ("other total", _set_line("totalPrice", "199.00"), "totalPrice 199.00 ≠ order 200.00"),
    ("extra line", lambda p: p["order"]["orderList"].append({**p["order"]["orderList"][0], "gnum": 2}), "line counts"),
]


@pytest.mark.parametrize(
    ("fault", "reason"), [(f, r) for _, f, r in CUSTOMS_FAULTS], ids=[c[0] for c in CUSTOMS_FAULTS]
)
def test_customs_rejects_with_100_and_the_reason(fault: Callable[[dict[str, Any]], None], reason: str) -> None:
    body = package()
    fault(body)
    decision = rules.customs_decision(body, inspect=True)
    assert statuses(decision) == ["100"], decision
    assert reason in info(decision)
    assert not decision.held_for_inspection


def test_customs_accepts_bonded_trade_mode_and_gnum_in_two_lines() -> None:
    body = two_line_package(inventory={"tradeMode": "1210"})
    assert statuses(rules.customs_decision(body, inspect=False)) == ["120", "399", "800"]
    body["inventory"]["inventoryList"][1]["gnum"] = 3
    assert "gnum must run 1..2, got [1, 3]" in info(rules.customs_decision(body, inspect=False))


def test_customs_lists_every_problem_at_once() -> None:
    body = package(inventory={"tradeMode": "0110"})
    body["inventory"]["inventoryList"][0]["gcode"] = "123"
    text = info(rules.customs_decision(body, inspect=False))
    assert "tradeMode" in text
    assert "gcode" in text


# --- inspection ----------------------------------------------------------------------------------------


def test_the_agency_obeys_the_single_windows_decision() -> None:
    assert rules.selected_for_inspection(package(riskDecision=INSPECT))
    assert not rules.selected_for_inspection(package())
    assert not rules.selected_for_inspection(package(riskDecision=None))  # no decision: released
    assert not rules.selected_for_inspection({"recordId": "r-1", "riskDecision": "inspect"})  # malformed


def test_inspection_accepts_with_120_or_holds_with_500_and_the_reasons() -> None:
    assert statuses(rules.inspection_decision(package())) == ["120"]
    held = rules.inspection_decision(package(riskDecision=INSPECT))
    assert statuses(held) == ["500"]
    assert "CREDIT_SAMPLED" in info(held)


def test_no_sampling_of_its_own_whatever_the_record() -> None:
    assert all(statuses(rules.inspection_decision(package(record_id=f"rec-{n}"))) == ["120"] for n in range(500))


@pytest.mark.parametrize("flag", [False, "false", None])
def test_inspection_rejects_goods_off_the_positive_list_naming_the_item(flag: Any) -> None:
    body = two_line_package(riskDecision=INSPECT)
    body["goods"][1]["positiveList"] = flag
    decision = rules.inspection_decision(body)
    assert statuses(decision) == ["100"]
    assert "JP-TEA-01" in info(decision)
    assert "JP-SSD-50" not in info(decision)


def test_inspection_rejects_a_package_without_goods() -> None:
    assert statuses(rules.inspection_decision(package(goods=[]))) == ["100"]


# --- tax -----------------------------------------------------------------------------------------------


def test_tax_bill_for_the_worked_example() -> None:
    decision = rules.tax_decision(package(), Decimal(0), NOW)
    assert statuses(decision) == ["120"]
    assert "differs" not in info(decision)
    assert decision.tax_bill is not None
    head, lines = decision.tax_bill["taxHeadRd"], decision.tax_bill["taxListRd"]
    assert (head["customsTax"], head["valueAddedTax"], head["consumptionTax"], head["taxTotal"]) == (
        "0.00",
        "21.41",
        "24.71",
        "46.12",
    )
    assert head["returnTime"] == "20261123102000123"
    assert head["orderNo"] == "GW20261123000101"
    assert lines == [
        {
            "gnum": 1,
            "gcode": "3304990099",
            "taxPrice": "200.00",
            "customsTax": "0.00",
            "valueAddedTax": "21.41",
            "consumptionTax": "24.71",
        }
    ]
    assert decision.quota_use == rules.QuotaUse("33010619900101123X", 2026, Decimal("200.00"))


def test_tax_bill_per_line_with_freight_apportioned() -> None:
    # Freight 10.00 over 200 : 100 → 6.67 / 3.33. Line 1 (206.67, VAT 13 %, CT 15 %):
    # CT 206.67 / 0.85 × 0.15 × 0.7 = 25.53; VAT (206.67 + 36.4712) × 0.13 × 0.7 = 22.13.
    # Line 2 (103.33, VAT only): 103.33 × 0.13 × 0.7 = 9.40. Total 57.06 (the package says 46.12).
    decision = rules.tax_decision(two_line_package(), Decimal(0), NOW)
    assert statuses(decision) == ["120"]
    assert "declared tax 46.12 differs from the assessed 57.06" in info(decision)
    assert decision.tax_bill is not None
    head = decision.tax_bill["taxHeadRd"]
    assert (head["valueAddedTax"], head["consumptionTax"], head["taxTotal"]) == ("31.53", "25.53", "57.06")
    assert head["dutiableValue"] == "310.00"
    assert "57.06" in head["note"]
    assert [(x["gnum"], x["gcode"], x["taxPrice"], x["valueAddedTax"], x["consumptionTax"]) for x in
            decision.tax_bill["taxListRd"]] == [
        (1, "3304990099", "206.67", "22.13", "25.53"),
        (2, "0902100000", "103.33", "9.40", "0.00"),
    ]  # fmt: skip


def test_tax_mismatch_is_noted_but_accepted() -> None:
    decision = rules.tax_decision(package(tax={"taxTotal": "40.00"}), Decimal(0), NOW)
    assert statuses(decision) == ["120"]
    assert "declared tax 40.00 differs from the assessed 46.12" in info(decision)


def test_tax_annual_quota_rejects_with_621018() -> None:
    at_edge = rules.tax_decision(package(), Decimal("25800.00"), NOW)  # 25,800 + 200 = 26,000: still allowed
    assert statuses(at_edge) == ["120"]
    over = rules.tax_decision(package(), Decimal("25800.01"), NOW)
    assert statuses(over) == ["100"]
    assert "-621018" in info(over)
    assert "25800.01" in info(over)
    assert "33010619900101123X" not in info(over)  # the ID is masked
    assert over.tax_bill is None
    assert over.quota_use is None


def test_tax_single_limit_rejects_with_621005() -> None:
    body = package()
    body["inventory"]["inventoryList"][0].update(price="5000.01", totalPrice="5000.01")
    decision = rules.tax_decision(body, Decimal(0), NOW)
    assert statuses(decision) == ["100"]
    assert "-621005" in info(decision)
    assert "-621018" not in info(decision)


def test_tax_limits_are_parameters() -> None:
    assert statuses(rules.tax_decision(package(), Decimal(0), NOW, annual_limit=Decimal("199.99"))) == ["100"]


def test_tax_quota_year_comes_from_the_declaration_date() -> None:
    assert rules.quota_key(package(), NOW) == ("33010619900101123X", 2026)
    assert rules.quota_key(package(inventory={"declTime": "20270101"}), NOW)[1] == 2027
    undated = package()
    del undated["inventory"]["declTime"], undated["inventory"]["appTime"]
    assert rules.quota_key(undated, datetime(2026, 12, 31, 17, 0, tzinfo=UTC))[1] == 2027  # 01:00 in China


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"goods": []}, "line 1: no totalPrice or no filed tax rates"),
        ({"inventory": {"freight": "ten"}}, "freight / insuredFee is not a number"),
        ({"inventory": {"buyerIdNumber": ""}, "order": {"buyerIdNumber": ""}}, "no buyerIdNumber"),
        ({"inventory": {"inventoryList": []}}, "inventoryList is empty"),
    ],
)
def test_tax_rejects_what_it_cannot_assess(change: dict[str, Any], reason: str) -> None:
    decision = rules.tax_decision(package(**change), Decimal(0), NOW)
    assert statuses(decision) == ["100"]
    assert reason in info(decision)


# --- fx ------------------------------------------------------------------------------------------------


def test_fx_settles_a_good_payment() -> None:
    decision = rules.fx_decision(package(), NOW)
    assert statuses(decision) == ["120"]
    assert decision.settlement == {
        "payCode": "3120960P01",
        "payTransactionId": "PAY202611230001",
        "orderNo": "GW20261123000101",
        "amount": "246.12",
        "currency": "142",
        "settledAt": "2026-11-23T10:20:00.123+08:00",
    }


@pytest.mark.parametrize(
    ("payment", "reason"),
    [
        ({"currency": "502"}, "currency must be 142"),
        ({"amountPaid": "246.11"}, "amountPaid must equal the order's acturalPaid"),
        ({"payerIdNumber": "33010619900101123"}, "payerIdNumber is not an 18-char PRC ID"),
        ({"payerIdNumber": "33010619900101123Y"}, "payerIdNumber is not an 18-char PRC ID"),
        ({"payerIdNumber": "G12345678"}, "payerIdNumber is not an 18-char PRC ID"),
    ],
)
def test_fx_rejects_a_bad_payment(payment: dict[str, Any], reason: str) -> None:
    decision = rules.fx_decision(package(payment=payment), NOW)
    assert statuses(decision) == ["100"]
    assert reason in info(decision)
    assert decision.settlement is None


def test_fx_rejects_a_package_without_payment() -> None:
    assert statuses(rules.fx_decision(package(payment=None), NOW)) == ["100"]


def test_fx_id_format_and_optional_check_digit() -> None:
    assert rules.valid_prc_id("11010519491231002X")  # a real-format ID with a valid check digit
    assert rules.valid_prc_id("11010519491231002X", check_digit=True)
    assert rules.valid_prc_id("330106199001011234")  # right format, wrong check digit
    assert not rules.valid_prc_id("330106199001011234", check_digit=True)
    lower_x = package(payment={"payerIdNumber": "11010519491231002x"})
    assert statuses(rules.fx_decision(lower_x, NOW, check_id_digit=True)) == ["120"]
    wrong_digit = package(payment={"payerIdNumber": "330106199001011234"})
    assert statuses(rules.fx_decision(wrong_digit, NOW, check_id_digit=True)) == ["100"]
    assert statuses(rules.fx_decision(package(), NOW, check_id_digit=True)) == ["120"]


def test_fx_compares_amounts_as_numbers() -> None:
    assert statuses(rules.fx_decision(package(payment={"amountPaid": "246.120"}), NOW)) == ["120"]


def test_mask_and_return_time() -> None:
    assert rules.mask_id("33010619900101123X") == "330106********123X"
    assert rules.mask_id("short") == "***"
    assert rules.return_time(NOW) == "20261123102000123"
