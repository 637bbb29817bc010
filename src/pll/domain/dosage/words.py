"""The Norwegian words and numbers of the dosage text: times of day, dose-form nouns and their
plurals, time units, weekdays, and how amounts and lists are written (the conventions are in
:mod:`pll.domain.dosage`; the codes are FHIR R4's EventTiming,
https://hl7.org/fhir/R4/valueset-event-timing.html, and days of week,
https://hl7.org/fhir/R4/valueset-days-of-week.html)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

# code -> (position in the day, Norwegian text)
WHEN: dict[str, tuple[int, str]] = {
    "MORN": (0, "morgen"),
    "NOON": (1, "midt på dagen"),
    "AFT": (2, "ettermiddag"),
    "EVE": (3, "kveld"),
    "HS": (4, "ved sengetid"),
    "NIGHT": (5, "natt"),
}

_NOUNS = (
    ("tablett", "tabletter"),
    ("kapsel", "kapsler"),
    ("dose", "doser"),
    ("dråpe", "dråper"),
    ("stikkpille", "stikkpiller"),
    ("brusetablett", "brusetabletter"),
    ("tyggetablett", "tyggetabletter"),
    ("sugetablett", "sugetabletter"),
    ("sprøyte", "sprøyter"),
    ("pose", "poser"),
    ("påføring", "påføringer"),
    ("ampulle", "ampuller"),
    ("inhalasjon", "inhalasjoner"),
    ("pust", "pust"),
    ("plaster", "plaster"),
    ("spiseskje", "spiseskjeer"),
    ("teskje", "teskjeer"),
    ("måleskje", "måleskjeer"),
)
# Either form may arrive ("2 tablett" from one system, "1 tabletter" from another).
NOUN_FORMS: dict[str, tuple[str, str]] = {form: pair for pair in _NOUNS for form in pair}

# UCUM code -> (singular, plural); "døgn" is the word for a 24-hour day in a maximum dose.
TIME_UNITS: dict[str, tuple[str, str]] = {
    "h": ("time", "timer"),
    "d": ("dag", "dager"),
    "wk": ("uke", "uker"),
    "mo": ("måned", "måneder"),
}
TIME_UNIT_ALIASES: dict[str, str] = {
    alias: code
    for code, words in TIME_UNITS.items()
    for alias in (code, *words, *(("døgn",) if code == "d" else ()))
}
# FHIR R4 days-of-week code -> Norwegian name, in the order of the week
DAYS: dict[str, str] = {
    "mon": "mandag",
    "tue": "tirsdag",
    "wed": "onsdag",
    "thu": "torsdag",
    "fri": "fredag",
    "sat": "lørdag",
    "sun": "søndag",
}


def join(parts: Iterable[str]) -> str:
    words = list(parts)
    if len(words) == 1:
        return words[0]
    return f"{', '.join(words[:-1])} og {words[-1]}"


def format_number(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text.replace(".", ",")


def written_amount(value: Decimal, unit: str) -> str:
    """An amount with its dose-form noun in the number Norwegian takes: singular up to one
    ("1 tablett", "0,5 tablett"), plural above ("2 tabletter", "1,5 tabletter") and for
    none ("0 tabletter", what remains of a daily maximum used up)."""
    forms = NOUN_FORMS.get(unit.lower())
    if forms is not None:
        unit = forms[1] if value > 1 or value == 0 else forms[0]
    return f"{format_number(value)} {unit}"


def unit_key(unit: str) -> str:
    forms = NOUN_FORMS.get(unit.lower())
    return forms[0] if forms else unit.lower()
