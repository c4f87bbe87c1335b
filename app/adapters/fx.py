"""Foreign exchange (外汇): the payment and the order amounts it settles."""

from __future__ import annotations

from typing import Any

from app.adapters.base import HttpAgencyAdapter


class FxAdapter(HttpAgencyAdapter):
    def payload(self, package: dict[str, Any]) -> dict[str, Any]:
        keep = ("dispatchId", "recordId", "agency", "callbackUrl", "order", "payment")
        return {k: package[k] for k in keep if k in package}
