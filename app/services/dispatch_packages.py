"""What the agencies are sent about each claimed dispatch: the declaration package (each adapter keeps its
part). A round's packages are read in three queries, whatever their number; a declaration that cannot be
made into a package fails alone (``PermanentAgencyError`` for its dispatch), not the round.

Conformance by construction: the declaration's inventory is rendered as its CEB621 and checked against
CEB621.xsd before anything is sent (``app/ceb/conformance.py``). An inventory that breaks the schema is our
bug: its dispatches are not sent and go dead with the reason (``OUTGOING_MESSAGE_INVALID: …``), visible in
the dead list and re-pushable once the cause is fixed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.adapters.base import AgencyError, PermanentAgencyError
from app.config import Settings
from app.models import Declaration, Document, Goods
from app.services.inventory_signing import add_inventory_messages

if TYPE_CHECKING:
    from app.services.dispatch import Claim

log = logging.getLogger(__name__)
GOODS_COLUMNS = (
    Goods.ebc_code,
    Goods.item_no,
    Goods.gcode,
    Goods.gname,
    Goods.positive_list,
    Goods.vat_rate,
    Goods.consumption_tax_rate,
)


async def build_package(session: AsyncSession, claim: Claim, settings: Settings) -> dict[str, Any]:
    """Everything an agency may need about one declaration."""
    package = (await build_packages(session, [claim], settings))[claim.id]
    if isinstance(package, AgencyError):
        raise package
    return package


async def build_packages(
    session: AsyncSession, claims: Sequence[Claim], settings: Settings
) -> dict[uuid.UUID, dict[str, Any] | AgencyError]:
    """The packages of a round of claims (the four agencies of a record share its declaration, documents
    and goods)."""
    # Plain rows, not ORM entities: the packages only read them, and a round reads hundreds.
    record_ids = sorted({c.record_id for c in claims})
    declarations = {
        d.record_id: d
        for d in await session.execute(
            select(Declaration.record_id, Declaration.inventory, Declaration.tax, Declaration.risk).where(
                Declaration.record_id.in_(record_ids)
            )
        )
    }
    docs: dict[uuid.UUID, dict[str, Any]] = {}
    for record_id, doc_type, payload in await session.execute(
        select(Document.record_id, Document.doc_type, Document.payload).where(
            Document.record_id.in_(record_ids), Document.state == "active"
        )
    ):
        docs.setdefault(record_id, {})[doc_type] = payload
    wanted = sorted({key for record_docs in docs.values() for key in _goods_keys(record_docs.get("order"))})
    goods: dict[str, list[Any]] = {}
    if wanted:
        for g in await session.execute(select(*GOODS_COLUMNS).where(tuple_(Goods.ebc_code, Goods.item_no).in_(wanted))):
            goods.setdefault(g.ebc_code, []).append(g)
    base = (settings.public_base_url or "http://embedded").rstrip("/")
    packages: dict[uuid.UUID, dict[str, Any] | AgencyError] = {}
    for claim in claims:
        declaration = declarations.get(claim.record_id)
        if declaration is None:
            packages[claim.id] = PermanentAgencyError(f"record {claim.record_id} has no declaration")
            continue
        try:
            packages[claim.id] = _package(claim, declaration, docs.get(claim.record_id, {}), goods, base)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            log.error("dispatch %s: the package of record %s cannot be built: %r", claim.id, claim.record_id, exc)
            error = f"package cannot be built: {type(exc).__name__}: {exc}"[:1000]
            packages[claim.id] = PermanentAgencyError(error)
            continue
    await add_inventory_messages(packages, claims, settings)
    return packages


def _goods_keys(order: Any) -> set[tuple[str, str]]:
    """(ebcCode, itemNo) of the order's lines — the inventory lines' goods, by ``gnum`` (an inventory line
    leaves out an itemNo over 20 characters); none for a malformed order (its package fails later)."""
    try:
        return {(order["ebcCode"], line["itemNo"]) for line in order["orderList"] if line.get("itemNo")}
    except (KeyError, TypeError, AttributeError):
        return set()


def _package(
    claim: Claim,
    declaration: Row[Any],
    record_docs: dict[str, Any],
    goods: dict[str, list[Any]],
    base: str,
) -> dict[str, Any]:
    inventory = declaration.inventory
    ebc_code = inventory["ebcCode"]
    order = record_docs.get("order") or {}
    items = {line.get("itemNo") for line in order.get("orderList", [])}
    return {
        "dispatchId": str(claim.id),
        "recordId": str(claim.record_id),
        "agency": claim.agency,
        "callbackUrl": f"{base}/api/v1/agency-callbacks/{claim.agency}",
        "inventory": inventory,
        "tax": declaration.tax,
        "order": record_docs.get("order"),
        "payment": record_docs.get("payment"),
        "waybill": record_docs.get("waybill"),
        "goods": [
            {
                "itemNo": g.item_no,
                "gcode": g.gcode,
                "gname": g.gname,
                "positiveList": g.positive_list,
                "vatRate": str(g.vat_rate),
                "consumptionTaxRate": str(g.consumption_tax_rate),
            }
            for g in goods.get(ebc_code, [])
            if g.item_no in items
        ],
        "seller": {"code": ebc_code, "creditLevel": (declaration.risk or {}).get("levels", {}).get("seller")},
        # The service decides which declarations are inspected (app/rules/supervision.py); agencies obey it.
        "riskDecision": _risk_decision(declaration.risk),
    }


def _risk_decision(risk: dict[str, Any] | None) -> dict[str, Any]:
    """What the agencies are told: inspect or release, and the reasons' codes (not the draw or the rates)."""
    if risk is None:  # declared before the decision existed
        return {"decision": "release", "reasons": []}
    return {"decision": risk["decision"], "reasons": [r["code"] for r in risk.get("reasons", [])]}
