"""A ``Dosage.timing`` as text: fixed times of day, intervals, weekdays and the length of a
step (``timing.repeat.boundsDuration``), refusing what the text could not say exactly (the
conventions are in :mod:`pll.domain.dosage`; FHIR R4 ``Timing``:
https://hl7.org/fhir/R4/datatypes.html#Timing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pll.domain.dosage.values import (
    HOW_TO_FALL_BACK,
    IGNORED,
    UCUM_SYSTEM,
    check_keys,
    number,
    quantity,
)
from pll.domain.dosage.words import (
    DAYS,
    TIME_UNIT_ALIASES,
    TIME_UNITS,
    WHEN,
    format_number,
    join,
)
from pll.domain.errors import InvalidInput

# The rest of FHIR R4 EventTiming, so that a valid but unsupported code gets a precise message.
_OTHER_EVENT_TIMING = frozenset(
    {
        "MORN.early", "MORN.late", "AFT.early", "AFT.late", "EVE.early", "EVE.late", "PHS",
        "WAKE", "C", "CM", "CD", "CV", "AC", "ACM", "ACD", "ACV", "PC", "PCM", "PCD", "PCV",
    }
)  # fmt: skip
_UNSUPPORTED_PERIOD_UNITS = frozenset({"s", "min", "a"})
_TIMING_KEYS = frozenset({"repeat"}) | IGNORED
_TIMING_UNSUPPORTED = frozenset({"event", "code", "modifierExtension"})
_REPEAT_KEYS = (
    frozenset({"when", "frequency", "period", "periodUnit", "boundsDuration", "dayOfWeek"})
    | IGNORED
)
_REPEAT_UNSUPPORTED = frozenset(
    {
        "boundsRange", "boundsPeriod", "count", "countMax", "duration", "durationMax",
        "durationUnit", "frequencyMax", "periodMax", "timeOfDay", "offset",
    }
)  # fmt: skip


def timing(raw: Any, where: str, as_needed: bool) -> tuple[tuple[str, ...], str, str]:
    """The element's times of day, interval phrase and bounds phrase."""
    if raw is None:
        if not as_needed:
            raise InvalidInput(
                "The dosage says how much but not when: give timing.repeat with when or "
                "frequency/period/periodUnit, or mark it as needed.",
                where,
            )
        return (), "", ""
    check_keys(raw, where, "Timing", _TIMING_KEYS, _TIMING_UNSUPPORTED)
    repeat = raw.get("repeat")
    where = f"{where}.repeat"
    if repeat is None:
        raise InvalidInput("The timing has no repeat: say when the dose is taken.", where)
    check_keys(repeat, where, "Timing.repeat", _REPEAT_KEYS, _REPEAT_UNSUPPORTED)
    times = _when(repeat.get("when"), f"{where}.when")
    interval = _interval(repeat, where, times)
    if not times and not interval and not as_needed:
        raise InvalidInput(
            "The dosage says how much but not when: give when or frequency/period/periodUnit, "
            "or mark it as needed.",
            where,
        )
    bounds = ""
    if "boundsDuration" in repeat:
        bounds = bounds_text(repeat["boundsDuration"], f"{where}.boundsDuration")
    return times, interval, bounds


def _when(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("when must be a non-empty array of time-of-day codes.", where)
    seen: list[str] = []
    for k, code in enumerate(raw):
        if not isinstance(code, str):
            raise InvalidInput("A when code must be a string.", f"{where}[{k}]")
        if code in seen:
            raise InvalidInput(f"The when code {code} is given twice.", f"{where}[{k}]")
        if code in _OTHER_EVENT_TIMING:
            raise InvalidInput(
                f"The when code {code} cannot be written as dosage text; use MORN, NOON, AFT, "
                f"EVE, HS or NIGHT, or {HOW_TO_FALL_BACK}.",
                f"{where}[{k}]",
            )
        if code not in WHEN:
            raise InvalidInput(
                f"Unknown when code {code!r}; use MORN, NOON, AFT, EVE, HS or NIGHT.",
                f"{where}[{k}]",
            )
        seen.append(code)
    return tuple(sorted(seen, key=lambda code: WHEN[code][0]))


def _interval(repeat: Mapping[str, Any], where: str, times: tuple[str, ...]) -> str:
    """The interval phrase with a leading space, or "" (daily at fixed times, or no interval)."""
    frequency = _frequency(repeat.get("frequency"), f"{where}.frequency")
    period = _period(repeat.get("period"), f"{where}.period")
    unit = _period_unit(repeat.get("periodUnit"), f"{where}.periodUnit")
    if period is None and unit is not None:
        raise InvalidInput("periodUnit is given without period.", f"{where}.period")
    if period is not None and unit is None:
        raise InvalidInput("period is given without periodUnit.", f"{where}.periodUnit")
    days = _days(repeat.get("dayOfWeek"), f"{where}.dayOfWeek")
    if days:
        return _weekly(days, frequency, period, unit, where, times)
    if times:
        if frequency is not None and frequency != len(times):
            raise InvalidInput(
                f"With when, frequency counts the times of day: it must be {len(times)} or be "
                "left out.",
                f"{where}.frequency",
            )
        if period is None or unit is None or (unit == "d" and period == 1):
            return ""
        if unit == "h":
            raise InvalidInput(
                "Fixed times of day (when) cannot repeat every few hours; use periodUnit d, wk "
                "or mo, or drop when.",
                f"{where}.periodUnit",
            )
        return f" {_every(1, period, unit)}"
    if period is None or unit is None:
        if frequency is not None:
            raise InvalidInput(
                "frequency needs period and periodUnit (for example 3 per 1 d).", f"{where}.period"
            )
        return ""
    if unit == "h" and frequency not in (None, 1):
        raise InvalidInput(
            "With periodUnit h, frequency must be 1: write every N hours as period N.",
            f"{where}.frequency",
        )
    return f" {_every(frequency or 1, period, unit)}"


def _days(raw: Any, where: str) -> tuple[str, ...]:
    """The days of ``dayOfWeek`` in the order of the week (none when it is absent)."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("dayOfWeek must be a non-empty array of day codes (mon … sun).", where)
    seen: list[str] = []
    for k, code in enumerate(raw):
        if not isinstance(code, str) or code not in DAYS:
            raise InvalidInput(
                f"Unknown dayOfWeek code {code!r}; use mon, tue, wed, thu, fri, sat or sun.",
                f"{where}[{k}]",
            )
        if code in seen:
            raise InvalidInput(f"The day {code} is given twice.", f"{where}[{k}]")
        seen.append(code)
    order = list(DAYS)
    return tuple(sorted(seen, key=order.index))


def _weekly(
    days: tuple[str, ...],
    frequency: int | None,
    period: int | None,
    unit: str | None,
    where: str,
    times: tuple[str, ...],
) -> str:
    """The interval phrase of a dose taken on named weekdays: `` 1 gang i uken (mandag)``."""
    if times:
        # "morgen" and "mandag" together would need a count per day and per time; the text
        # could not say how many doses a week without guessing
        raise InvalidInput(
            "dayOfWeek cannot be combined with when; give the weekdays with frequency/period/"
            f"periodUnit wk, or {HOW_TO_FALL_BACK}.",
            f"{where}.dayOfWeek",
        )
    if period is None or unit != "wk":
        raise InvalidInput(
            "dayOfWeek needs a weekly interval: period 1 (or more) with periodUnit wk.",
            f"{where}.periodUnit" if period is not None else f"{where}.period",
        )
    if frequency is not None and frequency != len(days):
        raise InvalidInput(
            f"With dayOfWeek, frequency counts the days: it must be {len(days)} or be left out.",
            f"{where}.frequency",
        )
    named = join(DAYS[code] for code in days)
    return f" {_every(len(days), period, unit)} ({named})"


def _every(frequency: int, period: int, unit: str) -> str:
    if unit == "h":
        return "hver time" if period == 1 else f"hver {period}. time"
    times = "1 gang" if frequency == 1 else f"{frequency} ganger"
    if period == 1:
        if unit == "d":
            return "daglig" if frequency == 1 else f"{times} daglig"
        return f"{times} i {'uken' if unit == 'wk' else 'måneden'}"
    noun = TIME_UNITS[unit][0]
    every = f"annenhver {noun}" if period == 2 else f"hver {period}. {noun}"
    return every if frequency == 1 else f"{times} {every}"


def _frequency(raw: Any, where: str) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise InvalidInput("frequency must be a whole number of at least 1.", where)
    return raw


def _period(raw: Any, where: str) -> int | None:
    if raw is None:
        return None
    value = number(raw, where, "period")
    if value <= 0:
        raise InvalidInput(f"period must be greater than zero; got {format_number(value)}.", where)
    if value != value.to_integral_value():
        raise InvalidInput(
            f"period must be a whole number to be written as text; got "
            f"{format_number(value)}. Use a smaller periodUnit.",
            where,
        )
    return int(value)


def _period_unit(raw: Any, where: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidInput("periodUnit must be a string such as d or h.", where)
    if raw in _UNSUPPORTED_PERIOD_UNITS:
        raise InvalidInput(
            f"periodUnit {raw} cannot be written as dosage text; use h, d, wk or mo.", where
        )
    if raw not in TIME_UNITS:
        raise InvalidInput(f"Unknown periodUnit {raw!r}; use h, d, wk or mo (UCUM).", where)
    return raw


def time_unit(raw: Mapping[str, Any], where: str, what: str) -> str:
    """The UCUM code h, d, wk or mo of a duration Quantity, from its code or else its unit."""
    code = raw.get("code")
    system = raw.get("system", UCUM_SYSTEM)
    if isinstance(code, str) and code.strip() and system == UCUM_SYSTEM:
        spelled, at = code.strip(), f"{where}.code"
    else:
        unit = raw.get("unit")
        spelled, at = (unit.strip() if isinstance(unit, str) else ""), f"{where}.unit"
    resolved = TIME_UNIT_ALIASES.get(spelled.lower())
    if resolved is None:
        raise InvalidInput(
            f"The {what} needs a time unit: UCUM code h, d, wk or mo, or the unit time, dag, "
            f"døgn, uke or måned; got {spelled!r}.",
            at,
        )
    return resolved


def bounds_text(raw: Any, where: str) -> str:
    value, _ = quantity(raw, where, "boundsDuration")
    unit = time_unit(raw, where, "boundsDuration")
    singular, plural = TIME_UNITS[unit]
    return f" i {format_number(value)} {plural if value > 1 else singular}"
