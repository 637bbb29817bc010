"""A medicine's name as people write it: the brand or substance, the strength, and the form
words in between, told apart so that "Paracet 500 mg" (what a patient or doctor types) and
"Paracet Tab 500 mg" (what FEST calls the package's drug) are read as the same medicine,
and "Paracet 1 g" as another strength of it. Pure text rules, no catalogue: a name the
catalogue knows is resolved by :mod:`pll.services.catalogue`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

#: Words that say a drug's form, not which drug it is: FEST's short forms
#: (``LegemiddelformKort`` in ``NavnFormStyrke``) and the words patients use for them.
FORM_WORDS = frozenset(
    """
    tab tabl tbl tablett tabletter depottab depottablett enterotab brusetab smeltetab
    filmdrasjert drasjert disp oppl dispergerbar oppløselig kaps kapsel kapsler enterokaps
    mikst mikstur sirup dråper øyedråper nesedråper krem salve gel liniment pasta inj
    injeksjon injeksjonsvæske inh inhalasjon inhalasjonsaerosol aerosol inhalator spray
    nesespray pulver plaster stikkpille supp suppositorier oppløsning suspensjon væske
    ferdigfylt penn sprøyte
    """.split()  # noqa: SIM905 - a list of words reads best as words
)

#: A strength: an amount and its unit, per a denominator when there is one ("0,1 mg/dose").
_STRENGTH = re.compile(
    r"(?<![\w.,])(\d+(?:[.,]\d+)?)\s*(mg|g|mikrog|µg|μg|mcg|ug|ie|iu|e|ml|mmol|%)"
    r"(?:\s*/\s*(ml|g|dose|døgn|time|t|h))?(?!\w)"
)
#: Units one amount can be said in several ways: to milligrams, and the micrograms' names.
_TO_MG = {"g": Decimal(1000), "mg": Decimal(1)}
_SAME_UNIT = {"µg": "mikrog", "μg": "mikrog", "mcg": "mikrog", "ug": "mikrog", "iu": "ie"}


@dataclass(frozen=True)
class NameKey:
    """What of a written name tells the medicine: its brand or substance words (lower case,
    no punctuation, form words left out) and its strengths as one writing of each."""

    brand: str
    strengths: tuple[str, ...]


def _folded(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _amount(value: str, unit: str, per: str | None) -> str:
    try:
        amount = Decimal(value.replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern admits digits only
        return f"{value}{unit}"
    unit = _SAME_UNIT.get(unit, unit)
    if unit in _TO_MG:
        amount, unit = amount * _TO_MG[unit], "mg"
    written = format(amount.normalize(), "f")
    return f"{written}{unit}" + (f"/{per}" if per else "")


def name_key(text: str | None) -> NameKey:
    """The brand and the strengths of a written name: "Norvasc Tab 5 mg" and "norvasc 5mg"
    give the same key; "Paracet 1 g" and "Paracet 1000 mg" the same strength."""
    folded = _folded(text or "")
    strengths = tuple(_amount(*m.groups()) for m in _STRENGTH.finditer(folded))
    rest = _STRENGTH.sub(" ", folded)
    brand = [w for w in re.sub(r"[^\w]+", " ", rest).split() if w not in FORM_WORDS]
    return NameKey(" ".join(brand), strengths)


def strengths_differ(a: NameKey, b: NameKey) -> bool:
    """Both names state a strength, and not the same: never one medicine."""
    return bool(a.strengths) and bool(b.strengths) and a.strengths != b.strengths


def names_a_medicine(text: str | None) -> bool:
    """Whether a written name can be a medicine's at all: it has letters, and no markup
    (``<script>`` is a page's, not a drug's)."""
    folded = _folded(text or "")
    return any(c.isalpha() for c in folded) and not any(c in "<>{}" for c in folded)
