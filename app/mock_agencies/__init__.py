"""Mock agencies: customs, inspection, tax and FX as real HTTP endpoints under ``/mock/{agency}``.

They follow the agency contract the adapters speak (``POST /mock/{agency}/declarations`` with an
``Idempotency-Key``; signed callbacks later), apply real rules (``rules``), dedupe on the key, and inject
latency and faults from the ``SW_MOCK_*`` settings. Mounted in embedded mode, or run alone with
``sw mock-agencies --port P``.
"""

from app.mock_agencies.api import build_router, create_mock_agencies_app, create_mock_agencies_router
from app.mock_agencies.runtime import MockAgencies

__all__ = ["MockAgencies", "build_router", "create_mock_agencies_app", "create_mock_agencies_router"]
