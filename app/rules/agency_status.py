"""How agency receipts move a declared record (pure): DECLARED → INSPECTION → CLEARED, or REJECTED."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# REVOKED / RETURNED: cancelled or returned after the declaration (app/rules/after_release.py); final too.
FINAL_STATUSES = frozenset({"CLEARED", "REJECTED", "REVOKED", "RETURNED"})
RELEASED = frozenset({"800", "899"})  # 放行, 结关
HELD = frozenset({"500", "501", "502", "503", "599"})  # 查验 and the detentions


def is_rejection(return_status: str) -> bool:
    """``100`` (退单) or a negative error code."""
    return return_status == "100" or return_status.startswith("-")


def agency_state(return_status: str) -> str:
    if is_rejection(return_status):
        return "rejected"
    if return_status in RELEASED:
        return "released"
    if return_status in HELD:
        return "held"
    return "accepted"


STAGE = {None: 0, "accepted": 1, "held": 2, "released": 3, "rejected": 4}


def later_state(previous: str | None, new: str) -> str:
    """Agency answers only move forward (accepted → held → released; a rejection is final): an earlier
    stage that arrives late — a synchronous reply recorded after the callback that followed it — is ignored."""
    return previous if previous is not None and STAGE[previous] > STAGE[new] else new


def record_status_after(current: str, agencies: Mapping[str, Mapping[str, Any]]) -> str:
    """The record status once every agency's latest receipt is known.

    Any agency rejecting makes the record REJECTED. Customs releasing (800) makes it CLEARED once every
    agency has answered without a rejection ("no agency rejected" is only known then); customs holding it
    (500 inspection, 50x detention) makes it INSPECTION.
    """
    if current in FINAL_STATUSES:
        return current
    states = {name: agency.get("state") for name, agency in agencies.items()}
    if "rejected" in states.values():
        return "REJECTED"
    customs = states.get("customs")
    if customs == "released":
        return "CLEARED" if all(states.values()) else current
    if customs == "held":
        return "INSPECTION"
    return current


def receipt_order(return_time: str, return_status: str) -> tuple[str, int, int]:
    """Sort key of one agency's receipts in the order they happened: by the agency's time, and among receipts of
    the same moment (a reply carrying 120, 399 and 800 at once) by stage, then code (120 before 399)."""
    code = int(return_status) if return_status.isdigit() else 0
    return return_time, STAGE[agency_state(return_status)], code
