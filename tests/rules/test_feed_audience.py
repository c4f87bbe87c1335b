"""Who sees a feed event and how: the tenancy of the enterprise feed and of webhook deliveries."""

from __future__ import annotations

from app.rules.feed_audience import (
    DocumentParties,
    RecordParties,
    detail_for,
    event_type,
    refused_document_parties,
    view_of,
)

RECORD = RecordParties("PLATFORM01", "SELLER0001", frozenset({"PAYFIRM001", "CARRIER001"}))
WAYBILL = DocumentParties("CARRIER001", "CARRIER001")


def test_the_purchase_owners_see_everything_whole() -> None:
    for kind in ("status_changed", "agency_receipt", "declaration_rejected", "dispatch_dead"):
        assert view_of("PLATFORM01", kind, RECORD, None) == "whole"
        assert view_of("SELLER0001", kind, RECORD, None) == "whole"
    assert view_of("PLATFORM01", "document_receipt", RECORD, WAYBILL) == "whole"


def test_a_linked_party_sees_status_and_receipts_but_not_refusals() -> None:
    assert view_of("PAYFIRM001", "status_changed", RECORD, None) == "party"
    assert view_of("PAYFIRM001", "declaration_rejected", RECORD, None) is None
    assert view_of("PAYFIRM001", "dispatch_dead", RECORD, None) is None
    # another party's document receipt is not its business
    assert view_of("PAYFIRM001", "document_receipt", RECORD, WAYBILL) is None
    assert view_of("CARRIER001", "document_receipt", RECORD, WAYBILL) == "party"


def test_a_stranger_sees_nothing_and_an_unlinked_document_only_its_own() -> None:
    assert view_of("STRANGER01", "status_changed", RECORD, None) is None
    assert view_of("CARRIER001", "document_receipt", None, WAYBILL) == "party"
    assert view_of("PLATFORM01", "document_receipt", None, WAYBILL) is None


def test_a_party_gets_codes_not_free_text() -> None:
    detail = {"agency": "tax", "returnStatus": "100", "returnInfo": "张三 over the annual quota", "buyerIdNumber": "x"}
    assert detail_for("party", detail) == {"agency": "tax", "returnStatus": "100"}
    assert detail_for("whole", detail) == detail


def test_a_party_keeps_the_inventory_number_customs_gave() -> None:
    detail = {"agency": "customs", "returnStatus": "120", "invtNo": "22442026I402423336", "returnInfo": "海关入库"}
    assert detail_for("party", detail) == {"agency": "customs", "returnStatus": "120", "invtNo": "22442026I402423336"}


def test_event_types() -> None:
    assert event_type("agency_receipt", {"agency": "customs"}) == "inventory_receipt"
    assert event_type("agency_receipt", {"agency": "fx"}) == "agency_receipt"
    assert event_type("dispatch_dead", {}) == "dead_letter"
    assert event_type("status_changed", {}) == "status_changed"
    assert event_type("document_receipt", {}) == "document_receipt"
    assert event_type("declaration_rejected", {}) == "declaration_rejected"
    assert event_type("document_linked", {}) is None


def test_a_refused_document_belongs_to_the_key_enterprise_and_its_sender() -> None:
    key = {"ebpCode": "PLATFORM01", "orderNo": "A-1"}
    assert refused_document_parties({"key": key, "sender": "AGENT00001"}) == DocumentParties("PLATFORM01", "AGENT00001")
    assert refused_document_parties({"key": key}) == DocumentParties("PLATFORM01", None)
    assert refused_document_parties({"key": key, "sender": 7}) == DocumentParties("PLATFORM01", None)


def test_a_refused_document_without_a_usable_key_has_no_parties() -> None:
    for detail in ({}, {"key": None}, {"key": {}}, {"key": "PLATFORM01"}, {"key": {"ebpCode": 1}}):
        assert refused_document_parties({**detail, "sender": "AGENT00001"}) is None
