"""Who may cancel or return an inventory, when, and what goes back to the buyer's quota (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app.rules.after_release import (
    AFTER_RELEASE_REFUSALS,
    Refused,
    ReturnedLines,
    cancel_refusal,
    decimal_or_zero,
    disagreements,
    goods_back_by,
    inventory_number,
    quota_given_back,
    request_outcome,
    return_refusal,
    returned_lines,
)

RELEASED = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
LINES = [
    {
        "gnum": 1,
        "gcode": "3304990099",
        "gname": "精华液",
        "qty": "2",
        "unit": "142",
        "price": "150",
        "totalPrice": "300",
    },
    {"gnum": 2, "gcode": "3304990099", "gname": "面霜", "qty": "1", "unit": "142", "price": "100", "totalPrice": "100"},
]


def code(refused: Refused | None) -> str | None:
    return refused.code if refused is not None else None


@pytest.mark.parametrize(
    ("status", "pending", "expected"),
    [
        ("DECLARED", False, None),
        ("INSPECTION", False, None),
        ("CLEARED", False, None),
        ("CLEARED", True, "REQUEST_PENDING"),
        ("REVOKED", False, "INVENTORY_ALREADY_CANCELLED"),
        ("REVOKED", True, "INVENTORY_ALREADY_CANCELLED"),
        ("RETURNED", False, "INVENTORY_ALREADY_RETURNED"),
        ("REJECTED", False, "INVENTORY_NOT_DECLARED"),
        ("MATCHED", False, "INVENTORY_NOT_DECLARED"),
        ("AWAITING_DOCUMENTS", False, "INVENTORY_NOT_DECLARED"),
    ],
)
def test_a_cancel_needs_an_inventory_with_customs(status: str, pending: bool, expected: str | None) -> None:
    assert code(cancel_refusal(status, pending)) == expected


def test_a_return_is_for_released_goods_within_30_days() -> None:
    assert return_refusal("CLEARED", False, RELEASED, RELEASED + timedelta(days=30)) is None
    late = return_refusal("CLEARED", False, RELEASED, RELEASED + timedelta(days=30, seconds=1))
    assert code(late) == "RETURN_PERIOD_EXPIRED"
    assert code(return_refusal("DECLARED", False, None, RELEASED)) == "INVENTORY_NOT_RELEASED"
    assert code(return_refusal("INSPECTION", False, None, RELEASED)) == "INVENTORY_NOT_RELEASED"
    assert code(return_refusal("CLEARED", True, RELEASED, RELEASED)) == "REQUEST_PENDING"
    assert code(return_refusal("REVOKED", False, RELEASED, RELEASED)) == "INVENTORY_ALREADY_CANCELLED"
    assert code(return_refusal("RETURNED", False, RELEASED, RELEASED)) == "INVENTORY_ALREADY_RETURNED"
    assert goods_back_by(RELEASED) == datetime(2026, 12, 16, 10, 0, tzinfo=UTC)  # 45 days


def test_returned_lines_name_inventory_lines_and_at_most_their_quantity() -> None:
    whole = returned_lines(LINES, None)
    assert isinstance(whole, ReturnedLines)
    assert (whole.value, whole.whole, [line["qty"] for line in whole.lines]) == (Decimal("400.00"), True, ["2", "1"])
    part = returned_lines(LINES, [{"gnum": 1, "qty": Decimal("1")}])
    assert isinstance(part, ReturnedLines)
    assert (part.value, part.whole) == (Decimal("150.00"), False)
    assert part.lines == [{"gnum": 1, "gcode": "3304990099", "gname": "精华液", "qty": "1", "unit": "142"}]
    assert code(returned_lines(LINES, [{"gnum": 3}])) == "RETURN_LINE_NOT_FOUND"  # type: ignore[arg-type]
    assert code(returned_lines(LINES, [{"gnum": 1}, {"gnum": 1}])) == "RETURN_LINE_NOT_FOUND"  # type: ignore[arg-type]
    too_many = returned_lines(LINES, [{"gnum": 2, "qty": Decimal("1.00001")}])
    assert code(too_many) == "RETURN_QUANTITY_EXCEEDED"  # type: ignore[arg-type]
    every_line_in_full = returned_lines(LINES, [{"gnum": 1}, {"gnum": 2, "qty": Decimal("1")}])
    assert isinstance(every_line_in_full, ReturnedLines)
    assert every_line_in_full.whole


def test_the_quota_given_back_is_the_dutiable_value_in_proportion() -> None:
    part = returned_lines(LINES, [{"gnum": 1, "qty": Decimal("1")}])
    assert isinstance(part, ReturnedLines)
    # 150 of 400 declared; the dutiable value (with freight) 420 → 157.50.
    assert quota_given_back(Decimal("420"), Decimal("400"), part) == Decimal("157.50")
    whole = returned_lines(LINES, None)
    assert isinstance(whole, ReturnedLines)
    assert quota_given_back(Decimal("420"), Decimal("400"), whole) == Decimal("420")


def test_customs_answers_decide_the_request() -> None:
    assert request_outcome(["2"]) is None
    assert request_outcome(["120"]) is None
    assert request_outcome(["120", "399"]) == "approved"
    assert request_outcome(["100"]) == "rejected"
    assert request_outcome(["-623001"]) == "rejected"
    assert request_outcome(["120", "100"]) == "rejected"


def test_given_fields_must_agree_with_the_inventory() -> None:
    inventory = {"orderNo": "A1", "ebpCode": "3120960A01", "buyerIdNumber": "33010619900101123X", "invtNo": "X"}
    assert disagreements({"orderNo": "A1", "buyerIdNumber": "33010619900101123x"}, inventory) == []
    assert disagreements({"orderNo": "A2", "invtNo": "Y", "logisticsNo": ""}, inventory) == ["orderNo", "invtNo"]


def test_the_inventory_number_has_the_official_shape() -> None:
    number = inventory_number("1501", 2026, 10**12 + 42)
    assert (number, len(number)) == ("15012026I000000042", 18)


def test_every_refusal_has_chinese_and_english_and_a_receipt_code() -> None:
    for refusal in AFTER_RELEASE_REFUSALS.values():
        assert refusal.zh
        assert refusal.en
        assert refusal.ceb_return_status.startswith(("-623", "-625"))
        assert refusal.http_status in (409, 422)


# --- the exact refusals and edges (each case kills a mutant `make mutation` showed surviving) ----------------


def test_each_refusal_says_what_stands_in_the_way() -> None:
    pending = ("REQUEST_PENDING", "another request of this inventory is with customs")
    cases = [
        (cancel_refusal("REVOKED", False), ("INVENTORY_ALREADY_CANCELLED", "the inventory is already cancelled")),
        (cancel_refusal("RETURNED", False), ("INVENTORY_ALREADY_RETURNED", "the goods were already returned")),
        (
            cancel_refusal("MATCHED", False),
            ("INVENTORY_NOT_DECLARED", "a MATCHED record has no inventory with customs"),
        ),
        (cancel_refusal("DECLARED", True), pending),
        (return_refusal("CLEARED", True, RELEASED, RELEASED), pending),
        (
            return_refusal("DECLARED", False, None, RELEASED),
            ("INVENTORY_NOT_RELEASED", "a DECLARED record is not released"),
        ),
        (
            return_refusal("CLEARED", False, RELEASED, RELEASED + timedelta(days=31)),
            (
                "RETURN_PERIOD_EXPIRED",
                "released 2026-11-01T10:00:00+00:00, the period ended 2026-12-01T10:00:00+00:00",
            ),
        ),
        (
            returned_lines(LINES, [{"gnum": 3}]),
            ("RETURN_LINE_NOT_FOUND", "gnum 3 is not a line of the inventory (or is repeated)"),
        ),
        (
            returned_lines(LINES, [{"gnum": 2, "qty": Decimal("1.5")}]),
            ("RETURN_QUANTITY_EXCEEDED", "line 2: 1.5 returned, 1 declared"),
        ),
    ]
    for refused, expected in cases:
        assert isinstance(refused, Refused)
        assert (refused.code, refused.detail) == expected


@pytest.mark.parametrize("qty", [Decimal("0"), Decimal("-1"), "many"])
def test_a_returned_quantity_must_be_more_than_nothing(qty: object) -> None:
    refused = returned_lines(LINES, [{"gnum": 1, "qty": qty}])
    assert isinstance(refused, Refused)
    assert (refused.code, refused.detail) == ("RETURN_QUANTITY_EXCEEDED", "line 1: the quantity must be more than 0")


def test_a_return_needs_a_release_time_and_a_released_status() -> None:
    assert code(return_refusal("CLEARED", False, None, RELEASED)) == "INVENTORY_NOT_RELEASED"
    assert code(return_refusal("DECLARED", False, RELEASED, RELEASED)) == "INVENTORY_NOT_RELEASED"


def test_one_line_returned_in_full_beside_another_kept_is_not_a_whole_return() -> None:
    first_line_only = returned_lines(LINES, [{"gnum": 1}])
    assert isinstance(first_line_only, ReturnedLines)
    assert (first_line_only.whole, first_line_only.value) == (False, Decimal("300.00"))


def test_unreadable_quantities_and_prices_count_as_nothing() -> None:
    odd = [{"gnum": 1, "gcode": "3304990099", "gname": "精华液", "qty": "n/a", "unit": "142"}]
    whole = returned_lines(odd, None)
    assert isinstance(whole, ReturnedLines)
    assert (whole.whole, whole.value, whole.lines[0]["qty"]) == (True, Decimal("0.00"), "0")
    unpriced = returned_lines([{**odd[0], "qty": "3"}], None)
    assert isinstance(unpriced, ReturnedLines)
    assert unpriced.value == Decimal("0.00")
    assert (decimal_or_zero("12.5"), decimal_or_zero("x"), decimal_or_zero(None)) == (Decimal("12.5"), 0, 0)
    assert (decimal_or_zero("Infinity"), decimal_or_zero("NaN")) == (0, 0)


def test_values_round_half_up_to_the_cent() -> None:
    half = returned_lines([{**LINES[1], "price": "0.125"}], None)
    assert isinstance(half, ReturnedLines)
    assert half.value == Decimal("0.13")
    assert quota_given_back(Decimal("0.25"), Decimal("2"), ReturnedLines([], Decimal("1"), False)) == Decimal("0.13")


def test_the_quota_given_back_at_its_edges() -> None:
    whole = returned_lines(LINES, None)
    assert isinstance(whole, ReturnedLines)
    # A whole return gives everything back even when the lines' total prices add up to another figure.
    assert quota_given_back(Decimal("420"), Decimal("500"), whole) == Decimal("420")
    part = ReturnedLines([], Decimal("0.50"), False)
    assert quota_given_back(Decimal("420"), Decimal("0"), part) == Decimal("420")  # nothing declared to divide by
    assert quota_given_back(Decimal("420"), Decimal("1"), part) == Decimal("210.00")


def test_an_empty_field_names_nothing_and_a_field_the_inventory_lacks_disagrees() -> None:
    inventory = {"orderNo": "A1", "ebpCode": "3120960A01"}
    assert disagreements({"ebpCode": ""}, inventory) == []
    assert disagreements({"logisticsNo": "xxxx"}, inventory) == ["logisticsNo"]


def test_the_inventory_number_takes_four_digits_of_the_customs_code() -> None:
    assert inventory_number("150123", 2026, 7) == "15012026I000000007"
