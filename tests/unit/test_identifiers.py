"""Fødselsnummer and D-nummer: check digits, D-number and synthetic offsets, century, systems."""

from __future__ import annotations

import dataclasses
import datetime
import random
from typing import Literal

import pytest

from pll.domain.errors import InvalidInput
from pll.domain.identifiers import (
    DNR_SYSTEM,
    FNR_SYSTEM,
    PersonIdentifier,
    generate_synthetic_fnr,
    parse_person_identifier,
)

Kind = Literal["fnr", "dnr"]

# Known-valid numbers, hard-coded rather than computed so that a shared mistake in the code and
# the test cannot hide. Each was checked by a second, independent implementation of the rule;
# two are worked by hand here:
#
#   07851459337 (synthetic fnr): digits 0 7 8 5 1 4 5 9 3
#     K1: 3·0+7·7+6·8+1·5+8·1+9·4+4·5+5·9+2·3 = 217; 217 mod 11 = 8; 11-8 = 3
#     K2: 5·0+4·7+3·8+2·5+7·1+6·4+5·5+4·9+3·3+2·3 = 169; 169 mod 11 = 4; 11-4 = 7
#     day 07, month 85-80 = 5, year 14 with individual number 593 -> 2014-05-07
#   43887727296 (synthetic D-nummer): digits 4 3 8 8 7 7 2 7 2
#     K1: 3·4+7·3+6·8+1·8+8·7+9·7+4·2+5·7+2·2 = 255; 255 mod 11 = 2; 11-2 = 9
#     K2: 5·4+4·3+3·8+2·8+7·7+6·7+5·2+4·7+3·2+2·9 = 225; 225 mod 11 = 5; 11-5 = 6
#     day 43-40 = 3, month 88-80 = 8, year 77 with individual number 272 -> 1977-08-03
KNOWN_VALID: list[tuple[str, Kind, bool, datetime.date]] = [
    # test patients in the national SFM Basis test environment (shared/reference/sfm-basis)
    ("17056600574", "fnr", False, datetime.date(1966, 5, 17)),
    ("25039296929", "fnr", False, datetime.date(1992, 3, 25)),  # 969 with year 92 -> 1900s
    # synthetic numbers drawn once from generate_synthetic_fnr(random.Random(2024))
    ("07851459337", "fnr", True, datetime.date(2014, 5, 7)),
    ("02878410389", "fnr", True, datetime.date(1984, 7, 2)),
    ("01880388890", "fnr", True, datetime.date(2003, 8, 1)),
    ("43887727296", "dnr", True, datetime.date(1977, 8, 3)),
    ("68927332586", "dnr", True, datetime.date(1973, 12, 28)),
    # real-format D-nummer: day 01 + 40
    ("41017010083", "dnr", False, datetime.date(1970, 1, 1)),
    # each branch of the century rule
    ("01015450068", "fnr", False, datetime.date(1854, 1, 1)),  # 500-749, year 54-99 -> 1800s
    ("31129950016", "fnr", False, datetime.date(1899, 12, 31)),  # 500-749, year 54-99 -> 1800s
    ("01010050053", "fnr", False, datetime.date(2000, 1, 1)),  # 500-999, year 00-39 -> 2000s
    ("29020050088", "fnr", False, datetime.date(2000, 2, 29)),  # leap day exists in 2000
    ("15054090185", "fnr", False, datetime.date(1940, 5, 15)),  # 900-999, year 40-99 -> 1900s
    ("31129990077", "fnr", False, datetime.date(1999, 12, 31)),  # 900-999, year 40-99 -> 1900s
    ("31129900183", "fnr", False, datetime.date(1999, 12, 31)),  # 000-499 -> 1900s
    # remainder 0 gives check digit 0: 0 1 0 1 6 6 0 0 0 weighted is 110 = 10·11
    ("01016600004", "fnr", False, datetime.date(1966, 1, 1)),
]


@pytest.mark.parametrize(("value", "kind", "synthetic", "birth_date"), KNOWN_VALID)
def test_known_valid_numbers_parse_to_what_they_encode(
    value: str, kind: Kind, synthetic: bool, birth_date: datetime.date
) -> None:
    system = FNR_SYSTEM if kind == "fnr" else DNR_SYSTEM

    inferred = parse_person_identifier(None, value)
    stated = parse_person_identifier(system, value)

    expected = PersonIdentifier(
        system=system, value=value, kind=kind, synthetic=synthetic, birth_date=birth_date
    )
    assert inferred == expected
    assert stated == expected


def test_person_identifier_is_immutable() -> None:
    identifier = parse_person_identifier(None, "17056600574")

    with pytest.raises(dataclasses.FrozenInstanceError):
        identifier.value = "25039296929"  # type: ignore[misc]


def reject(value: str, system: str | None = None) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_person_identifier(system, value, "Patient.identifier[0]")
    # The number is personal data; messages end up in logs.
    assert not value or value not in caught.value.message
    return caught.value


@pytest.mark.parametrize(
    "value",
    [
        "1705660057",  # 10 digits
        "170566005741",  # 12 digits
        "",
        "1705660057a",
        "17056 00574",
        "170566-0574",
        "١٧٠٥٦٦٠٠٥٧٤",  # Arabic-Indic digits: str.isdigit() is true for these
    ],
)
def test_a_value_that_is_not_eleven_ascii_digits_is_refused(value: str) -> None:
    error = reject(value)

    assert "not 11 digits" in error.message
    assert error.expression == "Patient.identifier[0].value"


def test_a_wrong_first_check_digit_is_named() -> None:
    error = reject("17056600584")  # 10th digit 7 -> 8

    assert "first check digit is wrong" in error.message
    assert error.expression == "Patient.identifier[0].value"


def test_nine_digits_that_give_check_digit_ten_have_no_valid_number() -> None:
    # 0 1 0 1 6 6 0 0 6: 7+1+48+54+12 = 122; 122 mod 11 = 1; 11-1 = 10: no digit fits.
    for tenth in "0123456789":
        error = reject(f"010166006{tenth}0")
        assert "first check digit is wrong" in error.message


def test_a_wrong_second_check_digit_is_named() -> None:
    error = reject("17056600575")  # 11th digit 4 -> 5

    assert "second check digit is wrong" in error.message
    assert error.expression == "Patient.identifier[0].value"


def test_ten_digits_that_give_second_check_digit_ten_have_no_valid_number() -> None:
    # K1 of 010166010 is 6; 0 1 0 1 6 6 0 1 0 6 weighted: 4+2+42+36+4+12 = 100; 100 mod 11 = 1.
    for last in "0123456789":
        assert "second check digit is wrong" in reject(f"0101660106{last}").message


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("31026600017", "31.02.1966 does not exist"),
        ("29020000064", "29.02.1900 does not exist"),  # 1900 was no leap year
        ("31826600082", "31.02.1966 does not exist"),  # synthetic: month 82
        ("32016600066", "day 32"),
        ("00016600075", "day 00"),
        ("72016600130", "day 72"),  # D-nummer day 32
        ("01136600032", "month 13"),
    ],
)
def test_a_date_that_does_not_exist_is_refused(value: str, detail: str) -> None:
    error = reject(value)

    assert "no such date" in error.message
    assert detail in error.message
    assert error.expression == "Patient.identifier[0].value"


def test_month_plus_forty_is_not_accepted_as_synthetic() -> None:
    # Valid check digits, month 45: an H-number or an old-style test number.
    error = reject("01456600057")

    assert "no such date" in error.message
    assert "month + 80" in error.message


@pytest.mark.parametrize(
    "value",
    [
        "01016680016",  # 750-899 is never issued with year 40-99
        "01014050066",  # 500-749 with year 40-53 is never issued
    ],
)
def test_an_individual_number_outside_every_century_is_refused(value: str) -> None:
    error = reject(value)

    assert "individual number" in error.message
    assert value[6:9] in error.message


def test_a_d_number_sent_as_a_fodselsnummer_names_the_system_to_use() -> None:
    error = reject("41017010083", system=FNR_SYSTEM)

    assert "D-nummer" in error.message
    assert DNR_SYSTEM in error.message
    assert error.expression == "Patient.identifier[0].system"


def test_a_fodselsnummer_sent_as_a_d_number_names_the_system_to_use() -> None:
    error = reject("17056600574", system=DNR_SYSTEM)

    assert "fødselsnummer" in error.message
    assert FNR_SYSTEM in error.message
    assert error.expression == "Patient.identifier[0].system"


@pytest.mark.parametrize("system", ["urn:oid:2.16.578.1.12.4.1.4.4", "", "fnr"])
def test_an_unknown_system_is_refused_naming_the_two_accepted(system: str) -> None:
    error = reject("17056600574", system=system)

    assert FNR_SYSTEM in error.message
    assert DNR_SYSTEM in error.message
    assert error.expression == "Patient.identifier[0].system"


def test_the_default_expression_is_identifier() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_person_identifier(None, "123")

    assert caught.value.expression == "identifier.value"


@pytest.mark.parametrize("kind", ["fnr", "dnr"])
def test_generated_synthetic_numbers_all_parse(kind: Kind) -> None:
    rng = random.Random(20250101)
    years: set[int] = set()

    for _ in range(2000):
        value = generate_synthetic_fnr(rng, kind)
        identifier = parse_person_identifier(None, value)

        assert identifier.kind == kind
        assert identifier.synthetic
        assert identifier.system == (FNR_SYSTEM if kind == "fnr" else DNR_SYSTEM)
        assert 81 <= int(value[2:4]) <= 92
        assert (int(value[0]) >= 4) == (kind == "dnr")
        assert 1930 <= identifier.birth_date.year <= 2024
        years.add(identifier.birth_date.year)

    # both centuries, so both individual-number ranges, are exercised
    assert min(years) < 2000 <= max(years)


def test_generation_is_reproducible_from_the_seed() -> None:
    first = [generate_synthetic_fnr(random.Random(7)) for _ in range(3)]
    again = [generate_synthetic_fnr(random.Random(7)) for _ in range(3)]

    assert first == again
    assert generate_synthetic_fnr(random.Random(2024)) == "07851459337"
