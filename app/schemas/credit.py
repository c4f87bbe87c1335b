"""Wire models of customs credit levels and supervision profiles."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from app.rules.credit import CreditLevel
from app.schemas.ceb_types import XmlText


def _iso_text(value: object) -> object:
    """A date is written YYYY-MM-DD: a number (read by pydantic as a Unix time) is refused."""
    if not isinstance(value, str | date):
        raise ValueError("a date is a string YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_text), Field(description="YYYY-MM-DD")]
Basis = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), XmlText]


class CreditSet(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "level": "certified",
                    "basis": "海关认证企业标准(高级/一般)审核通过, 认证证书 AEOCN3120960A02",
                    "effectiveDate": "2026-11-01",
                }
            ]
        },
    )

    level: CreditLevel = Field(
        description="advanced_certified 高级认证企业 · certified 认证企业 · regular 常规企业 · dishonest 失信企业 · "
        "seriously_dishonest 严重失信企业 (GACC Order No. 282)"
    )
    basis: Basis = Field(description="What the level rests on: the decision, its document number")
    effectiveDate: IsoDate


class CreditAssessmentOut(BaseModel):
    level: CreditLevel
    previousLevel: CreditLevel
    basis: str
    effectiveDate: date
    setBy: str
    createdAt: datetime


class CreditOut(BaseModel):
    enterpriseCode: str
    level: CreditLevel
    levelZh: str
    history: list[CreditAssessmentOut] = Field(description="Newest first")


class ProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: CreditLevel
    inspectionRate: Decimal = Field(ge=0, le=1, max_digits=7, decimal_places=6)
    block: bool = False


class ProfilesIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "profiles": [
                        {"level": "advanced_certified", "inspectionRate": "0.002"},
                        {"level": "certified", "inspectionRate": "0.004"},
                        {"level": "regular", "inspectionRate": "0.03"},
                        {"level": "dishonest", "inspectionRate": "0.9"},
                        {"level": "seriously_dishonest", "inspectionRate": "1", "block": True},
                    ]
                }
            ]
        },
    )

    profiles: list[ProfileIn] = Field(min_length=5, max_length=5, description="One per level, all five")


class ProfileOut(BaseModel):
    level: CreditLevel
    levelZh: str
    inspectionRate: Decimal
    block: bool
    source: str = Field(description="`settings` (the configured default) or `official` (stored at run time)")
    updatedBy: str | None = None
    updatedAt: datetime | None = None


class ProfilesOut(BaseModel):
    profiles: list[ProfileOut]
