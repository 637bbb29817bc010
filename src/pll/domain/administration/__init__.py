"""Giving the medicines (issue 17): the list as the administration chart (*kurve*) of a
nursing home or home-care unit. Pure rules, no I/O.

**The daily schedule** — :func:`schedule` (or :func:`schedule_list` for a whole PLL) turns
the structured dosages of a list's entries into the planned administrations of each local
day from ``first`` to ``last`` (at most :data:`MAX_DAYS` = 14 days, else ``InvalidInput``
at ``end``). It answers a :class:`Schedule` of :class:`DaySchedule` s, each holding:

- ``doses``: :class:`PlannedDose` s, one per entry, round and ordinal (two dosage elements in
  one round at one time are one dose, summed; in different units, ``må vurderes``) — entry id and
  version, day, :class:`Slot` (morgen, formiddag, middag, ettermiddag, kveld, natt), the
  planned aware local time, amount and unit, and :class:`Source` (the multidose bag when the
  entry is marked packed in multidose, :func:`pll.domain.multidose.packed_in_multidose`,
  else a separate package), sorted by time;
- ``as_needed``: :class:`AsNeeded` items (``ved behov``) with the maximum
  (``maxDosePerPeriod`` per hours, days or weeks) and what remains of it over the period
  ending ``now`` after the ``given`` amounts passed in (:class:`Given`;
  :mod:`pll.domain.administration.as_needed`);
- ``assess``: :class:`Assess` items, ``må vurderes``, with the dosage text and why — free
  text (never guessed), and structured dosages whose days the chart could only guess;
- ``paused_entries``: entries in use but paused (``on-hold``): nothing planned from them.

A paused list (Pause PLL, ``paused``) plans nothing: every day is empty and
``Schedule.paused`` holds the pause (who, when, why). Entries not in use are left out.

**Rounds and clock times.** The unit sets a clock time per round (``slots``, over
:data:`DEFAULT_TIMES`: 08, 11, 14, 17, 20, 22), each later than the one before. The FHIR
``when`` codes map to rounds by :data:`WHEN_SLOT` (MORN morgen, NOON middag, AFT
ettermiddag, EVE kveld, HS and NIGHT natt). A count a day with no ``when`` (``3 ganger
daglig``) takes the rounds of :data:`PER_DAY_SLOTS` (1: morgen; 2: morgen, kveld; 3: + middag;
4: + natt; 5: + ettermiddag; 6: all); more than 6 is ``må vurderes``. A dose with no time of
day (weekly, monthly, named weekdays) is given in the morning round.

**Days.** Counted from the treatment's start (``effectivePeriod.start``), or from the step's
start for a tapering step:

- daily (``when``, or frequency per 1 d): every day; every N days: day 0, N, 2N …;
- weekly with ``dayOfWeek``: on those weekdays (every N weeks: in the start's week and every
  Nth week after); weekly without a weekday: on the weekday the treatment started;
  monthly: on the start's day of the month (the month's last day when it is shorter);
- N times a week or month without weekdays: ``må vurderes`` (which days is not said);
- every N hours: local clock times from the morning round, every day alike when N divides 24,
  else continued from the morning round of the start day; the round is the last one starting
  at or before that time (before the first round: natt);
- tapering (increasing ``sequence``): each step covers the days from the end of the one
  before for its ``boundsDuration`` (h in whole days, d, wk, mo); the last step without
  bounds is open-ended, with bounds it ends; steps or bounds without a start date, and
  intervals that need one, are ``må vurderes``;
- ``effectivePeriod``: no dose before its start or after its end; a date is a whole local day,
  a dateTime a moment (doses planned before the start or after the end moment are left out).

**Time zone and daylight saving.** Days and times are local (``tz``, Europe/Oslo). A day runs
from local midnight to the next (23 hours on the last Sunday of March, 25 on the last Sunday
of October). A round at a clock time the spring change skips (02:00–02:59) moves on by the
gap (02:30 is given at 03:30); a clock time the autumn change repeats is its first occurrence
(summer time), so the dose is given once. Every-N-hours doses follow the clock: the skipped
hour has no dose of its own, the repeated hour gets one.

**As FHIR** (for the API built on this): each :class:`PlannedDose` is a ``MedicationRequest``
with ``status`` active, ``intent`` ``instance-order``, ``basedOn`` the entry's prescription
(or an extension naming ``MedicationStatement/<entry_id>/_history/<entry_version>``),
``medication[x]`` and ``subject`` from the entry, ``dosageInstruction[0]`` with
``timing.event`` = [``at``], ``timing.code.text`` = the slot, ``doseAndRate[0].doseQuantity``
= amount and unit, and the source as an extension; :attr:`PlannedDose.key`
(``<entry>/<day>/<round>/<n>``, :mod:`pll.domain.administration.keys`) is its stable
identifier (the planned slot a ``MedicationAdministration`` names). As-needed and ``må
vurderes`` items are ``MedicationRequest`` s without ``timing.event`` (``asNeeded`` true, or
``dosageInstruction[0].text`` with the reason), and a paused list an OperationOutcome-free
Bundle with the pause in a ``List`` entry or extension.
"""

from __future__ import annotations

from pll.domain.administration.schedule import (
    MAX_DAYS,
    MUST_ASSESS,
    AsNeeded,
    Assess,
    DaySchedule,
    Given,
    PlannedDose,
    Schedule,
    Source,
    schedule,
    schedule_list,
)
from pll.domain.administration.slots import (
    DEFAULT_TIMES,
    OSLO,
    PER_DAY_SLOTS,
    WHEN_SLOT,
    Slot,
    day_bounds,
    slot_times,
)

__all__ = [
    "DEFAULT_TIMES",
    "MAX_DAYS",
    "MUST_ASSESS",
    "OSLO",
    "PER_DAY_SLOTS",
    "WHEN_SLOT",
    "AsNeeded",
    "Assess",
    "DaySchedule",
    "Given",
    "PlannedDose",
    "Schedule",
    "Slot",
    "Source",
    "day_bounds",
    "schedule",
    "schedule_list",
    "slot_times",
]
