"""Who outside the service sees a feed event, as what, and under which subscription event type (pure).

An enterprise sees the events of the records it is party to, the way it sees the records themselves
(app/services/records.py): the purchase's platform and seller see it whole; a payment firm or carrier whose
document is linked sees the record's status and receipts, not the declaration's refusal or a dead letter,
the buyer's ID number masked and free texts (which may name the buyer) left out. A document receipt is
seen by the document's owner and sender, and by the platform and seller of its record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

# The event types a subscription chooses from, each a kind of feed event (an agency receipt from customs —
# the inventory's CEB622 — is its own type).
EVENT_TYPES = (
    "document_receipt",
    "status_changed",
    "agency_receipt",
    "inventory_receipt",
    "declaration_rejected",
    "dead_letter",
)
EventType = Literal[
    "document_receipt",
    "status_changed",
    "agency_receipt",
    "inventory_receipt",
    "declaration_rejected",
    "dead_letter",
]
View = Literal["whole", "party"]

_PURCHASE_ONLY = ("declaration_rejected", "dispatch_dead")
# What a party that does not own the purchase keeps of an event's detail: codes and states, no free text.
_PARTY_DETAIL = frozenset(
    {
        "from", "to", "event", "agency", "returnStatus", "cebReturnStatus", "code", "source", "documentType",
        "key", "guid", "sender", "seq", "httpStatus", "replayed", "recordStatus", "invtNo",
    }
)  # fmt: skip


@dataclass(frozen=True)
class RecordParties:
    ebp_code: str
    ebc_code: str | None
    linked: frozenset[str]  # owners and senders of the record's documents


@dataclass(frozen=True)
class DocumentParties:
    owner_code: str
    sender_code: str | None


def event_type(kind: str, detail: Mapping[str, Any]) -> EventType | None:
    """The subscription event type of a feed event of ``kind``.

    >>> event_type("agency_receipt", {"agency": "customs"}), event_type("agency_receipt", {"agency": "tax"})
    ('inventory_receipt', 'agency_receipt')
    """
    if kind == "agency_receipt":
        return "inventory_receipt" if detail.get("agency") == "customs" else "agency_receipt"
    if kind == "dispatch_dead":
        return "dead_letter"
    if kind in ("document_receipt", "status_changed", "declaration_rejected"):
        return kind  # type: ignore[return-value]
    return None


def view_of(code: str, kind: str, record: RecordParties | None, document: DocumentParties | None) -> View | None:
    """How enterprise ``code`` sees an event of ``kind`` about ``record`` and ``document``; None: not at all."""
    whole = record is not None and code in (record.ebp_code, record.ebc_code)
    if document is not None:
        if whole:
            return "whole"
        return "party" if code in (document.owner_code, document.sender_code) else None
    if record is None:
        return None
    if kind in _PURCHASE_ONLY:
        return "whole" if whole else None
    if whole:
        return "whole"
    return "party" if code in record.linked else None


def refused_document_parties(detail: Mapping[str, Any]) -> DocumentParties | None:
    """The parties of a document receipt whose document was refused before it was stored (no document row):
    the key's enterprise and the sender, as the receipt names them.

    >>> refused_document_parties({"key": {"ebpCode": "PLATFORM01", "orderNo": "1"}, "sender": "AGENT00001"})
    DocumentParties(owner_code='PLATFORM01', sender_code='AGENT00001')
    """
    key = detail.get("key")
    owner = next(iter(key.values()), None) if isinstance(key, Mapping) and key else None
    sender = detail.get("sender")
    if not isinstance(owner, str):
        return None
    return DocumentParties(owner, sender if isinstance(sender, str) else None)


def detail_for(view: View, detail: Mapping[str, Any]) -> dict[str, Any]:
    """The event's detail as ``view`` shows it.

    >>> detail_for("party", {"agency": "tax", "returnStatus": "100", "returnInfo": "buyer Zhang San over quota"})
    {'agency': 'tax', 'returnStatus': '100'}
    """
    if view == "whole":
        return dict(detail)
    return {k: v for k, v in detail.items() if k in _PARTY_DETAIL}
