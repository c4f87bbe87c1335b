"""The one function that changes a record's status: it asks ``transition`` and writes ``status_changed``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.db import utcnow
from app.lifecycle.status import Effect, RecordEvent, RecordStatus, transition
from app.models import MatchRecord
from app.services.rows import RecordRow

SETTLED = (RecordStatus.CLEARED, RecordStatus.REJECTED)

# Writes one record event: (kind, record, detail). The matcher's workspace batches them; other callers add
# them to their session. Both land in the feed in the same transaction as the change.
EmitEvent = Callable[[str, Any, dict[str, Any]], None]


def apply_event(
    record: MatchRecord | RecordRow, event: RecordEvent, emit: EmitEvent, **detail: Any
) -> tuple[Effect, ...]:
    """Move ``record`` by ``event``; a status change is written to the feed as ``status_changed``, with the
    event that caused it. Returns the effects the caller must carry out."""
    outcome = transition(record.status, event)
    if outcome.status != record.status:
        emit(
            "status_changed",
            record,
            {"from": record.status, "to": outcome.status.value, "event": event.value, **detail},
        )
        now = utcnow()
        if outcome.status == RecordStatus.MATCHED:
            record.matched_at = now
        if outcome.status in SETTLED:
            record.settled_at = now
        record.status = outcome.status.value
        record.updated_at = now
    return outcome.effects
