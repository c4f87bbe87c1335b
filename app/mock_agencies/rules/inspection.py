"""Mock inspection (检验检疫): goods off the positive list → ``100``; sampled for a check by the seller's credit
grade → ``500``; otherwise ``120``. The sampling is a hash of (seed, recordId), so customs takes the same
decision for the same record, and a given seed always inspects the same records."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.mock_agencies.rules.common import AgencyDecision, Receipt, credit_grade, record_id, reject, rows, text


@dataclass(frozen=True)
class InspectionRates:
    """Share of declarations inspected, by the seller's credit grade (高级认证 / 一般信用 / 失信)."""

    advanced: float = 0.01
    general: float = 0.05
    low: float = 0.5

    def for_grade(self, grade: str) -> float:
        return {"advanced": self.advanced, "low": self.low}.get(grade, self.general)


def sampling_draw(seed: int, record: str) -> float:
    """A number in [0, 1) fixed by (seed, recordId): the same record is always drawn the same way."""
    digest = hashlib.sha256(f"{seed}:{record}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def selected_for_inspection(package: Mapping[str, Any], seed: int, rates: InspectionRates) -> bool:
    return sampling_draw(seed, record_id(package)) < rates.for_grade(credit_grade(package))


def _on_positive_list(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def inspection_decision(package: Mapping[str, Any], seed: int, rates: InspectionRates) -> AgencyDecision:
    goods = rows(package, "goods")
    if not goods:
        return reject("缺少商品备案信息 (the package lists no goods)")
    off_list = [
        text(g.get("itemNo")) or text(g.get("gcode")) for g in goods if not _on_positive_list(g.get("positiveList"))
    ]
    if off_list:
        return reject(f"商品不在跨境电商零售进口商品清单内: {', '.join(off_list)} (not on the positive list)")
    if selected_for_inspection(package, seed, rates):
        return AgencyDecision(
            (Receipt("500", f"布控查验 (sampled for inspection, credit grade {credit_grade(package)})"),)
        )
    return AgencyDecision((Receipt("120", "检验检疫通过 (accepted)"),))
