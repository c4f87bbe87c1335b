"""Wire models of risk warnings (the officials' queue) and an enterprise's risk view."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.rules.credit import CreditLevel
from app.schemas.ceb_types import XmlText

WarningStatus = Literal["open", "acknowledged", "dismissed", "escalated"]
WarningAction = Literal["acknowledge", "dismiss", "escalate"]
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), XmlText]


class WarningOut(BaseModel):
    id: int
    recordId: uuid.UUID | None = Field(description="The declaration's record (R1–R7); null for R8")
    rule: str = Field(description="R1 … R8 (docs/risk.md)")
    ebpCode: str | None = Field(description="The platform; for R8, set only when the enterprise is one")
    ebcCode: str | None = Field(description="The seller; for R8, set only when the enterprise is one")
    logisticsCode: str | None = Field(description="The carrier (R1–R7)")
    detail: dict[str, Any] = Field(description="zh, en, value (what was counted), threshold")
    status: WarningStatus
    note: str | None
    handledBy: str | None
    createdAt: datetime
    updatedAt: datetime


class WarningPage(BaseModel):
    items: list[WarningOut]
    nextCursor: str | None = Field(description="Pass as `cursor` to get the next page; null at the end")


class WarningHandling(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"note": "同一地址五个订购人: 已转缉私部门核查"}]}
    )

    note: Note


class EnterpriseRisk(BaseModel):
    enterpriseCode: str
    creditLevel: CreditLevel = Field(description="The customs level: the local score never overrides it")
    localScore: int = Field(ge=0, le=100, description="0–100 from the enterprise's own record against its peers")
    watchList: bool = Field(description="The local score is under the watch threshold (60), or R8 fires")
    records: int = Field(description="Purchase records naming it (as seller, or as platform)")
    mismatchRate: float
    rejectionRate: float
    peerMismatchMedian: float
    peerRejectionMedian: float
    recentRejectionRate: float = Field(description="The last 7 days")
    peerRecentRejectionMedian: float = Field(description="The peers' median over the last 7 days")
    r8RejectionOutlier: bool = Field(
        description="R8: the last 7 days' rejection rate is over SW_RISK_R8_FACTOR (2) × the peers' median, "
        "with at least SW_RISK_R8_MIN_RECORDS (20) records"
    )
    openWarnings: dict[str, int] = Field(description="Open warnings by rule")
    recentWarnings: list[WarningOut] = Field(description="The 20 newest warnings naming the enterprise")
