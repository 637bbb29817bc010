"""The treatment's period: when a medicine is used (``MedicationStatement.effectivePeriod``),
as opposed to how long its prescription is valid (:mod:`pll.domain.prescriptions`).

A start may lie far back (a medicine used for years, put on the list now), not before 1900,
and not more than a year ahead; a stop more than :data:`MAX_TREATMENT_YEARS` ahead is a typing
error (the year 9999): a treatment with no planned end has no stop. The rule holds for every
entry a prescriber adds or whose period changes, at every entry point; what another system
recorded and PLL imports is kept as it was.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pll.domain.errors import InvalidInput
from pll.domain.prescriptions import add_duration

MAX_TREATMENT_YEARS = 10
EARLIEST_START = date(1900, 1, 1)
#: how far ahead a treatment may be planned to start
LATEST_START = "P1Y"

_WHERE = "MedicationStatement.effectivePeriod"


def check_period(start: date | None, stop: date | None, today: date) -> None:
    """Refuse a start before 1900 or more than a year after ``today``, and a stop more than
    :data:`MAX_TREATMENT_YEARS` after ``today`` (each with its Norwegian words)."""
    latest = add_duration(today, LATEST_START)
    if start is not None and not EARLIEST_START <= start <= latest:
        raise InvalidInput(
            f"The treatment's start ({start.isoformat()}) must be from "
            f"{EARLIEST_START.isoformat()} to {latest.isoformat()} (a year from today).",
            f"{_WHERE}.start",
            norwegian="Start: datoen må være etter 1900 og høyst ett år fram i tid.",
        )
    furthest = add_duration(today, f"P{MAX_TREATMENT_YEARS}Y")
    if stop is not None and stop > furthest:
        raise InvalidInput(
            f"The treatment's stop ({stop.isoformat()}) is more than {MAX_TREATMENT_YEARS} "
            f"years ahead (after {furthest.isoformat()}); a treatment with no planned end "
            "has no stop.",
            f"{_WHERE}.end",
            norwegian=(
                f"Stopp: mer enn {MAX_TREATMENT_YEARS} år fram i tid er ikke mulig. La feltet "
                "stå tomt når behandlingen ikke har en planlagt slutt."
            ),
        )


def _first_day(value: Any) -> date | None:
    """The first day a FHIR date or dateTime can mean (``2024`` is 1 January 2024)."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    year, month, day = value[:4], value[5:7] or "01", value[8:10] or "01"
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def check_treatment(content: dict[str, Any], today: date) -> None:
    """:func:`check_period` for an entry's ``effectivePeriod``."""
    period = content.get("effectivePeriod") or {}
    check_period(_first_day(period.get("start")), _first_day(period.get("end")), today)
