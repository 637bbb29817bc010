"""Deadlines for cases and when a case is overdue (issue 18), without any I/O.

Each kind of case has a deadline counted from when it was reported (``PLL_CASE_DEADLINES``,
such as ``clinical=3wd,technical=1wd,administration=1wd``): ``wd`` working days, ``d`` days,
``h`` hours. A working day is a weekday that is not a Norwegian public holiday
(*helligdag*: New Year's Day, Maundy Thursday, Good Friday, Easter Monday, 1 and 17 May,
Ascension Day, Whit Monday, Christmas Day and Boxing Day; Sundays are not working days
anyway). A case reported on a working day is due at the same clock time that many working
days later; one reported on a day off counts from the start of the next working day. The
days are Norwegian calendar days (``Europe/Oslo``).

``clinical`` names both kinds a clinician answers (discrepancies on the list, and cases about
giving the medicines fall under ``administration``); ``technical`` the cases of a client
system's operator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")
#: The configured names of the kinds of case (``clinical`` is a discrepancy on the list).
KINDS = ("clinical", "administration", "technical")
_ONE = re.compile(r"\s*([a-z]+)\s*=\s*([0-9]{1,3})\s*(wd|d|h)\s*")


@dataclass(frozen=True)
class Deadline:
    amount: int
    unit: str  # "wd", "d" or "h"

    def text(self) -> str:
        return f"{self.amount}{self.unit}"


def _defaults() -> dict[str, Deadline]:
    return {
        "clinical": Deadline(3, "wd"),
        "administration": Deadline(1, "wd"),
        "technical": Deadline(1, "wd"),
    }


@dataclass(frozen=True)
class Deadlines:
    """The deadline of each kind of case."""

    by_kind: dict[str, Deadline] = field(default_factory=_defaults)

    @classmethod
    def parse(cls, raw: str | None) -> Deadlines:
        """``clinical=3wd,technical=1wd``: the kinds named replace the defaults; a kind not
        named keeps its default. Raises :class:`ValueError` saying what is wrong."""
        out = _defaults()
        for part in (raw or "").split(","):
            if not part.strip():
                continue
            found = _ONE.fullmatch(part.lower())
            if found is None or found[1] not in KINDS or int(found[2]) == 0:
                raise ValueError(
                    f"PLL_CASE_DEADLINES: {part.strip()!r} is not <kind>=<number><unit> with "
                    f"a kind of {', '.join(KINDS)} and a unit of wd (working days), d or h, "
                    "such as clinical=3wd."
                )
            out[found[1]] = Deadline(int(found[2]), found[3])
        return cls(out)

    def due(self, kind: str, reported: datetime) -> datetime:
        """When a case of ``kind`` reported at ``reported`` (aware) is due."""
        rule = self.by_kind[kind]
        if rule.unit == "h":
            return reported + timedelta(hours=rule.amount)
        if rule.unit == "d":
            return reported + timedelta(days=rule.amount)
        local = reported.astimezone(OSLO)
        day = local.date()
        if not working_day(day):
            day = _next_working(day)
            local = datetime.combine(day, time(0), OSLO)
        for _ in range(rule.amount):
            day = _next_working(day)
        due = datetime.combine(day, local.time().replace(tzinfo=None), OSLO)
        return due.astimezone(reported.tzinfo)


def overdue(due: datetime | None, closed: bool, now: datetime) -> bool:
    """A case is overdue when it is still open after its deadline (a case from before
    deadlines were kept has none, and is never overdue)."""
    return due is not None and not closed and now > due


def _next_working(day: date) -> date:
    day += timedelta(days=1)
    while not working_day(day):
        day += timedelta(days=1)
    return day


def working_day(day: date) -> bool:
    """A weekday that is not a Norwegian public holiday."""
    return day.weekday() < 5 and day not in holidays(day.year)


@lru_cache(maxsize=64)
def holidays(year: int) -> frozenset[date]:
    """Norway's public holidays (*helligdager*, helligdagsloven §2) in ``year``: the fixed
    ones and those that move with Easter."""
    easter = _easter(year)
    moving = (-3, -2, 0, 1, 39, 49, 50)  # skjærtorsdag … 2. pinsedag
    fixed = ((1, 1), (5, 1), (5, 17), (12, 25), (12, 26))
    return frozenset(
        [easter + timedelta(days=d) for d in moving] + [date(year, m, d) for m, d in fixed]
    )


def _easter(year: int) -> date:
    """Easter Sunday in the Gregorian calendar (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)
