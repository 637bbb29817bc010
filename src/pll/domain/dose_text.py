"""Reading a dosage given as free text (all SFM Basis carries, and the dosage editor's
"Fritekst"), so that free text is checked too (DESIGN §3 rule 6) and is no way round the
dose checks of :mod:`pll.domain.dose_checks`.

Free text is read for what it states for certain, never guessed at:

- **amounts**: a number followed by a unit word, "99999 tabletter", "2,5 ml", "1 000 tbl",
  "2 stk" (thousands may be grouped with a space, "1 000" is 1000; a decimal comma or point).
  The abbreviations ``tbl``/``tabl``/``tab``/``tabs`` (tablett) and ``kaps``/``kap``/``caps``
  (kapsel) are read as their
  units; ``stk`` (pieces) is the drug's usual unit, the first its form takes.
- **unit words**: the dose units of the forms (:mod:`pll.domain.forms`) named after a
  number. One the drug's form does not take is a finding ("3 tabletter morgen" of a cream).
  Generic words (``dose``) and units measured by the drug (mg, g, IE) are not judged. A
  solid form taken by mouth (tablet, capsule, effervescent, chewable, lozenge, sachet) may
  also name ``ml`` and ``dråper``, since its text may legitimately say how to take it
  ("knus 1 tablett i 5 ml vann", "løses i 200 ml vann"); no other form may name another
  form's unit (a cream in tablets, a mixture in tablets, a tablet in påføringer).
- **one dose day a week** (what a weekly drug such as methotrexate must state): exactly
  one weekday named ("hver fredag", "mandager"), or "ukentlig", "1/en/én gang i uken"
  ("i uka", "per uke", "/uke"), "1 dag i uken", "hver 7. dag". Anything that may mean more
  days is not: a count above one ("3 ganger i uken", "7 dager i uken"), two weekdays
  ("mandag, onsdag og fredag"), a range of days ("mandag til fredag", "mandag-søndag"),
  "alle", "unntatt", and any text that says "daglig", "hver dag", "om dagen" or "per dag".
  A bare "per uke" or "hver uke" ("4 tabletter per uke") does not say on how many days,
  and "i 2 uker" is a duration: neither states one day. In doubt the text is not weekly,
  so the finding stays and the doctor overrides it with a reason.
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
_ABBREVIATIONS = dict.fromkeys(("tbl", "tabl", "tab", "tabs"), "tablett") | dict.fromkeys(
    ("kaps", "kap", "caps"), "kapsel"
)
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

_WEEKDAY = re.compile(
    r"\b(mandag|tirsdag|onsdag|torsdag|fredag|lørdag|søndag)(?:er|en)?\b", re.IGNORECASE
)
#: "in a week": "i uken", "i uka", "per uke", "pr. uke", "/uke", "ukentlig"
_A_WEEK = r"(?:i\s+uk(?:en|a)|per\s+uke|pr\.?\s*uke|/\s*uke|ukentlig)\b"
#: one dose day a week, stated without a weekday
_ONCE_A_WEEK = re.compile(
    r"\b(?:ukentlig|(?:1|en|én|ein)\s+(?:gang|dag)\s+"
    + _A_WEEK
    + r"|hver\s+(?:7\.?|sjuende|syvende)\s+dag\b)",
    re.IGNORECASE,
)
#: what may mean more than one day a week: a count of days or times (one is read by
#: _ONCE_A_WEEK and passed over here), a range of days, "alle", "unntatt"
_MORE_DAYS = re.compile(
    r"\b(?:(?!1\s)\d+|to|tre|fire|fem|seks|sju|syv)\s+(?:dager|ganger|gonger)\s+"
    + _A_WEEK
    + r"|\b(?:mandag|tirsdag|onsdag|torsdag|fredag|lørdag|søndag)(?:er|en)?\s*"
    r"(?:til|-|–|—)\s*(?:mandag|tirsdag|onsdag|torsdag|fredag|lørdag|søndag)"
    r"|\b(?:alle|unntatt|untatt)\b",
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
    """Whether the text states one dose day a week, as the module describes (and says
    nothing of a daily dose)."""
    if _DAILY.search(text) or _MORE_DAYS.search(text):
        return False
    days = {m.group(1).lower() for m in _WEEKDAY.finditer(text)}
    if len(days) > 1:
        return False
    return len(days) == 1 or _ONCE_A_WEEK.search(text) is not None


def _unit(word: str, kind: FormKind | None) -> str | None:
    word = word.lower()
    if word == _PIECES:
        return unit_key(kind.units[0]) if kind is not None else None
    return unit_key(_ABBREVIATIONS.get(word, word))
