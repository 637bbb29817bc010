"""The daily administration schedule made from a list's structured dosages (the model and its
choices are in :mod:`pll.domain.administration`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pll.domain.administration.as_needed import Dose, Maximum, given_in, maximum
from pll.domain.administration.keys import check_day, planned_key
from pll.domain.administration.slots import (
    OSLO,
    PER_DAY_SLOTS,
    WHEN_SLOT,
    Slot,
    local,
    slot_of,
    slot_times,
)
from pll.domain.dosage import dosage_text, time_unit, unit_key
from pll.domain.dosage.words import DAYS
from pll.domain.errors import InvalidInput
from pll.domain.model import IN_USE, Entry, MedicationList, Pause
from pll.domain.multidose import packed_in_multidose
from pll.domain.prescriptions import add_duration

#: The longest range one schedule covers (the issue's bound on a request's work).
MAX_DAYS = 14
#: What a dosage the chart cannot place is marked with, for the nurse to assess.
MUST_ASSESS = "må vurderes"

_WEEKDAYS = tuple(DAYS)  # mon … sun, as date.weekday() counts them


class Source(StrEnum):
    """Where a planned dose is taken from."""

    MULTIDOSE = "multidose"  #: the multidose bag of its round
    PACKAGE = "package"  #: a separate package


@dataclass(frozen=True)
class PlannedDose:
    """One planned administration: an entry's dose in one round of one day."""

    entry_id: str
    entry_version: int
    day: date
    slot: Slot
    #: the local moment it is planned for (aware, in the schedule's time zone)
    at: datetime
    amount: Decimal
    unit: str
    source: Source
    #: the FHIR ``when`` code it comes from; ``None`` for a count a day or every N hours
    when: str | None = None
    #: the dosage step (``Dosage.sequence``) it comes from
    sequence: int | None = None
    #: its ordinal among the entry's doses in this round this day (1, 2, … by time)
    n: int = 1
    #: the amounts of the dosage elements summed into ``amount`` (two elements in one round);
    #: empty when it comes from one element
    parts: tuple[Decimal, ...] = ()

    @property
    def key(self) -> str:
        """What names this planned dose to a recording: entry, day, round and ordinal
        (:mod:`pll.domain.administration.keys`); never the clock time, which is the unit's."""
        return planned_key(self.entry_id, self.day, self.slot, self.n)


@dataclass(frozen=True)
class AsNeeded:
    """An as-needed (``ved behov``) dosage of an entry on one day, with what remains of its
    maximum (:mod:`pll.domain.administration.as_needed`): over the period ending now (for a
    day that ended before now, the period ending at the day's end)."""

    entry_id: str
    entry_version: int
    day: date
    text: str
    amount: Decimal
    unit: str
    #: the most per ``period`` (``maxDosePerPeriod``) and its unit; ``None``: none is stated,
    #: or per a period that is not counted (a month: the maximum is in ``text``)
    daily_max: Decimal | None = None
    max_unit: str | None = None
    given: Decimal = Decimal(0)
    #: ``daily_max`` less what was given in the period, never below zero; ``None`` when there
    #: is no maximum or a given amount was in a unit that cannot be counted against it
    remaining: Decimal | None = None
    #: the maximum's period (24 hours for ``per døgn``)
    period: timedelta | None = None


@dataclass(frozen=True)
class Assess:
    """An entry the chart does not plan (``må vurderes``): its dosage text and why."""

    entry_id: str
    entry_version: int
    day: date
    text: str
    reason: str


@dataclass(frozen=True)
class Given:
    """An amount already given of an entry (for the remaining as-needed maximum)."""

    entry_id: str
    at: datetime
    amount: Decimal
    unit: str


@dataclass(frozen=True)
class DaySchedule:
    """One local day of the chart."""

    day: date
    doses: tuple[PlannedDose, ...] = ()
    as_needed: tuple[AsNeeded, ...] = ()
    assess: tuple[Assess, ...] = ()
    #: entries in use but paused (``on-hold``): nothing is planned from them
    paused_entries: tuple[str, ...] = ()


@dataclass(frozen=True)
class Schedule:
    """The chart for a range of days; ``paused`` set means the whole list is paused and
    nothing is planned."""

    first: date
    last: date
    days: tuple[DaySchedule, ...]
    paused: Pause | None = None
    slots: Mapping[Slot, time] = field(default_factory=dict)


def schedule(
    entries: Iterable[Entry],
    first: date,
    last: date | None = None,
    *,
    paused: Pause | None = None,
    slots: Mapping[Slot | str, time] | None = None,
    tz: ZoneInfo = OSLO,
    given: Iterable[Given] = (),
    now: datetime | None = None,
) -> Schedule:
    """The planned administrations of ``entries`` on each local day from ``first`` to
    ``last`` (inclusive; ``last`` defaults to ``first``).

    Only entries in use are planned: ``active`` ones; ``on-hold`` ones are named as paused;
    others are left out. ``paused`` (the list's Pause PLL) plans nothing and says so.
    ``given`` is what has been given so far (only as-needed entries' amounts matter): an
    as-needed item's ``remaining`` is over the period ending at ``now`` (or at the end of a
    day that ended before ``now``; at the day's end when ``now`` is not given).
    Raises ``InvalidInput``: ``last`` before ``first`` or more than :data:`MAX_DAYS` days
    (at ``end``), a day outside 1900–2999 (at ``date``), a bad slot table (at
    ``slots.<slot>``). The work is linear in entries × days.
    """
    last = first if last is None else last
    _check_range(first, last)
    times = slot_times(slots)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    if paused is not None:
        return Schedule(first, last, tuple(DaySchedule(d) for d in days), paused, times)
    plans = [_EntryPlan.of(entry, tz) for entry in entries if entry.status in IN_USE]
    counted = _given_by_entry(given)
    out = []
    for day in days:
        doses: list[PlannedDose] = []
        as_needed: list[AsNeeded] = []
        assess: list[Assess] = []
        on_hold: list[str] = []
        for plan in plans:
            if plan.entry.status == "on-hold":
                on_hold.append(plan.entry.id)
                continue
            plan.add_day(day, times, tz, (counted, now), doses, as_needed, assess)
        doses.sort(key=lambda d: (d.at, d.entry_id))
        out.append(DaySchedule(day, tuple(doses), tuple(as_needed), tuple(assess), tuple(on_hold)))
    return Schedule(first, last, tuple(out), None, times)


def schedule_list(
    medication_list: MedicationList, first: date, last: date | None = None, **options: Any
) -> Schedule:
    """:func:`schedule` of a PLL: its entries and its pause."""
    return schedule(
        medication_list.entries.values(), first, last, paused=medication_list.pause, **options
    )


def _check_range(first: date, last: date) -> None:
    check_day(first, "date")
    check_day(last, "end")
    if last < first:
        raise InvalidInput(
            f"The end ({last.isoformat()}) is before the start ({first.isoformat()}).",
            "end",
            norwegian="Sluttdatoen er før startdatoen.",
        )
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidInput(
            f"A schedule covers at most {MAX_DAYS} days; {first.isoformat()} to "
            f"{last.isoformat()} is {(last - first).days + 1}.",
            "end",
            norwegian=f"En plan kan gjelde høyst {MAX_DAYS} dager.",
        )


def _given_by_entry(given: Iterable[Given]) -> dict[str, list[Dose]]:
    out: dict[str, list[Dose]] = {}
    for record in given:
        out.setdefault(record.entry_id, []).append(Dose(record.at, record.amount, record.unit))
    return out


# --- one entry --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    """One structured ``Dosage`` element, read once for every day."""

    sequence: int | None
    amount: Decimal
    unit: str
    as_needed: bool
    when: tuple[str, ...]
    frequency: int
    period: Decimal | None
    period_unit: str | None
    weekdays: tuple[int, ...]
    most: Maximum | None


@dataclass(frozen=True)
class _Step:
    """The rules of one dosage step and the local days it covers: [start, end)."""

    rules: tuple[_Rule, ...]
    start: date | None
    end: date | None


@dataclass
class _EntryPlan:
    entry: Entry
    text: str
    source: Source
    steps: tuple[_Step, ...] = ()
    begins: datetime | date | None = None
    ends: datetime | date | None = None
    #: why the chart cannot place this entry at all; ``None`` when it can
    unplaceable: str | None = None

    @classmethod
    def of(cls, entry: Entry, tz: ZoneInfo) -> _EntryPlan:
        dosage = entry.content.get("dosage") or []
        source = Source.MULTIDOSE if packed_in_multidose(entry.content) else Source.PACKAGE
        period = entry.content.get("effectivePeriod") or {}
        begins, ends = _moment(period.get("start"), tz), _moment(period.get("end"), tz)
        plan = cls(entry, "", source, begins=begins, ends=ends)
        try:
            plan.text = dosage_text(dosage)
        except InvalidInput:
            plan.text = _raw_text(dosage)
            plan.unplaceable = "doseringen kan ikke leses"
            return plan
        if len(dosage) == 1 and not _structured(dosage[0]):
            plan.unplaceable = "doseringen er fritekst"
            return plan
        start = _day(begins)
        try:
            plan.steps = _steps(dosage, start)
            for step in plan.steps:
                for rule in step.rules:
                    _check_placeable(rule, step.start)
        except _Unplaceable as why:
            plan.unplaceable = str(why)
        return plan

    def add_day(
        self,
        day: date,
        times: Mapping[Slot, time],
        tz: ZoneInfo,
        given: tuple[Mapping[str, list[Dose]], datetime | None],
        doses: list[PlannedDose],
        as_needed: list[AsNeeded],
        assess: list[Assess],
    ) -> None:
        entry = self.entry
        first, last = _day(self.begins), _day(self.ends)
        if (first is not None and day < first) or (last is not None and day > last):
            return
        if self.unplaceable is not None:
            assess.append(Assess(entry.id, entry.version, day, self.text, self.unplaceable))
            return
        step = next((s for s in self.steps if _covers(s, day)), None)
        if step is None:
            return
        records, now = given
        end = local(day + timedelta(days=1), time(0), tz)
        until = end if now is None else min(now, end)
        rounds: dict[Slot, list[tuple[int, datetime, _Rule, str | None]]] = {}
        for index, rule in enumerate(step.rules):
            if rule.as_needed:
                as_needed.append(self._as_needed(rule, day, records.get(entry.id, []), until))
                continue
            for slot, at, when in _occurrences(rule, step.start, day, times, tz):
                if self._within(at):
                    rounds.setdefault(slot, []).append((index, at, rule, when))
        planned: list[PlannedDose] = []
        for slot, found in rounds.items():
            made = self._round(day, slot, found)
            if isinstance(made, str):  # never guessed: the whole day of the entry is assessed
                assess.append(Assess(entry.id, entry.version, day, self.text, made))
                return
            planned.extend(made)
        doses.extend(planned)

    def _round(
        self, day: date, slot: Slot, found: list[tuple[int, datetime, _Rule, str | None]]
    ) -> list[PlannedDose] | str:
        """The entry's planned doses of one round: one per occurrence of a single dosage
        element (numbered by time); the elements landing in one round at one moment summed
        into one dose. Else the reason the day must be assessed."""
        entry = self.entry
        found.sort(key=lambda f: (f[1].astimezone(UTC), f[0]))
        if len({index for index, *_ in found}) == 1:
            out = []
            for n, (_, at, rule, when) in enumerate(found, start=1):
                out.append(
                    PlannedDose(
                        entry.id,
                        entry.version,
                        day,
                        slot,
                        at,
                        rule.amount,
                        rule.unit,
                        self.source,
                        when,
                        rule.sequence,
                        n,
                    )
                )
            return out
        units = {unit_key(rule.unit) for _, _, rule, _ in found}
        if len(units) > 1:
            return f"to doseringer i {slot} med ulike enheter"
        moments = {at.astimezone(UTC) for _, at, _, _ in found}
        if len(moments) > 1 or len(found) != len({index for index, *_ in found}):
            return f"to doseringer i {slot} til ulike klokkeslett"
        _, at, first, when = found[0]
        parts = tuple(rule.amount for _, _, rule, _ in found)
        codes = {w for *_, w in found}
        summed = PlannedDose(
            entry.id, entry.version, day, slot, at, sum(parts, Decimal(0)), first.unit,
            self.source, when if len(codes) == 1 else None, first.sequence, 1, parts,
        )  # fmt: skip
        return [summed]

    def _within(self, at: datetime) -> bool:
        # in UTC: aware datetimes of one time zone compare by their clock, not their moment
        moment = at.astimezone(UTC)
        if isinstance(self.begins, datetime) and moment < self.begins.astimezone(UTC):
            return False
        return not (isinstance(self.ends, datetime) and moment > self.ends.astimezone(UTC))

    def _as_needed(self, rule: _Rule, day: date, records: list[Dose], until: datetime) -> AsNeeded:
        entry = self.entry
        most = rule.most
        if most is None:
            return AsNeeded(entry.id, entry.version, day, self.text, rule.amount, rule.unit)
        total, countable = given_in(most, records, until)
        remaining = max(most.amount - total, Decimal(0)) if countable else None
        return AsNeeded(
            entry.id, entry.version, day, self.text, rule.amount, rule.unit, most.amount,
            most.unit, total, remaining, most.period,
        )  # fmt: skip


class _Unplaceable(Exception):
    """A structured dosage whose days or rounds the chart cannot know without guessing."""


def _steps(dosage: Sequence[Mapping[str, Any]], start: date | None) -> tuple[_Step, ...]:
    by_sequence: dict[int, list[Mapping[str, Any]]] = {}
    for element in dosage:
        by_sequence.setdefault(element.get("sequence") or 0, []).append(element)
    steps = []
    begins = start
    ordered = sorted(by_sequence.items())
    for _, elements in ordered:
        rules = tuple(_rule(e) for e in elements)
        bounds = _repeat(elements[0]).get("boundsDuration")
        if bounds is None:
            steps.append(_Step(rules, begins, None))
            break
        if begins is None:
            raise _Unplaceable("doseringen har trinn eller varighet, men ingen startdato")
        ends = _after(begins, bounds)
        steps.append(_Step(rules, begins, ends))
        begins = ends
    return tuple(steps)


def _after(start: date, bounds: Mapping[str, Any]) -> date:
    value = Decimal(str(bounds["value"]))
    unit = time_unit(str(bounds.get("code") or bounds.get("unit") or "")) or "d"
    if unit == "mo" and value == value.to_integral_value():
        return add_duration(start, f"P{int(value)}M")
    days = value * {"h": Decimal(1) / 24, "d": Decimal(1), "wk": Decimal(7)}.get(unit, Decimal(1))
    if days != days.to_integral_value():
        raise _Unplaceable("varigheten er ikke et helt antall dager")
    return start + timedelta(days=int(days))


def _rule(element: Mapping[str, Any]) -> _Rule:
    quantity = element["doseAndRate"][0]["doseQuantity"]
    repeat = _repeat(element)
    period = repeat.get("period")
    as_needed = bool(element.get("asNeededBoolean")) or "asNeededCodeableConcept" in element
    return _Rule(
        sequence=element.get("sequence"),
        amount=_decimal(quantity["value"]),
        unit=str(quantity.get("unit") or quantity.get("code")),
        as_needed=as_needed,
        when=tuple(repeat.get("when") or ()),
        frequency=int(repeat.get("frequency") or len(repeat.get("dayOfWeek") or ()) or 1),
        period=None if period is None else _decimal(period),
        period_unit=repeat.get("periodUnit"),
        weekdays=tuple(_WEEKDAYS.index(d) for d in repeat.get("dayOfWeek") or ()),
        most=maximum(element, str(quantity.get("unit") or quantity.get("code")))
        if as_needed
        else None,
    )


def _check_placeable(rule: _Rule, start: date | None) -> None:
    """Refuse to place what would need a guess: which days of a week or month an
    N-times-a-week dose falls on, a count too large for the rounds, or the days of an
    interval with no start to count from."""
    if rule.as_needed:
        return
    unit, period = rule.period_unit, rule.period or Decimal(1)
    if unit in ("wk", "mo") and not rule.weekdays and not rule.when and rule.frequency > 1:
        raise _Unplaceable("doseringen sier ikke hvilke dager dosene skal gis")
    if not (rule.when or rule.weekdays) and unit != "h" and rule.frequency not in PER_DAY_SLOTS:
        raise _Unplaceable("doseringen har flere doser per dag enn kurven har tidspunkter")
    needs_start = (
        (unit == "d" and period > 1)
        or (unit in ("wk", "mo") and not rule.weekdays)
        or (unit == "wk" and rule.weekdays and period > 1)
        or (unit == "h" and 24 % period != 0)
    )
    if needs_start and start is None:
        raise _Unplaceable("doseringen har et intervall, men ingen startdato å telle fra")


def _occurrences(
    rule: _Rule, start: date | None, day: date, times: Mapping[Slot, time], tz: ZoneInfo
) -> list[tuple[Slot, datetime, str | None]]:
    """The rounds (with their moments and ``when`` codes) of a rule on ``day``; none when
    ``day`` is not one of its dosing days."""
    unit, period = rule.period_unit, int(rule.period or 1)
    if unit == "h":
        return _hourly(period, start, day, times, tz)
    if not _dosing_day(rule, unit, period, start, day):
        return []
    slots: list[tuple[Slot, str | None]]
    if rule.when:
        slots = [(WHEN_SLOT[code], code) for code in rule.when]
    else:
        slots = [(slot, None) for slot in PER_DAY_SLOTS[rule.frequency if not rule.weekdays else 1]]
    return [(slot, local(day, times[slot], tz), code) for slot, code in slots]


def _dosing_day(rule: _Rule, unit: str | None, period: int, start: date | None, day: date) -> bool:
    if rule.weekdays:
        return _weekday_due(rule.weekdays, period, start, day)
    if unit is None or (unit == "d" and period == 1):
        return True
    if start is None:  # _check_placeable has made it unplaceable; never reached
        return False
    if unit == "mo":
        months = (day.year - start.year) * 12 + day.month - start.month
        return months >= 0 and months % period == 0 and add_duration(start, f"P{months}M") == day
    length = period * (7 if unit == "wk" else 1)
    return (day - start).days % length == 0


def _weekday_due(weekdays: tuple[int, ...], period: int, start: date | None, day: date) -> bool:
    """A named weekday, in the start's week or every ``period`` th week after it."""
    if day.weekday() not in weekdays:
        return False
    if period == 1 or start is None:
        return True
    monday, first_monday = day - timedelta(days=day.weekday()), start - timedelta(start.weekday())
    return (monday - first_monday).days // 7 % period == 0


def _hourly(
    hours: int, start: date | None, day: date, times: Mapping[Slot, time], tz: ZoneInfo
) -> list[tuple[Slot, datetime, str | None]]:
    """Every ``hours`` hours by the local clock, from the first round's time on the day the
    dosage starts (on every day alike when ``hours`` divides 24)."""
    first = times[Slot.MORGEN]
    anchor = datetime.combine(start if start is not None and 24 % hours else day, first)
    midnight = datetime.combine(day, time(0))
    step = timedelta(hours=hours)
    k = math.ceil((midnight - anchor) / step)
    if start is not None and day <= start:
        k = max(0, k)  # the treatment starts with the first round of its first day
    out: dict[datetime, tuple[Slot, datetime, str | None]] = {}
    moment = anchor + k * step
    while moment.date() == day:
        at = local(day, moment.time(), tz)
        # an hour the spring change skips has no dose of its own: moved on, it would double
        # the next hour's
        out.setdefault(at.astimezone(UTC), (slot_of(moment.time(), times), at, None))
        moment += step
    return list(out.values())


# --- reading --------------------------------------------------------------------------------


def _covers(step: _Step, day: date) -> bool:
    return (step.start is None or step.start <= day) and (step.end is None or day < step.end)


def _structured(element: Mapping[str, Any]) -> bool:
    return any(
        key in element
        for key in ("timing", "doseAndRate", "asNeededBoolean", "asNeededCodeableConcept")
    )


def _repeat(element: Mapping[str, Any]) -> Mapping[str, Any]:
    return (element.get("timing") or {}).get("repeat") or {}


def _decimal(raw: Any) -> Decimal:
    return Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)


def _raw_text(dosage: Any) -> str:
    if isinstance(dosage, list):
        texts = [e.get("text") for e in dosage if isinstance(e, Mapping)]
        return " ".join(t for t in texts if isinstance(t, str)) or "(ingen dosering)"
    return "(ingen dosering)"


def _moment(raw: Any, tz: ZoneInfo) -> datetime | date | None:
    """A FHIR date (a whole local day) or dateTime (a moment) of the treatment's period."""
    if not isinstance(raw, str) or len(raw) < 4:
        return None
    try:
        if "T" in raw:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            return moment.astimezone(tz) if moment.tzinfo else moment.replace(tzinfo=tz)
        return date(int(raw[:4]), int(raw[5:7] or 1), int(raw[8:10] or 1))
    except (ValueError, OverflowError):  # a day the time zone cannot reach (year 1)
        return None


def _day(value: datetime | date | None) -> date | None:
    return value.date() if isinstance(value, datetime) else value
