"""Filing (一次备案): enterprises, their keys, officials and delegations (委托)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from stdnum.cn import uscc

from app.rules.signatures import SignaturePolicy
from app.schemas.ceb_types import XmlText

Role = Literal["platform", "seller", "payment", "logistics", "declarant"]
EnterpriseStatus = Literal["active", "suspended"]
DocumentTypeName = Literal["order", "payment", "waybill"]

_CUSTOMS_CODE = re.compile(r"^[0-9A-Z]{10}$")


def check_enterprise_code(value: str) -> str:
    """A 10-character customs registration code, or an 18-character unified social credit code."""
    value = value.strip()
    if value != value.upper():
        raise ValueError("an enterprise code has only digits and capital letters")
    if len(value) == 10:
        if not _CUSTOMS_CODE.match(value):
            raise ValueError("a 10-character customs code has only digits and capital letters")
        return value
    if len(value) == 18:
        if not uscc.is_valid(value):
            raise ValueError("not a valid unified social credit code (GB 32100-2015 check digit)")
        return value
    raise ValueError("must be a 10-character customs code or an 18-character unified social credit code")


FilingCode = Annotated[str, AfterValidator(check_enterprise_code)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), XmlText]


def _unique_roles(roles: list[Role]) -> list[Role]:
    return sorted(set(roles))


Roles = Annotated[list[Role], Field(min_length=1, max_length=5), AfterValidator(_unique_roles)]


class EnterpriseCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"code": "3120960A01", "name": "环球购跨境电商平台", "roles": ["platform"]}]},
    )

    code: FilingCode
    name: Name
    roles: Roles


class EnterprisePatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"status": "suspended"}]})

    name: Name | None = None
    roles: Roles | None = None
    status: EnterpriseStatus | None = None
    signaturePolicy: SignaturePolicy | None = Field(
        default=None,
        description="What a missing ds:Signature on the enterprise's CEB XML means: `off` (signatures not "
        "checked), `verify-if-present` (the default), `required`. See docs/xml.md#signatures",
    )
    intakeRateLimit: int | None = Field(
        default=None,
        ge=0,
        le=10_000_000,
        description="Intake requests per window (SW_RATE_LIMIT_WINDOW_S) for this enterprise; 0: none; "
        "null: back to the default (SW_RATE_LIMIT_INTAKE)",
    )
    queryRateLimit: int | None = Field(
        default=None,
        ge=0,
        le=10_000_000,
        description="Reads per window for this enterprise; 0: none; null: back to the default",
    )


class EnterpriseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    roles: list[Role]
    status: EnterpriseStatus
    signaturePolicy: SignaturePolicy = Field(validation_alias="signature_policy")
    intakeRateLimit: int | None = Field(
        default=None, validation_alias="rate_limit_intake", description="Its own intake limit; null: the default"
    )
    queryRateLimit: int | None = Field(
        default=None, validation_alias="rate_limit_queries", description="Its own read limit; null: the default"
    )
    createdAt: datetime = Field(validation_alias="created_at")
    updatedAt: datetime = Field(validation_alias="updated_at")


class EnterpriseList(BaseModel):
    items: list[EnterpriseOut]


KeyLabel = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100), XmlText]
DEFAULT_OVERLAP_S = 24 * 3600
MAX_OVERLAP_S = 30 * 24 * 3600


class KeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"label": "ERP production", "expiresAt": "2027-12-31T16:00:00Z"}]},
    )

    label: KeyLabel | None = None
    expiresAt: AwareDatetime | None = Field(
        default=None, description="Refused from this time on (with its offset; in the future); never, if absent"
    )


class KeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"overlapSeconds": 3600}]})

    overlapSeconds: int = Field(
        default=DEFAULT_OVERLAP_S,
        ge=0,
        le=MAX_OVERLAP_S,
        description="How long the old key keeps working beside the new one (default 24 h, at most 30 days)",
    )
    label: KeyLabel | None = Field(default=None, description="Of the new key; the old key's label if absent")
    expiresAt: AwareDatetime | None = Field(default=None, description="Of the new key; never, if absent")


class KeyIssued(BaseModel):
    id: uuid.UUID
    key: str = Field(description="The API key. It is shown only this once; only a hash is stored.")
    kind: Literal["admin", "official", "enterprise"]
    enterpriseCode: str | None = None
    label: str | None = None
    createdAt: datetime
    expiresAt: datetime | None = None


class KeyOut(BaseModel):
    id: uuid.UUID
    prefix: str
    label: str | None
    createdAt: datetime
    revokedAt: datetime | None
    expiresAt: datetime | None
    lastUsedAt: datetime | None = Field(description="Last request with the key, to within a minute or two")


class KeyRotated(BaseModel):
    issued: KeyIssued = Field(description="The new key (shown once)")
    replaced: KeyOut = Field(description="The old key, now expiring at the end of the overlap")


class KeyList(BaseModel):
    items: list[KeyOut]


class OfficialCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"label": "张三 · 杭州海关"}]})

    label: Name


class DelegationCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"agentCode": "3120960L01", "documentTypes": ["order", "payment"]}]},
    )

    agentCode: FilingCode
    documentTypes: Annotated[list[DocumentTypeName], Field(min_length=1, max_length=3)]


class DelegationOut(BaseModel):
    id: uuid.UUID
    principalCode: str
    agentCode: str
    documentTypes: list[DocumentTypeName]
    createdAt: datetime
    revokedAt: datetime | None


class DelegationList(BaseModel):
    items: list[DelegationOut]
