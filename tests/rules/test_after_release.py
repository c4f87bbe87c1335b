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
