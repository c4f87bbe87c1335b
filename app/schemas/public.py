"""Wire models of the public endpoints: credit disclosure, complaints, a buyer's own quota check."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.schemas.ceb_types import XmlText
from app.schemas.credit import IsoDate

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), XmlText]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), XmlText]
ComplaintKind = Literal["stolen_identity", "goods", "enterprise", "other"]
ComplaintStatus = Literal["received", "investigating", "upheld", "rejected"]


class MonthOperations(BaseModel):
    month: str = Field(examples=["2026-11"])
    orders: int | None = Field(description="Null when fewer buyers than the disclosure minimum (5)")
    value: Decimal | None = Field(description="Dutiable value in CNY, rounded to 1,000; null as above")


class PublicEnterprise(BaseModel):
    """The six categories of the Ningbo CBEC credit platform; no personal data."""

    entity: dict[str, Any] = Field(description="主体信息: code, name, roles, status, filed")
    operations: list[MonthOperations] = Field(description="经营信息: by month, the last 12")
    supervision: dict[str, Any] = Field(description="监管信息: the customs credit level and since when")
    services: dict[str, Any] = Field(description="服务信息: goods records filed")
    rewardsAndPenalties: list[dict[str, Any]] = Field(description="奖惩信息: credit decisions with basis and date")
    complaints: dict[str, int] = Field(description="投诉举报信息: complaints by status")


class ComplaintIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "stolen_identity",
                    "name": "王小明",
                    "idNumber": "33010619900101123X",
                    "telephone": "13800138000",
                    "what": "本人未购买, 额度查询发现 2026-11 有三笔申报",
                    "orderNos": ["GW20261123000101"],
                    "happenedOn": "2026-11-23",
                    "platformCode": "3120960A01",
                }
            ]
        },
    )

    kind: ComplaintKind
    what: Text = Field(description="What happened")
    enterpriseCode: Annotated[str, StringConstraints(max_length=18), XmlText] | None = None
    name: Short | None = None
    idNumber: Annotated[str, StringConstraints(strip_whitespace=True, max_length=18), XmlText] | None = None
    telephone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=30), XmlText] | None = None
    orderNos: list[Short] = Field(default_factory=list, max_length=50)
    logisticsNos: list[Short] = Field(default_factory=list, max_length=50)
    inventoryNos: list[Short] = Field(default_factory=list, max_length=50)
    happenedOn: IsoDate | None = None
    portCode: Annotated[str, StringConstraints(max_length=4), XmlText] | None = None
    platformCode: Annotated[str, StringConstraints(max_length=18), XmlText] | None = None


class ComplaintFiled(BaseModel):
    id: int
    status: ComplaintStatus
    createdAt: datetime


class ComplaintOut(ComplaintFiled):
    kind: ComplaintKind
    enterpriseCode: str | None
    report: dict[str, Any]
    recordIds: list[uuid.UUID]
    note: str | None
    handledBy: str | None
    updatedAt: datetime


class ComplaintPage(BaseModel):
    items: list[ComplaintOut]
    nextCursor: str | None


class ComplaintTriage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["investigating", "upheld", "rejected"]
    enterpriseCode: Annotated[str, StringConstraints(max_length=18), XmlText] | None = Field(
        default=None, description="The enterprise it is about (an upheld complaint counts against its local score)"
    )
    recordIds: list[uuid.UUID] = Field(default_factory=list, max_length=100)
    note: Text


class QuotaCheckIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"idNumber": "33010619900101123X", "name": "王小明", "telephone": "13800138000"}]
        },
    )

    idNumber: Annotated[str, StringConstraints(strip_whitespace=True, min_length=15, max_length=18), XmlText]
    name: Short
    telephone: Annotated[str, StringConstraints(strip_whitespace=True, min_length=5, max_length=30), XmlText]
    year: int | None = Field(default=None, ge=2016, le=2100, description="China calendar year; default this year")


class QuotaDeclaration(BaseModel):
    date: str = Field(description="Declared on (China date)")
    platform: str = Field(description="The platform's filed name")
    orderNo: str = Field(description="Masked: the first 4 and last 4 characters")
    value: Decimal = Field(description="Dutiable value counted against the quota")


class QuotaCheckOut(BaseModel):
    year: int
    idNumber: str = Field(description="Masked")
    annualLimit: Decimal
    used: Decimal
    remaining: Decimal
    declarations: list[QuotaDeclaration]
