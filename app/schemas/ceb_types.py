"""Field types from the CEB field tables (ceb-messages.md §2): lengths, N19,5 decimals, code formats."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

# CEB times (appTime, declTime, returnTime) are China wall-clock time.
CHINA_TZ = timezone(timedelta(hours=8))


def _text(max_length: int, min_length: int = 1) -> Any:
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


_NOT_XML_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_chars(value: str) -> str:
    # CEB messages are XML 1.0, which cannot carry these; PostgreSQL cannot store NUL either.
    if _NOT_XML_CHARS.search(value):
        raise ValueError("must not contain control characters (other than tab, CR, LF)")
    return value


XmlText = AfterValidator(_xml_chars)

# C..n text fields of the field tables: trimmed, 1..n characters that XML can carry.
Str30 = Annotated[str, _text(30), XmlText]
Str37 = Annotated[str, _text(37), XmlText]
Str50 = Annotated[str, _text(50), XmlText]
Str60 = Annotated[str, _text(60), XmlText]
Str100 = Annotated[str, _text(100), XmlText]
Str200 = Annotated[str, _text(200), XmlText]
Str250 = Annotated[str, _text(250), XmlText]
Str510 = Annotated[str, _text(510), XmlText]
Str1000 = Annotated[str, _text(1000), XmlText]


def _int_to_str(value: Any) -> Any:
    # Code fields are strings in CEB, but JSON senders often write 1 for "1"; accept whole numbers only.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _check_ceb_time(value: str) -> str:
    # The pattern has made it 14 digits. Built by hand: strptime costs more than the rest of a document's
    # validation. Seconds 60 and 61 pass, as they do for strptime (leap seconds).
    try:
        second = int(value[12:14])
        if second > 61:
            raise ValueError(value)
        datetime(  # noqa: DTZ001 - a CEB wall-clock field, only checked to be a real date-time
            int(value[0:4]), int(value[4:6]), int(value[6:8]), int(value[8:10]), int(value[10:12]), min(second, 59)
        )
    except ValueError as exc:
        raise ValueError("must be a real date-time written YYYYMMDDhhmmss") from exc
    return value


def _upper(value: str) -> str:
    return value.upper()


# N19,5: 19 digits in all, at most 5 after the point, never NaN/Infinity, never negative.
Amount = Annotated[Decimal, Field(max_digits=19, decimal_places=5, ge=0, allow_inf_nan=False)]
PositiveAmount = Annotated[Decimal, Field(max_digits=19, decimal_places=5, gt=0, allow_inf_nan=False)]

EnterpriseCode = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=18, pattern=r"^[0-9A-Za-z]+$")
]
CebTime = Annotated[
    str,
    BeforeValidator(_int_to_str),
    StringConstraints(strip_whitespace=True, pattern=r"^\d{14}$"),
    AfterValidator(_check_ceb_time),
]
Guid = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        pattern=r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$",
    ),
    AfterValidator(_upper),
]
CurrencyCode = Annotated[
    str, BeforeValidator(_int_to_str), StringConstraints(strip_whitespace=True, pattern=r"^\d{3}$")
]
CountryCode = Annotated[
    str, BeforeValidator(_int_to_str), StringConstraints(strip_whitespace=True, pattern=r"^[0-9A-Za-z]{3}$")
]
UnitCode = Annotated[
    str, BeforeValidator(_int_to_str), StringConstraints(strip_whitespace=True, pattern=r"^[0-9A-Za-z]{3}$")
]
DistrictCode = Annotated[
    str, BeforeValidator(_int_to_str), StringConstraints(strip_whitespace=True, pattern=r"^\d{6}$")
]
IntCode = BeforeValidator(_int_to_str)
