"""Certificates filed for an enterprise (备案证书): the keys its signed CEB XML is verified with."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.schemas.ceb_types import XmlText

_EXAMPLE_PEM = "-----BEGIN CERTIFICATE-----\nMIIB…\n-----END CERTIFICATE-----\n"


class CertificateCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"pem": _EXAMPLE_PEM, "label": "E-port operator card 0001"}]},
    )

    pem: Annotated[str, StringConstraints(min_length=1, max_length=20_000)] = Field(
        description="One X.509 certificate, PEM (-----BEGIN CERTIFICATE-----); an SM2 or an RSA (≥ 2048 bits) key"
    )
    label: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100), XmlText] | None = None


class CertificateOut(BaseModel):
    id: uuid.UUID
    enterpriseCode: str
    algorithm: Literal["SM2", "RSA"]
    serialNumber: str = Field(description="Hexadecimal, as in KeyInfo/KeyName of the E-port's messages")
    subject: str
    issuer: str
    notBefore: datetime
    notAfter: datetime
    fingerprint: str = Field(description="SHA-256 of the DER, hex; how a message's X509Certificate is found")
    label: str | None
    createdAt: datetime
    revokedAt: datetime | None


class CertificateList(BaseModel):
    items: list[CertificateOut]
