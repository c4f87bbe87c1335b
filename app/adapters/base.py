"""The agency adapter seam (ARCHITECTURE.md §Adapters).

An adapter turns a declaration into one agency's request and reads the agency's answer. Transport is an
injected ``httpx.AsyncClient`` so tests pass ``httpx.MockTransport`` or talk to a live mock agency. Which
class serves which agency, its base URL, timeout and credentials come from settings; a new agency is a new
class named in configuration, never an edit to the core. The declaration-and-dispatch issue fills this in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class AgencyReceipt:
    """An agency's answer, with the CEB ``returnStatus`` code it carries (e.g. 120, 399, 800, or negative)."""

    agency: str
    return_status: str
    return_info: str
    received_at: datetime
    raw: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class AgencyAdapter(Protocol):
    """Delivers one declaration to one agency. ``dispatch_id`` is the agency-side idempotency key."""

    name: str

    async def submit(self, declaration: dict[str, Any], dispatch_id: str) -> AgencyReceipt: ...
