"""Pure tests of the identity checks run at matching (app/rules/identity.py)."""

from __future__ import annotations

import pytest
from stdnum.cn import ric

from app.rules.identity import normalise_phone, valid_phone, valid_resident_id
from tests.factories import resident_id


@pytest.mark.parametrize(
    "id_number",
    ["11010519491231002X", "11010519491231002x", " 33010619900101123X ", "330106190001011239"],  # born 1 Jan 1900
)
def test_valid_resident_ids(id_number: str) -> None:
    assert valid_resident_id(id_number)


@pytest.mark.parametrize(
    "id_number",
    [
        "330106199001011234",  # wrong check digit
        "330106199002301236",  # 30 February
        "330106199002301239",  # 30 February, right check digit
        "990106199001011232",  # no province 99, right check digit
        "330106189001011230",  # born 1890, right check digit
        "330106189912311234",  # born 31 December 1899, right check digit
        "33010619900101123",  # 17 characters
        "33010619900101123X0",  # 19
        "33010619900101123Y",
        "",
    ],
)
def test_invalid_resident_ids(id_number: str) -> None:
    assert not valid_resident_id(id_number)


def test_every_check_digit_but_the_right_one_fails() -> None:
    body = "33010619900101123"
    right = ric.calc_check_digit(body + "0")
    for digit in "0123456789X":
        assert valid_resident_id(body + digit) == (digit == right)


def test_the_test_factory_makes_valid_distinct_ids() -> None:
    ids = [resident_id(n) for n in range(1, 3000)]
    assert all(valid_resident_id(i) for i in ids)
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    "phone",
    ["13800138000", "+86 138 0013 8000", "0086-13800138000", "021-62345678", "(0571)8888888", "0571-88888888转12"],
)
def test_valid_phones(phone: str) -> None:
    assert valid_phone(phone)


@pytest.mark.parametrize(
    "phone",
    ["12345", "1380013800", "138001380001", "23800138000", "12800138000", "13800138000x", "62345678", "", "   "],
)
def test_invalid_phones(phone: str) -> None:
    assert not valid_phone(phone)


def test_phone_normalisation_is_the_counting_key() -> None:
    assert normalise_phone("+86 138-0013-8000") == normalise_phone("13800138000") == "13800138000"
