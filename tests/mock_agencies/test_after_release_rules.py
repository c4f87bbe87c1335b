"""Mock customs decides a cancel or return on what it remembers of the inventory, not on what it is told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from app.mock_agencies.rules.after_release import (
    KnownInventory,
    cancel_decision,
    known_inventory,
    refund_decision,
    returned_share,
)
from app.services.inventory_signing import signed_request_message
from tests.mock_agencies.packages import package
from tests.service_keys import service_identity

RELEASED = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def _request(kind: str, **changes: Any) -> str:
    inventory = package("customs")["inventory"]
    fields = {
        **{name: inventory.get(name) for name in ("customsCode", "orderNo", "ebpCode", "ebpName", "ebcCode")},
        **{name: inventory.get(name) for name in ("ebcName", "logisticsNo", "logisticsCode", "logisticsName")},
        **{name: inventory.get(name) for name in ("buyerIdType", "buyerIdNumber", "buyerName", "buyerTelephone")},
        **{name: inventory.get(name) for name in ("agentCode", "agentName")},
        "guid": "4CDE1CFD-EDED-46B1-946C-B8022E42FC94",
        "appType": "1",
        "appTime": "20261107120000",
        "appStatus": "2",
        "invtNo": "15012026I000000001",
        "reason": "退货",
        **changes,
    }
    if kind == "return" and "invtRefundList" not in fields:
        fields["invtRefundList"] = [{"gnum": 1, "gcode": "3304990099", "gname": "精华液", "qty": "1", "unit": "142"}]
    identity = service_identity().identity
    return signed_request_message(kind, fields, identity).decode()  # type: ignore[arg-type]


def _known(**changes: Any) -> KnownInventory:
    known = known_inventory(package("customs"))
    known.released_at = RELEASED
    for name, value in changes.items():
        setattr(known, name, value)
    return known


def _statuses(decision: Any) -> list[str]:
    return [receipt.return_status for receipt in decision.receipts]


def test_a_return_within_30_days_of_customs_own_release_is_approved() -> None:
    certificate = service_identity().identity.certificate
    message = _request("return")
    assert _statuses(refund_decision(message, _known(), certificate, RELEASED + timedelta(days=30))) == ["120", "399"]
    late = refund_decision(message, _known(), certificate, RELEASED + timedelta(days=31))
    assert _statuses(late) == ["100"]
    assert "-625003" in late.receipts[0].return_info
    unreleased = refund_decision(message, _known(released_at=None), certificate, RELEASED)
    assert "-625001" in unreleased.receipts[0].return_info


def test_what_mock_customs_refuses_of_a_return_or_cancel() -> None:
    certificate = service_identity().identity.certificate
    now = RELEASED + timedelta(days=1)
    more = _request(
        "return", invtRefundList=[{"gnum": 1, "gcode": "3304990099", "gname": "x", "qty": "2", "unit": "142"}]
    )
    assert "-625010" in refund_decision(more, _known(), certificate, now).receipts[0].return_info
    other_line = _request(
        "return", invtRefundList=[{"gnum": 7, "gcode": "3304990099", "gname": "x", "qty": "1", "unit": "142"}]
    )
    assert "-625209" in refund_decision(other_line, _known(), certificate, now).receipts[0].return_info
    assert "-623001" in cancel_decision(_request("cancel"), None, certificate).receipts[0].return_info
    other_buyer = _request("cancel", buyerIdNumber="11010519491231002X")
    assert "buyerIdNumber" in cancel_decision(other_buyer, _known(), certificate).receipts[0].return_info
    cancelled = cancel_decision(_request("cancel"), _known(state="cancelled"), certificate)
    assert "已撤销" in cancelled.receipts[0].return_info
    assert _statuses(cancel_decision(_request("cancel"), _known(), certificate)) == ["120", "399"]
    assert known_inventory(package("customs")).lines == {1: Decimal("1")}


def test_the_share_a_decided_request_gives_back() -> None:
    known = _known()
    known.lines, known.values = {1: Decimal("2"), 2: Decimal("1")}, {1: Decimal("300"), 2: Decimal("100")}
    known.state, known.returned = "returned", {1: Decimal("1")}
    assert returned_share(known) == Decimal("0.375")  # 150 of 400
    known.state = "cancelled"
    assert returned_share(known) == Decimal(1)
