"""SFM's structured e-resept dosing read as the FHIR ``Dosage`` that PLL's dose checks judge
(:mod:`pll.domain.dose_checks`; DESIGN §3 rule 6).

An SFM statement says its dosage as text (``dosage.text``, and ``dssn`` in its
``sfm-reseptamendment``) and, in the same amendment, as the structure the e-resept carries:
one ``ereseptdosing`` per period (``starttime``, ``endtime``) holding one ``repeatingdosage``
per dose — its ``amount`` (a Quantity: ``1 tablett``, ``1 mg``), its ``interval`` (a
Quantity in a time unit: ``1 Døgn``), its time of day (``timerange``, kodeverk 8325) and
whether that time is exact (``accurate``). ``sfm-shortdosage`` on the statement's dosage
(kodeverk 7478, ``2+2+2``) is the day's amounts without a unit.

:func:`structured_dosage` maps that structure, where it can be said exactly, to Dosage
elements:

- a ``repeatingdosage`` is its ``amount`` once per ``interval`` (``frequency`` 1, ``period``
  and ``periodUnit`` from the interval; half a døgn is 12 hours). With an interval of whole
  days, weeks or months its time range is its ``when``: Morgen MORN, Midt på dagen NOON,
  Ettermiddag AFT, Kveld EVE. Formiddag, which no time code PLL takes can name, stays a dose
  once per interval: how much and how often are exact, only the hour is left out;
- the periods are the steps of a tapering, ``sequence`` 1, 2, … by their start, each with
  its length (``endtime`` − ``starttime`` days: the reference's "i 3 dager" runs from
  28 September with ``endtime`` 1 October) as ``boundsDuration``. A pause between two
  periods is not a step: the checks judge each step by its own timing, so a pause changes
  no finding;
- a shortdosage must agree with a single daily period: its numbers add up to the day's
  amount.

Anything else gives ``None`` — an element or time range this module does not know, periods
that overlap, several periods without start or end, an interval that is no whole number of
hours, days, weeks or months, a time range with an interval under a day, a structure
:func:`~pll.domain.dosage.validate_dosage` would refuse, a shortdosage that disagrees — and
the checks judge the text alone, as they always did: what cannot be said exactly is never
guessed. The mapped dosage is for the checks only; what PLL keeps and ``$getMedication``
shows is what SFM sent (docs/sfm-basis.md). Pure: no I/O, and it never raises.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any

from pll.domain.dosage import UCUM_SYSTEM as UCUM
from pll.domain.dosage import time_unit, validate_dosage
from pll.domain.errors import InvalidInput
from pll.fhir.sfm import codes as c

#: kodeverk 8325 Tidsrom
TIME_RANGE = "urn:oid:2.16.578.1.12.4.1.1.8325"
SHORT_DOSAGE = f"{c.SD}/sfm-shortdosage"
#: the time ranges of kodeverk 8325 that FHIR's ``when`` codes, as PLL takes them, name
_WHEN = {"1": "MORN", "3": "NOON", "4": "AFT", "5": "EVE"}
#: known time ranges without such a code: 2 Formiddag (late morning)
_NO_WHEN = frozenset({"2"})
_PERIOD_KEYS = frozenset({"url", "starttime", "endtime", "repeatingdosage"})
_DOSE_KEYS = frozenset({"url", "amount", "interval", "accurate", "timerange"})
#: how many of the next smaller unit one of these is, to say "0.5 døgn" as "12 hours"
_SMALLER = {"d": (Decimal(24), "h"), "wk": (Decimal(7), "d")}


@dataclass(frozen=True)
class Mapped:
    """An SFM statement's structured dosing as FHIR Dosage elements."""

    dosage: list[dict[str, Any]]
    #: where each element's dose unit is in the statement (``extension[0].extension[7]…
    #: .valueQuantity.unit``), to name it in a refusal
    units: list[str]


@dataclass(frozen=True)
class _Period:
    start: date | None
    end: date | None
    elements: list[tuple[dict[str, Any], str]]


def structured_dosage(statement: Mapping[str, Any]) -> Mapped | None:
    """The Dosage an SFM ``MedicationStatement``'s ``ereseptdosing`` says, or ``None`` when
    it has none or it cannot be said exactly (the module says which)."""
    periods: list[_Period] = []
    for j, amendment in _children(statement, c.AMENDMENT):
        for k, raw in _children(amendment, "ereseptdosing"):
            period = _period(raw, f"extension[{j}].extension[{k}]")
            if period is None:
                return None
            periods.append(period)
    if not periods or not _follow_one_another(periods):
        return None
    periods.sort(key=lambda p: p.start or date.min)
    dosage: list[dict[str, Any]] = []
    units: list[str] = []
    for sequence, period in enumerate(periods, start=1):
        for element, unit in period.elements:
            repeat = element["timing"]["repeat"]
            if period.start is not None and period.end is not None:
                days = (period.end - period.start).days
                repeat["boundsDuration"] = {"value": days, "system": UCUM, "code": "d"}
            dosage.append({"sequence": sequence, **element})
            units.append(unit)
    if not _agrees_with_short_dosage(statement, periods):
        return None
    try:
        validate_dosage(dosage)
    except InvalidInput:
        return None
    return Mapped(dosage, units)


def _children(element: Any, url: str) -> list[tuple[int, dict[str, Any]]]:
    """The extensions of ``element`` with this url, with their positions."""
    found = element.get("extension") if isinstance(element, Mapping) else None
    if not isinstance(found, list):
        return []
    return [(i, e) for i, e in enumerate(found) if isinstance(e, dict) and e.get("url") == url]


def _period(raw: dict[str, Any], where: str) -> _Period | None:
    subs = raw.get("extension")
    if not isinstance(subs, list) or not all(
        isinstance(s, dict) and s.get("url") in _PERIOD_KEYS for s in subs
    ):
        return None
    start, end = _day(c.sub_value(raw, "starttime")), _day(c.sub_value(raw, "endtime"))
    if (c.first(raw, "starttime") and start is None) or (c.first(raw, "endtime") and end is None):
        return None
    if start is not None and end is not None and end <= start:
        return None
    elements = []
    for m, dose in _children(raw, "repeatingdosage"):
        element = _element(dose, f"{where}.extension[{m}]")
        if element is None:
            return None
        elements.append(element)
    return _Period(start, end, elements) if elements else None


def _follow_one_another(periods: list[_Period]) -> bool:
    """One period, or periods that each start and, but for the last, end no later than
    the next one starts (two at once would be taken together: not steps)."""
    if len(periods) == 1:
        return True
    if any(p.start is None for p in periods):
        return False
    ordered = sorted(periods, key=lambda p: p.start or date.min)
    return all(
        p.end is not None and nxt.start is not None and p.end <= nxt.start
        for p, nxt in pairwise(ordered)
    )


def _element(dose: dict[str, Any], where: str) -> tuple[dict[str, Any], str] | None:
    """One repeatingdosage as a Dosage element (no sequence yet), and where its unit is."""
    subs = dose.get("extension")
    if not isinstance(subs, list) or not all(
        isinstance(s, dict) and s.get("url") in _DOSE_KEYS for s in subs
    ):
        return None
    found = [i for i, s in enumerate(subs) if s.get("url") == "amount"]
    amount = _quantity(c.sub_value(dose, "amount"))
    interval = _quantity(c.sub_value(dose, "interval"))
    if len(found) != 1 or amount is None or interval is None or len(c.sub(dose, "interval")) > 1:
        return None
    period = _interval(*interval)
    if period is None:
        return None
    repeat: dict[str, Any] = {"frequency": 1, "period": period[0], "periodUnit": period[1]}
    if c.first(dose, "timerange") is not None:
        code = c.code_of(c.sub_value(dose, "timerange"), TIME_RANGE)
        if code not in _WHEN and code not in _NO_WHEN:
            return None
        if period[1] == "h":
            return None  # a time of day for a dose every few hours: what would it mean?
        if code in _WHEN:
            del repeat["frequency"]
            repeat["when"] = [_WHEN[code]]
    element = {
        "timing": {"repeat": repeat},
        # the amount as SFM sent it (a JSON number), in its unit
        "doseAndRate": [
            {"doseQuantity": {"value": c.sub_value(dose, "amount")["value"], "unit": amount[1]}}
        ],
    }
    return element, f"{where}.extension[{found[0]}].valueQuantity.unit"


def _quantity(raw: Any) -> tuple[Decimal, str] | None:
    """A Quantity's positive value and its unit text (else its code)."""
    if not isinstance(raw, Mapping):
        return None
    value = _decimal(raw.get("value"))
    unit = raw.get("unit") or raw.get("code")
    if value is None or value <= 0 or not isinstance(unit, str) or not unit.strip():
        return None
    return value, unit.strip()


def _interval(value: Decimal, unit: str) -> tuple[int, str] | None:
    """An interval as a whole ``period`` of ``periodUnit`` (h, d, wk, mo)."""
    code = time_unit(unit)
    while code is not None and value != value.to_integral_value():
        smaller = _SMALLER.get(code)
        if smaller is None:
            return None
        value, code = value * smaller[0], smaller[1]
    return (int(value), code) if code is not None else None


def _agrees_with_short_dosage(statement: Mapping[str, Any], periods: Sequence[_Period]) -> bool:
    """``sfm-shortdosage`` (``1+0+0+0``), when it can be read, adds up to the day's amount
    of a single daily period."""
    dosages = statement.get("dosage")
    said = [
        c.value(e)
        for d in (dosages if isinstance(dosages, list) else [])
        for e in c.ext(d, SHORT_DOSAGE)
    ]
    codings = said[0].get("coding") if len(said) == 1 and isinstance(said[0], dict) else None
    displays = [x.get("display") for x in codings or [] if isinstance(x, dict)]
    display = displays[0] if displays and len(periods) == 1 else None
    if not isinstance(display, str):
        return True
    try:
        total = sum(Decimal(part.strip().replace(",", ".")) for part in display.split("+"))
    except InvalidOperation:
        return True  # not numbers: nothing to compare
    elements = [e for e, _ in periods[0].elements]
    if any(e["timing"]["repeat"]["periodUnit"] != "d" for e in elements) or any(
        e["timing"]["repeat"]["period"] != 1 for e in elements
    ):
        return True
    day = sum(_decimal(e["doseAndRate"][0]["doseQuantity"]["value"]) or 0 for e in elements)
    return bool(total == day)


def _day(raw: Any) -> date | None:
    if not isinstance(raw, str):
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        return None


def _decimal(raw: Any) -> Decimal | None:
    """A JSON number as a Decimal (``0.1`` stays 0.1), ``None`` for anything else."""
    if isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw):
        return Decimal(str(raw))
    return None
