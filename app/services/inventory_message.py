"""The CEB621 message of a stored declaration, unsigned: what the conformance check of a dispatch renders, and
what ``inventory_signing`` signs for customs and for the ``Accept: application/xml`` rendering.

``BaseTransfer`` names the declaring agent (``agentCode`` / ``agentName``; the single window keeps no DXP id,
so ``dxpId`` is that code). The message guid is derived from the record and the inventory's own guid, so each
rendering of one declaration is the same message.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from lxml import etree

from app.ceb.codec import inventory_element, render_inventory

_INVENTORY_NAMESPACE = uuid.UUID("0b6f5c1e-8a3d-4f7e-9c2b-1d4e6a8f0c35")


def inventory_message_guid(record_id: uuid.UUID, inventory: Mapping[str, Any]) -> str:
    return str(uuid.uuid5(_INVENTORY_NAMESPACE, f"{record_id}:{inventory.get('guid')}")).upper()


def inventory_transfer(inventory: Mapping[str, Any]) -> dict[str, str]:
    """``BaseTransfer`` of a CEB621: the declarant (agentCode) transmits it."""
    return {
        "copCode": str(inventory["agentCode"]),
        "copName": str(inventory["agentName"]),
        "dxpMode": "DXP",
        "dxpId": str(inventory["agentCode"]),
    }


def inventory_tree(record_id: uuid.UUID | None, inventory: Mapping[str, Any]) -> etree._Element:
    """The CEB621 tree, unchecked, with the declaration's own guid (a fresh one without ``record_id``)."""
    guid = inventory_message_guid(record_id, inventory) if record_id is not None else None
    return inventory_element(inventory, inventory_transfer(inventory), guid=guid)


def inventory_message(record_id: uuid.UUID, inventory: Mapping[str, Any]) -> bytes:
    """The unsigned CEB621, checked against CEB621.xsd with only its signature requirement set aside
    (``OutgoingMessageInvalid`` if it breaks it); the signed one is ``inventory_signing``'s."""
    return render_inventory(inventory, inventory_transfer(inventory), guid=inventory_message_guid(record_id, inventory))
