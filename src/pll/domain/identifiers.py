"""Norwegian person identifiers: fødselsnummer and D-nummer.

Both are 11 digits ``DDMMYY III K1 K2``: a birth date, a three-digit individual number and two
mod-11 check digits. Rules applied here:

- **Check digits.** K1 is computed from the first nine digits with weights 3 7 6 1 8 9 4 5 2,
  K2 from the first ten with weights 5 4 3 2 7 6 5 4 3 2; each is ``11 - sum % 11``, where 11
  becomes 0 and 10 means no number can start with those digits.
- **D-nummer** (for people without a fødselsnummer): the first digit is raised by 4, so the day
  is written 41–71.
- **Synthetic test numbers** (Skatteetaten's Tenor / Test Norge): the month is raised by 80, so it
  is written 81–92. Only +80 is accepted. Numbers with the month raised by 40 (H-numbers, and
  older test numbers in that style) are refused: they are not person identifiers in this system.
- **Century** from the individual number III and the year YY: 000–499 → 1900s; 500–749 with
  YY 54–99 → 1800s; 500–999 with YY 00–39 → 2000s; 900–999 with YY 40–99 → 1900s. Any other
  combination is not issued, so such a number is refused.
- The birth date must exist. Whether it lies in the future is not checked: this module has no
  clock.

Error messages never repeat the whole number: it is personal data and messages end up in logs.
Each refusal says it twice: in English (``message``, what the API answers; journal systems
match on it) and in Norwegian (``norwegian``, what a page shows beside the field the number
was typed in), side by side here so the two cannot drift apart.
"""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass
from typing import Literal

from pll.domain.errors import InvalidInput

FNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.1"
DNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.2"

_SYSTEM_BY_KIND: dict[str, str] = {"fnr": FNR_SYSTEM, "dnr": DNR_SYSTEM}
_KIND_BY_SYSTEM: dict[str, Literal["fnr", "dnr"]] = {FNR_SYSTEM: "fnr", DNR_SYSTEM: "dnr"}
_KIND_NAME = {"fnr": "fødselsnummer", "dnr": "D-nummer"}

_WEIGHTS_1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_WEIGHTS_2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_DIGITS = frozenset("0123456789")

_DNR_DAY_OFFSET = 40
_SYNTHETIC_MONTH_OFFSET = 80
_H_NUMBER_MONTH_OFFSET = 40


@dataclass(frozen=True)
class PersonIdentifier:
    """A checked Norwegian person identifier.

    ``system`` is the FHIR identifier system matching ``kind``; ``value`` is the 11 digits as
    given; ``synthetic`` is true for test numbers (month + 80); ``birth_date`` is the real date
    the number encodes (D-number and synthetic offsets removed).
    """

    system: str
    value: str
    kind: Literal["fnr", "dnr"]
    synthetic: bool
    birth_date: datetime.date


def parse_person_identifier(
    system: str | None, value: str, expression: str = "identifier"
) -> PersonIdentifier:
    """Check a fødselsnummer or D-nummer and return what it encodes.

    ``system`` is the FHIR ``Identifier.system``: ``FNR_SYSTEM``, ``DNR_SYSTEM``, or ``None`` to
    infer it from the digits. ``expression`` is the location of the identifier in the request
    (for example ``Patient.identifier[0]``); errors point at ``<expression>.system`` or
    ``<expression>.value``.

    Raises ``InvalidInput`` if the system is neither of the two, if the value is not exactly 11
    ASCII digits, if a check digit is wrong, if the number encodes no date, or if the system
    names the other kind of number than the digits are.
    """
    if system is not None and system not in _KIND_BY_SYSTEM:
        raise InvalidInput(
            f"Unknown identifier system {system!r}: a Norwegian person identifier uses "
            f"{FNR_SYSTEM} (fødselsnummer) or {DNR_SYSTEM} (D-nummer).",
            f"{expression}.system",
            norwegian=(
                "Ukjent identifikatorsystem: et norsk personnummer bruker "
                f"{FNR_SYSTEM} (fødselsnummer) eller {DNR_SYSTEM} (D-nummer)."
            ),
        )
    where = f"{expression}.value"
    _check_format(value, where)
    kind, synthetic, birth_date = _decode_birth(value, where)
    if system is not None and _KIND_BY_SYSTEM[system] != kind:
        stated = _KIND_BY_SYSTEM[system]
        raise InvalidInput(
            f"The number is a {_KIND_NAME[kind]}, but the system says {_KIND_NAME[stated]}: "
            f"use system {_SYSTEM_BY_KIND[kind]} for it.",
            f"{expression}.system",
            norwegian=(
                f"Nummeret er et {_KIND_NAME[kind]}, men systemet sier {_KIND_NAME[stated]}: "
                f"bruk systemet {_SYSTEM_BY_KIND[kind]}."
            ),
        )
    return PersonIdentifier(
        system=_SYSTEM_BY_KIND[kind],
        value=value,
        kind=kind,
        synthetic=synthetic,
        birth_date=birth_date,
    )


def generate_synthetic_fnr(rng: random.Random, kind: Literal["fnr", "dnr"] = "fnr") -> str:
    """Return a valid synthetic test number (month + 80) of the given kind.

    The birth date is drawn from 1930-01-01 to 2024-12-31 and the individual number from the
    range that gives that century, so ``parse_person_identifier`` accepts every result. The same
    ``rng`` state gives the same number, which keeps demo data reproducible.
    """
    first = datetime.date(1930, 1, 1).toordinal()
    last = datetime.date(2024, 12, 31).toordinal()
    while True:
        born = datetime.date.fromordinal(rng.randint(first, last))
        day = born.day + (_DNR_DAY_OFFSET if kind == "dnr" else 0)
        prefix = f"{day:02d}{born.month + _SYNTHETIC_MONTH_OFFSET:02d}{born.year % 100:02d}"
        individuals = range(500, 1000) if born.year >= 2000 else range(500)
        start = rng.randrange(len(individuals))
        # About one prefix in eleven has no first check digit, so walk on from a random start
        # instead of drawing until one fits; a date with no fitting number at all gets redrawn.
        for step in range(len(individuals)):
            first_nine = f"{prefix}{individuals[(start + step) % len(individuals)]:03d}"
            checks = _check_digits(first_nine)
            if checks is not None:
                return first_nine + checks


def _check_format(value: str, where: str) -> None:
    if len(value) != 11:
        raise InvalidInput(
            f"The person identifier is not 11 digits: it has {len(value)} characters.",
            where,
            norwegian=f"Fødselsnummeret må ha 11 sifre; du skrev {len(value)} tegn.",
        )
    # str.isdigit() would let through other scripts' digits, such as Arabic-Indic ones.
    if not set(value) <= _DIGITS:
        raise InvalidInput(
            "The person identifier is not 11 digits: it contains a character other than 0–9 "
            "(spaces and separators are not allowed).",
            where,
            norwegian="Fødselsnummeret kan bare inneholde sifrene 0–9 (11 sifre).",
        )
    first = _check_digit(value[:9], _WEIGHTS_1)
    if first is None:
        raise InvalidInput(
            "The person identifier's first check digit is wrong: no check digit fits the first "
            "nine digits, so the number is mistyped.",
            where,
            norwegian=(
                "Fødselsnummeret er feilskrevet: ingen kontrollsiffer passer til de ni første "
                "sifrene."
            ),
        )
    if str(first) != value[9]:
        raise InvalidInput(
            "The person identifier's first check digit is wrong (digit 10): the number is "
            "mistyped.",
            where,
            norwegian=(
                "Fødselsnummeret er feilskrevet: første kontrollsiffer (siffer 10) stemmer ikke."
            ),
        )
    second = _check_digit(value[:10], _WEIGHTS_2)
    if second is None or str(second) != value[10]:
        raise InvalidInput(
            "The person identifier's second check digit is wrong (digit 11): the number is "
            "mistyped.",
            where,
            norwegian=(
                "Fødselsnummeret er feilskrevet: andre kontrollsiffer (siffer 11) stemmer ikke."
            ),
        )


def _decode_birth(value: str, where: str) -> tuple[Literal["fnr", "dnr"], bool, datetime.date]:
    day, month, yy, individual = int(value[0:2]), int(value[2:4]), int(value[4:6]), int(value[6:9])
    kind: Literal["fnr", "dnr"] = "fnr"
    if day > _DNR_DAY_OFFSET:
        kind, day = "dnr", day - _DNR_DAY_OFFSET
    if not 1 <= day <= 31:
        raise InvalidInput(
            f"The person identifier encodes no such date: day {value[0:2]} is not a day of the "
            "month (01–31, or 41–71 in a D-nummer).",
            where,
            norwegian=(
                f"Fødselsnummeret viser ingen gyldig dato: dag {value[0:2]} finnes ikke "
                "(01–31, eller 41–71 i et D-nummer)."
            ),
        )
    synthetic = month > _SYNTHETIC_MONTH_OFFSET
    if synthetic:
        month -= _SYNTHETIC_MONTH_OFFSET
    elif _H_NUMBER_MONTH_OFFSET < month <= _H_NUMBER_MONTH_OFFSET + 12:
        raise InvalidInput(
            f"The person identifier encodes no such date: month {value[2:4]} is month + 40, "
            "as in H-numbers and older test numbers, which are not accepted; synthetic test "
            "numbers must use month + 80 (81–92).",
            where,
            norwegian=(
                f"Måned {value[2:4]} er måned + 40, som i H-nummer og eldre testnummer; de "
                "tas ikke imot. Syntetiske testnummer bruker måned + 80 (81–92)."
            ),
        )
    if not 1 <= month <= 12:
        raise InvalidInput(
            f"The person identifier encodes no such date: month {value[2:4]} is not a month "
            "(01–12, or 81–92 in a synthetic test number).",
            where,
            norwegian=(
                f"Fødselsnummeret viser ingen gyldig dato: måned {value[2:4]} finnes ikke "
                "(01–12, eller 81–92 i et syntetisk testnummer)."
            ),
        )
    century = _century(individual, yy)
    if century is None:
        raise InvalidInput(
            f"The person identifier's individual number {value[6:9]} (digits 7–9) is not issued "
            f"for birth year {value[4:6]}, so the number encodes no birth date.",
            where,
            norwegian=(
                f"Individnummeret {value[6:9]} (siffer 7–9) er ikke i bruk for fødselsår "
                f"{value[4:6]}, så nummeret viser ingen fødselsdato."
            ),
        )
    try:
        born = datetime.date(century + yy, month, day)
    except ValueError:
        raise InvalidInput(
            f"The person identifier encodes no such date: {day:02d}.{month:02d}.{century + yy} "
            "does not exist.",
            where,
            norwegian=(
                f"Fødselsnummeret viser ingen gyldig dato: {day:02d}.{month:02d}."
                f"{century + yy} finnes ikke."
            ),
        ) from None
    return kind, synthetic, born


def _century(individual: int, yy: int) -> int | None:
    if individual <= 499:
        return 1900
    if individual <= 749 and yy >= 54:
        return 1800
    if yy <= 39:
        return 2000
    if individual >= 900:
        return 1900
    return None


def _check_digit(digits: str, weights: tuple[int, ...]) -> int | None:
    remainder = sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    check = (11 - remainder) % 11
    return None if check == 10 else check


def _check_digits(first_nine: str) -> str | None:
    first = _check_digit(first_nine, _WEIGHTS_1)
    if first is None:
        return None
    second = _check_digit(first_nine + str(first), _WEIGHTS_2)
    if second is None:
        return None
    return f"{first}{second}"


_ORGNR_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)


def check_orgnr(value: str, where: str) -> str:
    """An organisation number (Enhetsregisteret): nine digits, the last a mod-11 check
    digit over the first eight with weights 3 2 7 6 5 4 3 2."""
    if len(value) != 9 or not set(value) <= _DIGITS:
        raise InvalidInput(
            "An organisation number has nine digits.",
            where,
            norwegian="Et organisasjonsnummer har ni sifre.",
        )
    if _check_digit(value[:8], _ORGNR_WEIGHTS) != int(value[8]):
        raise InvalidInput(
            "The organisation number's check digit is wrong.",
            where,
            norwegian="Organisasjonsnummerets kontrollsiffer stemmer ikke.",
        )
    return value
