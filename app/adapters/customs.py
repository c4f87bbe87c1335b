"""Customs (海关): the inventory, the signed CEB621 of it (``inventoryMessage``), and the documents it was
composed from."""

from __future__ import annotations

from typing import Any

from app.adapters.base import HttpAgencyAdapter


class CustomsAdapter(HttpAgencyAdapter):
    def payload(self, package: dict[str, Any]) -> dict[str, Any]:
        keep = (
            "dispatchId",
            "recordId",
            "agency",
            "callbackUrl",
            "inventory",
            "inventoryMessage",
            "order",
            "payment",
            "waybill",
            "tax",
            "riskDecision",  # customs holds the goods for inspection when the single window decided so
        )
        return {k: package[k] for k in keep if k in package}
