"""What the four mock agencies share: receipts, decisions, and safe readers of the JSON package."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CN_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")


@dataclass(frozen=True)
class Receipt:
    return_status: str  # CEB returnStatus: 120, 399, 500, 800, 100, or negative
    return_info: str
    invt_no: str = ""  # customs: the inventory number it assigned on acceptance (CEB622 invtNo)


@dataclass(frozen=True)
class QuotaUse:
    """The dutiable value the tax agency adds to a buyer's calendar-year total when it accepts."""

    buyer_id_number: str
    year: int
    dutiable_value: Decimal


@dataclass(frozen=True)
class AgencyDecision:
    receipts: tuple[Receipt, ...]
    held_for_inspection: bool = False  # customs: the release (800) comes later, by callback
    tax_bill: dict[str, Any] | None = None
    settlement: dict[str, Any] | None = None
    quota_use: QuotaUse | None = None


def reject(*reasons: str) -> AgencyDecision:
    return AgencyDecision((Receipt("100", "; ".join(reasons)[:1000]),))


def part(package: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = package.get(name)
    return value if isinstance(value, Mapping) else {}


def rows(container: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    value = container.get(name)
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [line for line in value if isinstance(line, Mapping)]


def text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def number(value: Any) -> Decimal | None:
    """A JSON decimal (string or number) as a finite ``Decimal``; ``None`` when it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        parsed = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return parsed if parsed.is_finite() else None


def whole(value: Any) -> int | None:
    parsed = number(value)
    return int(parsed) if parsed is not None and parsed == parsed.to_integral_value() else None


def money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def mask_id(id_number: str) -> str:
    """A buyer's ID as agencies print it: the first six and last four characters."""
    return f"{id_number[:6]}{'*' * max(len(id_number) - 10, 0)}{id_number[-4:]}" if len(id_number) > 10 else "***"


def record_id(package: Mapping[str, Any]) -> str:
    return text(package.get("recordId"))


def return_time(now: datetime) -> str:
    """CEB ``returnTime``: C17 ``YYYYMMDDhhmmssSSS``, China time."""
    local = now.astimezone(CN_TZ)
    return local.strftime("%Y%m%d%H%M%S") + f"{local.microsecond // 1000:03d}"
