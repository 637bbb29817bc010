"""The schedule with the unit's clock times and what was given (issue 17): the part of
``GET List/{id}/$administration-schedule`` that reads the care unit's settings and the
records of the schedule's days (one query each, whatever the number of doses).

- **Clock times.** The rounds are those of the unit the caller acts for when the patient
  is registered there, day by day as they applied then
  (:func:`pll.services.unit_settings.periods`); anyone else gets the defaults.
- **Given.** The records that stand (not entered in error) count: an as-needed dosage's
  ``given`` is the sum of its completed records in the maximum's period ending ``now`` (or
  at the end of a day already past), ``remaining`` what is left of the maximum — what may
  be given now; each planned dose with a standing record is marked with it
  (:func:`pll.fhir.administration_records.mark_recorded`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Row

from pll.auth.access import Access
from pll.domain.administration import (
    OSLO,
    DaySchedule,
    Schedule,
    day_bounds,
    schedule,
    schedule_list,
)
from pll.domain.administration.as_needed import LONGEST
from pll.domain.model import MedicationList
from pll.services.unit_settings import periods
from pll.store import administrations as ma_store
from pll.store import unit_settings as store


def planned(
    conn: Connection,
    access: Access,
    lst: MedicationList,
    first: date,
    last: date,
    now: datetime,
) -> tuple[Schedule, Sequence[Row[Any]]]:
    """The schedule of ``lst`` from ``first`` to ``last`` with the caller's unit's clock
    times and what was given, and the records that stand of those days (for the marks).
    Refused as the domain's schedule is: a backwards range or one over 14 days."""
    schedule((), first, last)  # the range's rules, before anything is read
    records = store.standing_records(conn, lst.patient_id, first, last)
    # as-needed maxima count over a rolling period that may begin before the first day
    begins, _ = day_bounds(first, OSLO)
    ends = min(now, day_bounds(last, OSLO)[1])
    given = ma_store.given_between(conn, begins - LONGEST, ends, patient_id=lst.patient_id)
    days: list[DaySchedule] = []
    parts = periods(conn, access, lst.patient_id, first, last)
    for start, end, settings in parts:
        part = schedule_list(lst, start, end, slots=settings.times, given=given, now=now)
        days.extend(part.days)
    result = Schedule(first, last, tuple(days), lst.pause, parts[0][2].times)
    return result, records
