"""A planned dose's identity and the days the chart accepts (issue 17, docs/administration.md
"Recording what was given"). Pure.

A planned dose is named ``<entry>/<YYYY-MM-DD>/<round>/<n>``: the entry, the local day, the
round (:class:`~pll.domain.administration.slots.Slot`) and ``n`` = 1, 2, … its ordinal among
the entry's doses in that round that day (above 1 only for an every-N-hours dose that lands
twice in one round). The clock time is not part of it: two units that give the patient's
morning round at 07:30 and 08:00 name the same dose, so the one unique index on the key
stops it being recorded twice. The key of PLL's first releases ended in the clock time
(``…/morgen/08:00``); it is refused with a message saying so.

Days are bounded to :data:`FIRST_DAY` … :data:`LAST_DAY` wherever one comes in (a
schedule's days, a key, a recorded time): no treatment is charted outside them, and
computing the day after 9999-12-31 (or a time zone's offset before year 1) would fail.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import NamedTuple

from pll.domain.administration.slots import Slot
from pll.domain.errors import InvalidInput

FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2999, 12, 31)
#: the most doses one entry has in one round of a day (every hour in the night round)
_MAX_ORDINAL = 24
_OLD_SHAPE = re.compile(r"[0-9]{2}:[0-9]{2}")
_WHERE = "MedicationAdministration.extension"


class PlannedKey(NamedTuple):
    """A planned dose's key, read."""

    entry_id: str
    day: date
    slot: Slot
    n: int

    def __str__(self) -> str:
        return planned_key(self.entry_id, self.day, self.slot, self.n)


def planned_key(entry_id: str, day: date, slot: Slot, n: int) -> str:
    """``<entry>/<YYYY-MM-DD>/<round>/<n>``."""
    return f"{entry_id}/{day.isoformat()}/{slot}/{n}"


def check_day(day: date, where: str) -> date:
    """``day`` when it lies in :data:`FIRST_DAY` … :data:`LAST_DAY`; else ``InvalidInput``."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise InvalidInput(
            f"{day.isoformat()} is outside the days the chart covers "
            f"({FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}).",
            where,
            norwegian=f"Datoen {day:%d.%m.%Y} er utenfor det kurven dekker (år 1900–2999).",
        )
    return day


def check_moment(moment: datetime, where: str) -> datetime:
    """An aware ``moment`` whose day (in its own offset) lies in the chart's days."""
    check_day(moment.date(), where)
    return moment


def parse_key(key: str, where: str = _WHERE) -> PlannedKey:
    """The parts of a planned dose's key; ``InvalidInput`` at ``where`` when it is not one:
    a bad shape, day, round or ordinal, a day outside the chart's days, or the old shape
    ending in a clock time."""
    parts = key.split("/")
    shape = "<entry id>/<YYYY-MM-DD>/<round>/<n>"
    if len(parts) == 4 and _OLD_SHAPE.fullmatch(parts[3]):
        raise InvalidInput(
            f"{key[:160]!r} names a planned dose by its clock time, as PLL no longer does: "
            f"the key is {shape} (n = 1, 2, … within the round). Read the administration "
            "schedule again for the planned doses' keys.",
            where,
            norwegian="Dosen er angitt på gammel måte (med klokkeslett). Last kurven på nytt.",
        )
    try:
        if len(parts) != 4 or not parts[0] or not (parts[3].isascii() and parts[3].isdigit()):
            raise ValueError
        day, slot, n = date.fromisoformat(parts[1]), Slot(parts[2]), int(parts[3])
        if len(parts[1]) != 10 or not 1 <= n <= _MAX_ORDINAL:
            raise ValueError
    except ValueError:
        raise InvalidInput(
            f"{key[:160]!r} is not the key of a planned dose: {shape}, as the administration "
            "schedule names it.",
            where,
            norwegian="Dosen finnes ikke på kurven. Last kurven på nytt.",
        ) from None
    return PlannedKey(parts[0], check_day(day, where), slot, n)
