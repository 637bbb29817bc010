"""The schedule with the unit's clock times and what was given (issue 17): the part of
``GET List/{id}/$administration-schedule`` that reads the care unit's settings and the
records of the schedule's days (one query each, whatever the number of doses).

- **Clock times.** The rounds are those of the unit the caller acts for when the patient
  is registered there, day by day as they applied then
  (:func:`pll.services.unit_settings.periods`); anyone else gets the defaults.
- **Given.** The records that stand (not entered in error) count: an as-needed dosage's
  ``given`` is the sum of its completed records of the day, ``remaining`` what is left of
  the daily maximum; each planned dose with a standing record is marked with it
  (:func:`pll.fhir.administration_records.mark_recorded`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row

from pll.auth.access import Access
from pll.domain.administration import DaySchedule, Given, Schedule, schedule, schedule_list
from pll.domain.administration.records import Status
from pll.domain.model import MedicationList
from pll.services.unit_settings import periods
from pll.store import unit_settings as store


def planned(
    conn: Connection, access: Access, lst: MedicationList, first: date, last: date
) -> tuple[Schedule, Sequence[Row[Any]]]:
    """The schedule of ``lst`` from ``first`` to ``last`` with the caller's unit's clock
    times and what was given, and the records that stand of those days (for the marks).
    Refused as the domain's schedule is: a backwards range or one over 14 days."""
    schedule((), first, last)  # the range's rules, before anything is read
    records = store.standing_records(conn, lst.patient_id, first, last)
    given = [
        Given(r.entry_id, r.effective_at, Decimal(r.amount), r.unit or "")
        for r in records
        if r.status == Status.COMPLETED.value and r.amount is not None
    ]
    days: list[DaySchedule] = []
    parts = periods(conn, access, lst.patient_id, first, last)
    for start, end, settings in parts:
        part = schedule_list(lst, start, end, slots=settings.times, given=given)
        days.extend(part.days)
    result = Schedule(first, last, tuple(days), lst.pause, parts[0][2].times)
    return result, records
