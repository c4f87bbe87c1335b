"""Mock inspection (检验检疫): goods off the positive list → ``100``; declarations the single window decided to
inspect (the package's ``riskDecision``, app/rules/supervision.py) → ``500``; otherwise ``120``. The agency
draws no sample of its own: which declarations are inspected, and why, is decided and recorded upstream."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.mock_agencies.rules.common import AgencyDecision, Receipt, part, reject, rows, text


def selected_for_inspection(package: Mapping[str, Any]) -> bool:
    """The single window's decision; a package without one (declared before decisions existed) is released."""
    return text(part(package, "riskDecision").get("decision")) == "inspect"


def inspection_reasons(package: Mapping[str, Any]) -> str:
    reasons = part(package, "riskDecision").get("reasons")
    return ", ".join(text(r) for r in reasons) if isinstance(reasons, list) else ""


def _on_positive_list(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def inspection_decision(package: Mapping[str, Any]) -> AgencyDecision:
    goods = rows(package, "goods")
    if not goods:
        return reject("缺少商品备案信息 (the package lists no goods)")
    off_list = [
        text(g.get("itemNo")) or text(g.get("gcode")) for g in goods if not _on_positive_list(g.get("positiveList"))
    ]
    if off_list:
        return reject(f"商品不在跨境电商零售进口商品清单内: {', '.join(off_list)} (not on the positive list)")
    if selected_for_inspection(package):
        return AgencyDecision((Receipt("500", f"布控查验 (inspection decided: {inspection_reasons(package)})"),))
    return AgencyDecision((Receipt("120", "检验检疫通过 (accepted)"),))
