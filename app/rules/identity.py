"""Is a buyer's ID number an ID number, and a telephone a telephone? Pure checks, no I/O.

Until these ran at matching, a wrong check digit was declared and refused days later by the FX agency alone;
now the purchase stops at matching with its own reason code (``BUYER_ID_INVALID``, ``TELEPHONE_INVALID``).
"""

from __future__ import annotations

import re

from stdnum.cn import ric
from stdnum.exceptions import ValidationError

# Separators people type inside a number; they carry no meaning.
_SEPARATORS = re.compile(r"[\s\-()（）]")
# +86 / 0086 before a mobile or a landline number.
_COUNTRY_PREFIX = re.compile(r"^(?:\+86|0086)")
# Mainland mobile numbers: 11 digits, 1 then 3–9 (GB/T numbering plan, MIIT).
_MOBILE = re.compile(r"1[3-9]\d{9}")
# Landlines: trunk 0, area code of 2–3 digits, subscriber number of 7–8 digits, an optional extension.
_LANDLINE = re.compile(r"0[1-9]\d{1,2}\d{7,8}(?:[#*转]\d{1,6})?")


# GB/T 2260 province-level codes (first two digits), with 81/82/83: residence permits of Hong Kong, Macao and
# Taiwan residents, which carry the same check digit.
PROVINCES = frozenset(
    {"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42", "43"}
    | {"44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82", "83"}
)


def valid_resident_id(id_number: str) -> bool:
    """GB 11643: a province-level region code, a real birth date, a sequence, and the ISO 7064 MOD 11-2 check
    character (``X`` for 10, in either case). Not python-stdnum's full ``is_valid``: it also wants the county
    code to have existed in the birth year, which refuses real people whose county was created or renamed
    after they were born.

    >>> valid_resident_id("11010519491231002X"), valid_resident_id("11010519491231002x")
    (True, True)
    >>> valid_resident_id("110105194912310021")  # wrong check digit
    False
    """
    value = id_number.strip().upper()
    if len(value) != 18 or not value[:17].isdigit() or value[:2] not in PROVINCES:
        return False
    if value[17] != ric.calc_check_digit(value):  # reads the first 17 characters
        return False
    try:
        return ric.get_birth_date(value).year >= 1900
    except ValidationError:
        return False


def normalise_phone(phone: str) -> str:
    """The digits that identify a line: separators and the +86 prefix dropped (``+86 138-0013-8000`` →
    ``13800138000``). Also the key risk counters use for a telephone."""
    return _COUNTRY_PREFIX.sub("", _SEPARATORS.sub("", phone.strip()))


def valid_phone(phone: str) -> bool:
    """A mainland mobile number or a landline with its area code.

    >>> [valid_phone(p) for p in ("13800138000", "+86 138 0013 8000", "021-62345678", "0571-8888888转12")]
    [True, True, True, True]
    >>> [valid_phone(p) for p in ("12345", "1380013800", "23800138000", "13800138000x", "")]
    [False, False, False, False, False]
    """
    number = normalise_phone(phone)
    return bool(_MOBILE.fullmatch(number) or _LANDLINE.fullmatch(number))
