"""How agency receipts move a record — pure."""

from __future__ import annotations

import pytest

from app.rules.agency_status import agency_state, later_state, record_status_after


@pytest.mark.parametrize(
    ("code", "state"),
    [
        ("120", "accepted"),
        ("399", "accepted"),
        ("500", "held"),
        ("502", "held"),
        ("800", "released"),
        ("899", "released"),
        ("100", "rejected"),
        ("-621018", "rejected"),
    ],
)
def test_agency_state(code: str, state: str) -> None:
    assert agency_state(code) == state


def test_answers_only_move_forward() -> None:
    assert later_state(None, "accepted") == "accepted"
    assert later_state("held", "released") == "released"
    assert later_state("released", "held") == "released"  # the reply recorded after its callback
    assert later_state("rejected", "released") == "rejected"


def agencies(**states: str | None) -> dict[str, dict[str, str | None]]:
    return {name: {"state": state} for name, state in states.items()}


@pytest.mark.parametrize(
    ("current", "states", "expected"),
    [
        ("DECLARED", {"customs": "accepted", "inspection": None, "tax": None, "fx": None}, "DECLARED"),
        ("DECLARED", {"customs": "held", "inspection": "held", "tax": None, "fx": None}, "INSPECTION"),
        ("INSPECTION", {"customs": "released", "inspection": "held", "tax": "accepted", "fx": "accepted"}, "CLEARED"),
        # Released, but not every agency has answered: "no agency rejected" is not known yet.
        ("DECLARED", {"customs": "released", "inspection": "accepted", "tax": None, "fx": "accepted"}, "DECLARED"),
        ("DECLARED", {"customs": "released", "inspection": "rejected", "tax": "accepted", "fx": None}, "REJECTED"),
        ("CLEARED", {"customs": "released", "fx": "rejected"}, "CLEARED"),  # final
        # Cancelled or returned after the declaration: final too, whatever customs' late answers to it say.
        ("REVOKED", {"customs": "released", "inspection": "accepted", "tax": "accepted", "fx": "accepted"}, "REVOKED"),
        ("REVOKED", {"customs": "held", "fx": "rejected"}, "REVOKED"),
        ("RETURNED", {"customs": "released", "fx": "rejected"}, "RETURNED"),
    ],
)
def test_record_status_after(current: str, states: dict[str, str | None], expected: str) -> None:
    assert record_status_after(current, agencies(**states)) == expected


def test_receipts_of_one_moment_sort_by_stage_then_code() -> None:
    from app.rules.agency_status import receipt_order

    moment, later = "20261207101500123", "20261207101501000"
    given = [("800", moment), ("-621001", later), ("399", moment), ("120", moment), ("500", moment)]
    ordered = sorted(given, key=lambda r: receipt_order(r[1], r[0]))
    assert [status for status, _ in ordered] == ["120", "399", "500", "800", "-621001"]


def test_a_status_that_is_not_a_number_sorts_first_of_its_stage_and_breaks_nothing() -> None:
    from app.rules.agency_status import receipt_order

    moment = "20261207101500123"
    given = [("1", moment), ("2", moment), ("A1", moment), ("-621001", moment), ("100", moment)]
    ordered = sorted(given, key=lambda r: receipt_order(r[1], r[0]))
    assert [status for status, _ in ordered] == ["A1", "1", "2", "-621001", "100"]
