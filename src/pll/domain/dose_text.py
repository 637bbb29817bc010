"""Reading a dosage given as free text (all SFM Basis carries, and the dosage editor's
"Fritekst"), so that free text is checked too (DESIGN §3 rule 6) and is no way round the
dose checks of :mod:`pll.domain.dose_checks`.

Free text is read for what it states for certain, never guessed at:

- **amounts**: a number followed by a unit word, "99999 tabletter", "2,5 ml", "1 000 tbl",
  "2 stk" (thousands may be grouped with a space, "1 000" is 1000; a decimal comma or point).
  The abbreviations ``tbl``/``tabl`` (tablett) and ``kaps`` (kapsel) are read as their
  units; ``stk`` (pieces) is the drug's usual unit, the first its form takes.
- **unit words**: the dose units of the forms (:mod:`pll.domain.forms`) named after a
  number. One the drug's form does not take is a finding ("3 tabletter morgen" of a cream).
  Generic words (``dose``) and units measured by the drug (mg, g, IE) are not judged. A
  solid form taken by mouth (tablet, capsule, effervescent, chewable, lozenge, sachet) may
  also name ``ml`` and ``dråper``, since its text may legitimately say how to take it
  ("knus 1 tablett i 5 ml vann", "løses i 200 ml vann"); no other form may name another
  form's unit (a cream in tablets, a mixture in tablets, a tablet in påføringer).
- **a weekly pattern**: "ukentlig", "i uken"/"i uka", "per uke", "hver uke", "/uke",
  "hver 7. dag", or a weekday's name ("mandag", "hver fredag"); a text that also says
  "daglig", "hver dag", "om dagen" or "per dag" does not state a weekly pattern. "i 2 uker"
  (a duration) is no weekly pattern.
"""

from __future__ import annotations

import re
from decimal import Decimal

from pll.domain.dosage import unit_key
from pll.domain.forms import (
    CHEWABLE,
    EFFERVESCENT,
    LOZENGE,
    SACHET,
    SOLID_CAPSULE,
    SOLID_TABLET,
    FormKind,
)

#: an amount and the word after it: "99999 tabletter", "2,5 ml", "1 000 tbl."
_AMOUNT = re.compile(
    r"(?<![\d,.])(\d{1,3}(?:[ \u00a0]\d{3})+(?!\d)|\d{1,9})([.,]\d{1,6})?\s*([^\W\d_]+)"
)
#: abbreviations a doctor types, by the unit they stand for
_ABBREVIATIONS = {"tbl": "tablett", "tabl": "tablett", "kaps": "kapsel"}
#: "pieces": the drug's usual unit
_PIECES = "stk"
#: the unit words judged against the form: every form's units but the generic and those
#: measured by the drug
JUDGED = frozenset(
    {"tablett", "kapsel", "brusetablett", "tyggetablett", "sugetablett", "ml", "dråpe"}
    | {"påføring", "plaster", "inhalasjon", "stikkpille", "pose"}
)
#: forms taken by mouth whose text may say what to mix or dissolve them in
_MIXED = frozenset({SOLID_TABLET, SOLID_CAPSULE, EFFERVESCENT, CHEWABLE, LOZENGE, SACHET})
_LIQUID_WORDS = frozenset({"ml", "dråpe"})

_DAY_NAMES = r"(?:mandag|tirsdag|onsdag|torsdag|fredag|lørdag|søndag)(?:er|en)?"
_WEEKLY = re.compile(
    r"\b(?:ukentlig|i\s+uk(?:en|a)|per\s+uke|pr\.?\s*uke|hver\s+uke|gang\s+i\s+uk(?:en|a)"
    r"|hver\s+(?:7\.?|sjuende|syvende)\s+dag|" + _DAY_NAMES + r")\b|/\s*uke\b",
    re.IGNORECASE,
)
_DAILY = re.compile(
    r"\b(?:daglig|hver\s+dag|om\s+dagen|per\s+dag|pr\.?\s*dag|per\s+døgn|pr\.?\s*døgn)\b",
    re.IGNORECASE,
)


def amounts(text: str, kind: FormKind | None) -> list[tuple[Decimal, str]]:
    """Every amount the text names with its unit (by :func:`unit_key`), in order."""
    out = []
    for whole, fraction, word in _AMOUNT.findall(text):
        unit = _unit(word, kind)
        if unit is None:
            continue
        number = whole.replace(" ", "").replace("\u00a0", "") + fraction.replace(",", ".")
        out.append((Decimal(number), unit))
    return out


def misfits(text: str, kind: FormKind | None) -> list[str]:
    """The unit words (by :func:`unit_key`) the text doses in that the form does not take,
    in order, each once; none when PLL cannot sort the form."""
    if kind is None:
        return []
    fits = {unit_key(u) for u in kind.units}
    if kind in _MIXED:
        fits |= _LIQUID_WORDS
    out: list[str] = []
    for _, unit in amounts(text, kind):
        if unit in JUDGED and unit not in fits and unit not in out:
            out.append(unit)
    return out


def states_weekly(text: str) -> bool:
    """Whether the text states a weekly pattern (and says nothing of a daily one)."""
    return _WEEKLY.search(text) is not None and _DAILY.search(text) is None


def _unit(word: str, kind: FormKind | None) -> str | None:
    word = word.lower()
    if word == _PIECES:
        return unit_key(kind.units[0]) if kind is not None else None
    return unit_key(_ABBREVIATIONS.get(word, word))
