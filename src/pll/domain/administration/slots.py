"""The administration chart's time slots and their clock times, and local time across the
changes to and from daylight saving time (the conventions are in
:mod:`pll.domain.administration`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import pairwise
from zoneinfo import ZoneInfo

from pll.domain.errors import InvalidInput

#: Norwegian time: the chart's days and clock times are local to the care unit.
OSLO = ZoneInfo("Europe/Oslo")


class Slot(StrEnum):
    """A round of the administration chart, in the order of the day."""

    MORGEN = "morgen"
    FORMIDDAG = "formiddag"
    MIDDAG = "middag"
    ETTERMIDDAG = "ettermiddag"
    KVELD = "kveld"
    NATT = "natt"


SLOTS: tuple[Slot, ...] = tuple(Slot)

#: The clock time of each round unless the unit sets its own (the times multidose bags are
#: usually packed for: morning, midday, evening, night).
DEFAULT_TIMES: Mapping[Slot, time] = {
    Slot.MORGEN: time(8),
    Slot.FORMIDDAG: time(11),
    Slot.MIDDAG: time(14),
    Slot.ETTERMIDDAG: time(17),
    Slot.KVELD: time(20),
    Slot.NATT: time(22),
}

#: FHIR ``timing.repeat.when`` code -> the round it is given in. Bedtime (HS, "ved
#: sengetid") is the night round, as on a multidose bag marked "natt".
WHEN_SLOT: Mapping[str, Slot] = {
    "MORN": Slot.MORGEN,
    "NOON": Slot.MIDDAG,
    "AFT": Slot.ETTERMIDDAG,
    "EVE": Slot.KVELD,
    "HS": Slot.NATT,
    "NIGHT": Slot.NATT,
}

#: The rounds of a dose taken N times a day with no time of day given (``3 ganger daglig``).
PER_DAY_SLOTS: Mapping[int, tuple[Slot, ...]] = {
    1: (Slot.MORGEN,),
    2: (Slot.MORGEN, Slot.KVELD),
    3: (Slot.MORGEN, Slot.MIDDAG, Slot.KVELD),
    4: (Slot.MORGEN, Slot.MIDDAG, Slot.KVELD, Slot.NATT),
    5: (Slot.MORGEN, Slot.MIDDAG, Slot.ETTERMIDDAG, Slot.KVELD, Slot.NATT),
    6: SLOTS,
}


def slot_times(overrides: Mapping[Slot | str, time] | None = None) -> dict[Slot, time]:
    """The unit's clock time per round: :data:`DEFAULT_TIMES` with ``overrides`` on top.

    Refused (``InvalidInput`` at ``slots.<slot>``): an unknown round, a time with a time
    zone or seconds, and rounds out of the order of the day (each later than the one
    before), since a round is found from its clock time."""
    times = dict(DEFAULT_TIMES)
    for raw, value in (overrides or {}).items():
        try:
            slot = Slot(raw)
        except ValueError:
            raise InvalidInput(
                f"Unknown round {raw!r}; the rounds are {', '.join(SLOTS)}.",
                f"slots.{raw}",
                norwegian=f"Ukjent tidspunkt «{raw}»; tidspunktene er {', '.join(SLOTS)}.",
            ) from None
        if value.tzinfo is not None or value.second or value.microsecond:
            raise InvalidInput(
                f"The time of round {slot} must be a local clock time in hours and minutes.",
                f"slots.{slot}",
                norwegian=f"Klokkeslettet for {slot} må være timer og minutter.",
            )
        times[slot] = value
    for before, after in pairwise(SLOTS):
        if not times[before] < times[after]:
            raise InvalidInput(
                f"Round {after} ({times[after]:%H:%M}) must come after {before} "
                f"({times[before]:%H:%M}).",
                f"slots.{after}",
                norwegian=(
                    f"{after.capitalize()} ({times[after]:%H:%M}) må komme etter {before} "
                    f"({times[before]:%H:%M})."
                ),
            )
    return times


def slot_of(clock: time, times: Mapping[Slot, time]) -> Slot:
    """The round a clock time falls in: the last round that starts at or before it; a time
    before the first round belongs to the night round."""
    found = Slot.NATT
    for slot in SLOTS:
        if times[slot] <= clock:
            found = slot
    return found


def local(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """The aware moment of a local clock time on ``day``.

    A clock time that does not exist (02:30 on the last Sunday of March, when clocks jump
    from 02:00 to 03:00) moves forward by the gap (03:30). A clock time that occurs twice
    (02:30 on the last Sunday of October) is its first occurrence, still in summer time:
    the dose is given once, at the first 02:30."""
    naive = datetime.combine(day, clock)
    first = naive.replace(tzinfo=tz, fold=0)
    # a time in the spring gap does not survive the round trip; through UTC it is moved on
    return first.astimezone(UTC).astimezone(tz)


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The local day as [start, end): midnight to the next midnight (23 hours on the spring
    day, 25 on the autumn day)."""
    return local(day, time(0), tz), local(day + timedelta(days=1), time(0), tz)
