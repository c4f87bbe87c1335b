"""Tax (税务): the inventory, the goods rates and the tax the single window computed."""

from __future__ import annotations

from typing import Any

from app.adapters.base import HttpAgencyAdapter


class TaxAdapter(HttpAgencyAdapter):
    def payload(self, package: dict[str, Any]) -> dict[str, Any]:
        keep = ("dispatchId", "recordId", "agency", "callbackUrl", "inventory", "goods", "tax", "order")
        return {k: package[k] for k in keep if k in package}
