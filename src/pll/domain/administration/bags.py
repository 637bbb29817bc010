"""The multidose bag of each round, held against the list as it stands (issue 17). Pure
rules, no I/O.

A multidose pharmacy packs each round's medicines in a bag and reports what it packed
(M25.3: :class:`PackingReport`): for which period, from which list version, and per entry
the first and last dose packed. The nurse gives from the list, not from the bag, so the
chart says for each planned dose of the schedule (:func:`bags`):

- **in the bag** (:attr:`Place.BAG`): the round's bag holds the entry, as the report
  covers it on that day and round;
- **given separately** (:attr:`Place.SEPARATE`): from a package — the entry is not marked
  packed on the list, or it is but no bag holds it;

and flags (:class:`Flag`) each place where bag and list differ, with a Norwegian text for
the nurse (``"Posen stemmer ikke med listen: …"``):

- :attr:`Flag.CHANGED`: the entry changed after packing — the bag holds another amount,
  unit or medicine than the list now plans in that round, or the list now plans the entry
  in a round whose bag does not hold it;
- :attr:`Flag.REMOVE`: the bag holds an entry the list no longer plans in that round —
  paused, discontinued, gone from the list, moved to another round, or now given from a
  package: take it out of the bag;
- :attr:`Flag.NOT_IN_REPORT`: the entry is marked packed, but the report that the round's
  bag comes from does not cover it (not named, or not on that day);
- :attr:`Flag.NO_REPORT`: the entry is marked packed, but no packing report covers that
  round at all.

**What was packed.** A report names the list version it was packed from; the entry as
packed (:attr:`PackedLine.packed`) is the entry's newest version at or before that list
version, found by the caller. The bag's contents are what that version planned for the
round (the same planning as the schedule: :func:`pll.domain.administration.schedule`),
where the round's moment lies within the line's first and last dose. So a change that does
not touch what is given (a note, an indication) does not flag the bag, and a change of the
evening dose flags only the evening bags. When the packed version is not known (a report
brought in from SFM names no list version), the current entry stands for it and the bag is
flagged changed when the entry's last change came after the report.

**Which report.** The bag of a round comes from the newest report (by the time it was
sent) whose period holds the round's moment: a report sent later for the same days is a
repacking that replaces the bags before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pll.domain.administration.schedule import (
    MUST_ASSESS,
    PlannedDose,
    Schedule,
    Source,
    schedule,
)
from pll.domain.administration.slots import OSLO, Slot, local
from pll.domain.model import IN_USE, Entry

#: Every text to the nurse starts so.
MISMATCH = "Posen stemmer ikke med listen"


class Place(StrEnum):
    """Where the nurse takes a planned dose from."""

    BAG = "in-bag"  #: the round's multidose bag
    SEPARATE = "separate"  #: a separate package


class Flag(StrEnum):
    """How the bag of a round and the list differ."""

    CHANGED = "changed-after-packing"
    REMOVE = "remove-from-bag"
    NOT_IN_REPORT = "not-in-report"
    NO_REPORT = "no-report"


@dataclass(frozen=True)
class PackedLine:
    """One entry of a packing report: packed from its ``first`` to its ``last`` dose."""

    entry_id: str
    first: datetime
    last: datetime
    #: the entry as it was packed (its version at the report's list version); ``None``
    #: when that is not known
    packed: Entry | None = None
    dispense_id: str | None = None


@dataclass(frozen=True)
class PackingReport:
    """A pharmacy's packing report (M25.3) as the chart reads it."""

    id: str
    sent_at: datetime
    start: datetime
    end: datetime
    lines: tuple[PackedLine, ...]
    #: the list version it was packed from, when the report says
    list_version: int | None = None

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment <= self.end


@dataclass(frozen=True)
class DoseBag:
    """Where one planned dose is taken from, the report its round's bag comes from (if
    any) and how bag and list differ for it."""

    place: Place
    report: PackingReport | None
    flags: tuple[Flag, ...] = ()


@dataclass(frozen=True)
class Mismatch:
    """One difference between a round's bag and the list, for the nurse."""

    flag: Flag
    entry_id: str
    day: date
    slot: Slot
    text: str
    report_id: str | None
    #: the planned dose it concerns (:attr:`PlannedDose.key`); ``None`` when the bag holds
    #: what the list no longer plans in that round
    dose_key: str | None = None
    #: ``text`` without the round and day (what to do, for a notice naming several days)
    what: str = ""


@dataclass(frozen=True)
class Bags:
    """The bags of a schedule: per planned dose (by :attr:`PlannedDose.key`) and the
    differences, in day and round order."""

    doses: Mapping[str, DoseBag]
    mismatches: tuple[Mismatch, ...]


NONE = Bags({}, ())

#: amounts by unit, as a round's bag holds them or the list plans them
_Amounts = dict[str, Decimal]


def bags(
    result: Schedule,
    entries: Mapping[str, Entry],
    reports: Iterable[PackingReport],
    tz: ZoneInfo = OSLO,
) -> Bags:
    """The bag of each planned dose of ``result`` (the schedule of the list whose entries
    are ``entries``), from the packing ``reports``. A paused list plans nothing and has no
    bags to give from; a patient with no report and no entry marked packed has nothing to
    say. The work is linear in the reports' lines × days plus the planned doses."""
    found = [r for r in reports if _overlaps(r, result, tz)]
    planned = [d for day in result.days for d in day.doses]
    if result.paused is not None or (
        not found and all(d.source is Source.PACKAGE for d in planned)
    ):
        return NONE
    contents = {r.id: _contents(r, entries, result, tz) for r in found}
    newest_first = sorted(found, key=lambda r: r.sent_at, reverse=True)
    doses: dict[str, DoseBag] = {}
    mismatches: list[Mismatch] = []
    for day in result.days:
        current: dict[tuple[str, Slot], list[PlannedDose]] = {}
        for dose in day.doses:
            current.setdefault((dose.entry_id, dose.slot), []).append(dose)
        for slot in Slot:
            moment = local(day.day, result.slots[slot], tz)
            report = next((r for r in newest_first if r.holds(moment)), None)
            bag = contents[report.id].get((day.day, slot), {}) if report else {}
            for (entry_id, at), group in current.items():
                if at is not slot:
                    continue
                judged = _judge(entries[entry_id], group, report, bag.get(entry_id))
                for dose in group:
                    doses[dose.key] = judged.bag
                if judged.flag is not None:
                    mismatches.append(
                        Mismatch(
                            judged.flag,
                            entry_id,
                            day.day,
                            slot,
                            _text(group[0].day, slot, judged.text),
                            report.id if report else None,
                            group[0].key,
                            judged.text,
                        )
                    )
            assess = {a.entry_id for a in day.assess}
            for entry_id, held in bag.items():
                if (entry_id, slot) in current:
                    continue
                why = _gone(entries.get(entry_id), entry_id in assess)
                name = _name((entries.get(entry_id) or held.entry).content)
                text = f"{name} ligger i posen, men {why}: ta den ut av posen"
                mismatches.append(
                    Mismatch(
                        Flag.REMOVE,
                        entry_id,
                        day.day,
                        slot,
                        _text(day.day, slot, text),
                        report.id if report else None,
                        what=text,
                    )
                )
    return Bags(doses, tuple(mismatches))


# -- what a bag holds ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Held:
    """An entry in one round's bag: the amounts packed, the entry as packed, and whether
    the entry has changed since in a way only the time of the change can tell."""

    amounts: _Amounts
    entry: Entry
    changed_since: bool


def _overlaps(report: PackingReport, result: Schedule, tz: ZoneInfo) -> bool:
    first = local(result.first, result.slots[Slot.MORGEN], tz)
    last = local(result.last, result.slots[Slot.NATT], tz)
    return report.start <= last and report.end >= first and bool(report.lines)


def _contents(
    report: PackingReport, entries: Mapping[str, Entry], result: Schedule, tz: ZoneInfo
) -> dict[tuple[date, Slot], dict[str, _Held]]:
    """What each round's bag of the report holds on the schedule's days: per entry the
    amounts its packed version plans in that round, within the line's first and last
    dose."""
    out: dict[tuple[date, Slot], dict[str, _Held]] = {}
    for line in report.lines:
        packed = line.packed
        changed_since = False
        if packed is None:
            now = entries.get(line.entry_id)
            if now is None:
                continue
            packed, changed_since = now, now.last_changed > report.sent_at
        # what was packed was meant to be given: its plan, whatever its status now
        as_packed = replace(packed, content={**packed.content, "status": "active"})
        slots: dict[Slot | str, time] = dict(result.slots.items())
        plan = schedule([as_packed], result.first, result.last, slots=slots, tz=tz)
        for day in plan.days:
            for dose in day.doses:
                if not (line.first <= dose.at <= line.last and report.holds(dose.at)):
                    continue
                held = out.setdefault((day.day, dose.slot), {}).setdefault(
                    line.entry_id, _Held({}, packed, changed_since)
                )
                held.amounts[dose.unit] = held.amounts.get(dose.unit, Decimal(0)) + dose.amount
    return out


# -- judging one round -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Judged:
    bag: DoseBag
    flag: Flag | None = None
    text: str = ""


def _judge(
    entry: Entry,
    group: Sequence[PlannedDose],
    report: PackingReport | None,
    held: _Held | None,
) -> _Judged:
    """Where the doses ``group`` (one entry in one round) come from, and what differs."""
    name = _name(entry.content)
    if held is not None:
        return _judge_held(entry, group, report, held)
    if group[0].source is Source.PACKAGE:
        return _Judged(DoseBag(Place.SEPARATE, report))
    if report is None:
        return _Judged(
            DoseBag(Place.SEPARATE, None, (Flag.NO_REPORT,)),
            Flag.NO_REPORT,
            f"{name} er merket for multidose, men ingen pakkeliste fra apoteket dekker denne "
            "runden: den er ikke i noen pose. Gi fra egen pakning eller kontakt apoteket",
        )
    line = next((ln for ln in report.lines if ln.entry_id == entry.id), None)
    if line is None or not all(line.first <= d.at <= line.last for d in group):
        return _Judged(
            DoseBag(Place.SEPARATE, report, (Flag.NOT_IN_REPORT,)),
            Flag.NOT_IN_REPORT,
            f"{name} er merket for multidose, men apotekets pakkeliste har den ikke med for "
            "denne runden: den er ikke i posen. Gi fra egen pakning eller kontakt apoteket",
        )
    return _Judged(
        DoseBag(Place.SEPARATE, report, (Flag.CHANGED,)),
        Flag.CHANGED,
        f"{name} skal nå gis i denne runden, men er ikke i posen (endret etter pakking). Gi "
        "fra egen pakning eller kontakt apoteket",
    )


def _judge_held(
    entry: Entry, group: Sequence[PlannedDose], report: PackingReport | None, held: _Held
) -> _Judged:
    """The round's bag holds the entry: right, wrong, or not to be given from the bag."""
    name = _name(entry.content)
    planned = _amounts(group)
    if group[0].source is Source.PACKAGE:
        return _Judged(
            DoseBag(Place.SEPARATE, report, (Flag.REMOVE,)),
            Flag.REMOVE,
            f"{name} ligger i posen, men listen sier nå at den gis fra egen pakning: ta "
            "den ut av posen og gi fra pakningen",
        )
    if _changed(entry, held, planned):
        return _Judged(
            DoseBag(Place.BAG, report, (Flag.CHANGED,)),
            Flag.CHANGED,
            f"{name} er endret etter pakking ({_difference(held, planned)}). Gi etter "
            "listen, ikke etter posen, og kontakt apoteket",
        )
    return _Judged(DoseBag(Place.BAG, report))


def _changed(entry: Entry, held: _Held, planned: _Amounts) -> bool:
    if held.changed_since:
        return True
    if held.amounts != planned:
        return True
    return bool(_medicine(entry.content) != _medicine(held.entry.content))


def _gone(entry: Entry | None, assess: bool) -> str:
    """Why the list no longer plans an entry in a round whose bag holds it."""
    if entry is None:
        return "den er ikke på listen"
    if assess:
        return f"doseringen på listen må nå vurderes ({MUST_ASSESS}): gi den ikke før det er gjort"
    if entry.status == "on-hold":
        return "den er pauset"
    if entry.status not in IN_USE:
        return "den er seponert"
    return "listen har den ikke lenger i denne runden (endret etter pakking)"


def _amounts(group: Sequence[PlannedDose]) -> _Amounts:
    out: _Amounts = {}
    for dose in group:
        out[dose.unit] = out.get(dose.unit, Decimal(0)) + dose.amount
    return out


def _difference(held: _Held, planned: _Amounts) -> str:
    if held.changed_since and held.amounts == planned:
        return "endret etter at posen ble pakket"
    return f"i posen: {_show(held.amounts)}; på listen nå: {_show(planned)}"


def _show(amounts: _Amounts) -> str:
    return " + ".join(f"{_number(v)} {unit}" for unit, v in sorted(amounts.items())) or "ingen"


def _number(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text.replace(".", ",")


def _text(day: date, slot: Slot, what: str) -> str:
    return f"{MISMATCH}: {slot} {day:%d.%m.%Y}: {what}."


def _medicine(content: Mapping[str, Any]) -> Any:
    return content.get("medicationCodeableConcept") or content.get("medicationReference")


def _name(content: Mapping[str, Any]) -> str:
    concept = content.get("medicationCodeableConcept") or {}
    reference = content.get("medicationReference") or {}
    coded = next((c.get("display") for c in concept.get("coding") or [] if c.get("display")), None)
    return str(concept.get("text") or reference.get("display") or coded or "Legemiddelet")
