"""Template filters: times in the console's zone, and event details in one line."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo


def local_time(moment: datetime | None, zone: ZoneInfo) -> str:
    """2026-11-23T02:15:00Z → ``2026-11-23 10:15:00`` in Asia/Shanghai (the zone is named on the search page)."""
    if moment is None:
        return ""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def compact(value: object) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return "" if value is None else str(value)
