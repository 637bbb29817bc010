"""The maximum of an as-needed (``ved behov``) dosage over a rolling period (issue 17,
docs/administration.md "Recording what was given"). Pure.

``maxDosePerPeriod`` "høyst 2 tabletter per 24 timer" holds for every period of that length,
not per calendar day: 2 tablets at 23:30 and 2 more at 00:30 are 4 within one hour. A new
dose at ``t`` is refused when some window ``[s, s + period)`` containing ``t`` would hold more
than the maximum, counting the completed records that stand (those after ``t`` too: a dose
recorded afterwards with an earlier time). What remains to give *now* is the maximum less
what was given in the period ending now. Periods of hours, days and weeks (up to
:data:`LONGEST`) are counted; a maximum per month is not a fixed length and is left to the
dosage text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pll.domain.dosage import time_unit, unit_key

#: The longest period counted (what a recording loads around its time).
LONGEST = timedelta(days=7)
_UNIT = {"h": timedelta(hours=1), "d": timedelta(days=1), "wk": timedelta(weeks=1)}


@dataclass(frozen=True)
class Maximum:
    """``amount`` of ``unit`` at most per ``period``."""

    amount: Decimal
    unit: str
    period: timedelta

    def counts(self, unit: str) -> bool:
        return unit_key(unit) == unit_key(self.unit)


@dataclass(frozen=True)
class Dose:
    """An amount given at a moment (a completed record that stands)."""

    at: datetime
    amount: Decimal
    unit: str


def maximum(element: Mapping[str, Any], dose_unit: str) -> Maximum | None:
    """The maximum of a dosage element's ``maxDosePerPeriod`` (the numerator's unit, else
    the dose's); ``None`` when it states none or a period that is not counted."""
    ratio = element.get("maxDosePerPeriod")
    if not isinstance(ratio, Mapping):
        return None
    numerator, denominator = ratio["numerator"], ratio["denominator"]
    unit = time_unit(str(denominator.get("code") or denominator.get("unit") or ""))
    length = Decimal(str(denominator["value"]))
    if unit not in _UNIT or length <= 0:
        return None
    period = _UNIT[unit] * float(length)
    if period > LONGEST:
        return None
    said = numerator.get("unit") or numerator.get("code") or dose_unit
    return Maximum(Decimal(str(numerator["value"])), str(said), period)


def given_in(most: Maximum, doses: Iterable[Dose], end: datetime) -> tuple[Decimal, bool]:
    """What was given in the period ending at ``end`` (``(end − period, end]``) in the
    maximum's unit, and whether every dose in it could be counted (not when one is in a
    unit that cannot be compared with the maximum's)."""
    end = end.astimezone(UTC)
    inside = [d for d in doses if end - most.period < d.at.astimezone(UTC) <= end]
    total = sum((d.amount for d in inside if most.counts(d.unit)), Decimal(0))
    return total, all(most.counts(d.unit) for d in inside)


def peak_with(most: Maximum, doses: Iterable[Dose], at: datetime) -> tuple[Decimal, datetime]:
    """The most given in any window ``[s, s + period)`` that contains ``at`` (without a dose
    at ``at``), and the window's start. Doses in units that cannot be counted are left out.

    The windows worth trying start at a dose in ``(at − period, at]`` or at ``at`` itself:
    any other window holds no more than the one starting at the first dose at or after its
    start. Linear in the doses near ``at`` times their count."""
    at = at.astimezone(UTC)
    near = sorted(
        (d.at.astimezone(UTC), d.amount)
        for d in doses
        if most.counts(d.unit) and abs(d.at.astimezone(UTC) - at) < most.period
    )
    starts = [t for t, _ in near if at - most.period < t <= at] + [at]
    best, where = Decimal(0), at
    for start in starts:
        total = sum((a for t, a in near if start <= t < start + most.period), Decimal(0))
        if total > best:
            best, where = total, start
    return best, where
