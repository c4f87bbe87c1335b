"""Inspection and quarantine (检验检疫): the goods, their positive-list flags, the seller's credit level and the
single window's decision (inspect or release, with the reasons' codes)."""

from __future__ import annotations

from typing import Any

from app.adapters.base import HttpAgencyAdapter


class InspectionAdapter(HttpAgencyAdapter):
    def payload(self, package: dict[str, Any]) -> dict[str, Any]:
        keep = ("dispatchId", "recordId", "agency", "callbackUrl", "inventory", "goods", "seller", "riskDecision")
        return {k: package[k] for k in keep if k in package}
