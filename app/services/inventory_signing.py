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
from typing import TYPE_CHECKING, Any

from lxml import etree

from app.adapters.base import AgencyError, PermanentAgencyError
from app.ceb import conformance, safe_xml, signature
from app.ceb.codec import render_inventory
from app.ceb.conformance import OutgoingMessageInvalid
from app.config import Settings
from app.crypto.identity import SigningIdentity, SigningNotConfigured, signing_identity
from app.errors import DomainError
from app.services.inventory_message import inventory_message_guid, inventory_transfer

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
    guid = inventory_message_guid(record_id, inventory) if record_id is not None else None
    root = safe_xml.parse(render_inventory(inventory, inventory_transfer(inventory), guid=guid))
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


async def add_signed_inventories(
    packages: dict[uuid.UUID, dict[str, Any] | AgencyError], claims: Sequence[Claim], settings: Settings
) -> None:
    """Put ``inventoryMessage`` (the signed CEB621, text) into the packages of the agencies that need it; one
    signature per record in a round, made in a worker thread (Tongsuo releases the GIL while it signs)."""
    wanted = [c for c in claims if c.agency in SIGNED_FOR and isinstance(packages.get(c.id), dict)]
    if not wanted:
        return
    inventories: dict[uuid.UUID, Mapping[str, Any]] = {}
    for claim in wanted:
        package = packages[claim.id]
        assert isinstance(package, dict)
        inventories.setdefault(claim.record_id, package["inventory"])
    try:
        identity = signing_identity(settings)
    except SigningNotConfigured as exc:
        log.error("the service cannot sign its declarations: %s", exc)
        for claim in wanted:
            packages[claim.id] = PermanentAgencyError(f"not signed: {exc}"[:1000])
        return
    signed = await asyncio.to_thread(_sign_each, inventories, identity)
    for claim in wanted:
        message = signed[claim.record_id]
        package = packages[claim.id]
        if isinstance(message, Exception):
            packages[claim.id] = PermanentAgencyError(f"the CEB621 cannot be signed: {message}"[:1000])
        elif isinstance(package, dict):
            package["inventoryMessage"] = message.decode()


def _sign_each(
    inventories: Mapping[uuid.UUID, Mapping[str, Any]], identity: SigningIdentity
) -> dict[uuid.UUID, bytes | Exception]:
    signed: dict[uuid.UUID, bytes | Exception] = {}
    for record_id, inventory in inventories.items():
        try:
            signed[record_id] = signed_inventory_message(inventory, identity, record_id)
        except (KeyError, TypeError, ValueError, OutgoingMessageInvalid) as exc:  # a malformed inventory fails alone
            log.error("record %s: the CEB621 cannot be signed: %r", record_id, exc)
            signed[record_id] = exc
    return signed
