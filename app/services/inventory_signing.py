"""The service signs what it declares: each inventory (清单) goes to customs as a CEB621 message with an
enveloped ``ds:Signature`` made with the service's key (``app/crypto/identity.py``), as the official schema
requires (``ds:Signature`` 1..1 in CEB621; appStatus 2 must be signed). Customs verifies it against the service's
certificate and compares the signed inventory with the declaration it was sent (-621029 / -621028).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lxml import etree

from app.adapters.base import AgencyError, PermanentAgencyError
from app.ceb import conformance, signature
from app.ceb.after_release import RequestKind, request_element
from app.ceb.conformance import OutgoingMessageInvalid
from app.config import Settings
from app.crypto.identity import SigningIdentity, SigningNotConfigured, signing_identity
from app.errors import DomainError
from app.services.inventory_message import inventory_transfer, inventory_tree

if TYPE_CHECKING:
    from app.services.dispatch import Claim

log = logging.getLogger(__name__)
SIGNED_FOR = frozenset({"customs"})  # the agencies that are sent the signed CEB621
_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def signed_inventory_message(
    inventory: Mapping[str, Any], identity: SigningIdentity, record_id: uuid.UUID | None = None
) -> bytes:
    """The inventory as a one-record CEB621 message, signed (UTF-8, with its XML declaration) and checked
    against CEB621.xsd as it stands, signature included. With ``record_id`` the message guid is the
    declaration's own (``inventory_message_guid``: the same on every rendering; the signature value, SM2 being
    randomised, is not)."""
    root = inventory_tree(record_id, inventory)
    signature.sign(root, identity.key, identity.certificate)
    conformance.check(root)
    return _DECLARATION + bytes(etree.tostring(root, encoding="UTF-8"))


def signed_request_message(
    kind: RequestKind, fields: Mapping[str, Any], identity: SigningIdentity, guid: str | None = None
) -> bytes:
    """A cancel (CEB623) or return (CEB625) as customs is sent it: transmitted by the declarant (agentCode,
    as for its CEB621), signed with the service's key like the CEB621 and checked against its XSD, signature
    included (``OutgoingMessageInvalid`` otherwise: never sent)."""
    root = request_element(kind, fields, inventory_transfer(fields), guid=guid)
    signature.sign(root, identity.key, identity.certificate)
    conformance.check(root)
    return _DECLARATION + bytes(etree.tostring(root, encoding="UTF-8"))


def rendered_inventory_message(record_id: uuid.UUID, inventory: Mapping[str, Any], settings: Settings) -> bytes:
    """The signed CEB621 a reader asks for (``GET …/declaration`` as XML); 503 while no key is configured."""
    try:
        identity = signing_identity(settings)
    except SigningNotConfigured as exc:
        raise DomainError(str(exc), code="SIGNING_NOT_CONFIGURED", status=503) from exc
    return signed_inventory_message(inventory, identity, record_id)


async def add_inventory_messages(
    packages: dict[uuid.UUID, dict[str, Any] | AgencyError], claims: Sequence[Claim], settings: Settings
) -> None:
    """Check each record's CEB621 against CEB621.xsd before any agency is sent it, and put ``inventoryMessage``
    (the signed CEB621, text) into the packages of the agencies that need it.

    One rendering and one schema check per record in a round: a record with a claim for a signed-for agency is
    rendered, signed and checked once signed (that check covers its other agencies too); any other record is
    checked unsigned. A record whose CEB621 breaks the schema or cannot be rendered fails all its claims alike;
    one that cannot be signed fails only the claims that needed the signature. The work runs in a worker thread
    (lxml and Tongsuo release the GIL), off the event loop."""
    inventories: dict[uuid.UUID, Mapping[str, Any]] = {}
    signed_for: set[uuid.UUID] = set()
    for claim in claims:
        package = packages.get(claim.id)
        if isinstance(package, dict):
            inventories.setdefault(claim.record_id, package["inventory"])
            if claim.agency in SIGNED_FOR:
                signed_for.add(claim.record_id)
    if not inventories:
        return
    identity: SigningIdentity | None = None
    unsigned = PermanentAgencyError("not signed: no signing identity")
    if signed_for:
        try:
            identity = signing_identity(settings)
        except SigningNotConfigured as exc:
            log.error("the service cannot sign its declarations: %s", exc)
            unsigned = PermanentAgencyError(f"not signed: {exc}"[:1000])
            signed_for = set()
    outcomes = await asyncio.to_thread(_prepare_each, inventories, signed_for, identity)
    for claim in claims:
        package = packages.get(claim.id)
        if not isinstance(package, dict):
            continue
        outcome = outcomes[claim.record_id]
        if isinstance(outcome, _Unsendable):
            packages[claim.id] = outcome.refusal
        elif claim.agency in SIGNED_FOR:
            if isinstance(outcome, bytes):
                package["inventoryMessage"] = outcome.decode()
            else:  # not signed: it could not be, or there is no identity to sign with
                packages[claim.id] = outcome.refusal if isinstance(outcome, _Unsigned) else unsigned


@dataclass(frozen=True)
class _Unsendable:
    """The record's CEB621 breaks its schema or cannot be rendered: no agency may be sent it."""

    refusal: PermanentAgencyError


@dataclass(frozen=True)
class _Unsigned:
    """The record's CEB621 conforms but could not be signed: only the signed-for agencies are refused."""

    refusal: PermanentAgencyError


def _prepare_each(
    inventories: Mapping[uuid.UUID, Mapping[str, Any]], signed_for: set[uuid.UUID], identity: SigningIdentity | None
) -> dict[uuid.UUID, bytes | _Unsendable | _Unsigned | None]:
    """Per record: its signed CEB621 (bytes), None when checked unsigned and fine, or why it may not be sent."""
    outcomes: dict[uuid.UUID, bytes | _Unsendable | _Unsigned | None] = {}
    for record_id, inventory in inventories.items():
        try:
            root = inventory_tree(record_id, inventory)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            error = f"CEB621 cannot be rendered: {type(exc).__name__}: {exc}"[:1000]
            outcomes[record_id] = _Unsendable(PermanentAgencyError(error))
            continue
        try:
            if record_id in signed_for and identity is not None:
                try:
                    signature.sign(root, identity.key, identity.certificate)
                except (KeyError, TypeError, ValueError) as exc:  # a malformed inventory fails alone
                    log.error("record %s: the CEB621 cannot be signed: %r", record_id, exc)
                    outcomes[record_id] = _Unsigned(PermanentAgencyError(f"the CEB621 cannot be signed: {exc}"[:1000]))
                    conformance.check(inventory_tree(record_id, inventory), signature_optional=True)
                    continue
                conformance.check(root)
                outcomes[record_id] = _DECLARATION + bytes(etree.tostring(root, encoding="UTF-8"))
            else:
                conformance.check(root, signature_optional=True)
                outcomes[record_id] = None
        except OutgoingMessageInvalid as exc:
            log.error("record %s: %s", record_id, exc.detail)
            outcomes[record_id] = _Unsendable(PermanentAgencyError(f"{exc.code}: {exc.detail}"[:1000]))
    return outcomes
