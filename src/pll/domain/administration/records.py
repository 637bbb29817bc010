"""Recording what was given (issue 17): the rules an administration record must keep before
anything is written. Pure: the service loads the list, what was already given and whether
the medicine is a controlled drug, and hands them here.

A record names one entry at its current version and either a planned dose of the schedule
(its :attr:`~pll.domain.administration.PlannedDose.key`) or, for an as-needed (``ved
behov``) dosage, none. It is refused — with nothing written — when:

- the list is paused (Pause PLL), or the entry is paused (``on-hold``) or no longer in use
  (discontinued): :class:`~pll.domain.errors.Conflict`;
- the entry has changed since the version named (the chart the nurse gave from is out of
  date): :class:`~pll.domain.errors.Conflict` naming the current version;
- the planned dose is not on the schedule, or the as-needed dosage is not there that day:
  :class:`~pll.domain.errors.InvalidInput`;
- the planned dose is recorded (given or not given) at a time outside its window: from
  :data:`~pll.domain.administration.rounds.DUE_AHEAD` (60 minutes, the due window of the
  rounds) before its planned time to :data:`LATEST` (12 hours) after it — so a later day's
  dose is never recorded today: :class:`~pll.domain.errors.RuleRefused`;
- more than the planned amount is given, more than the as-needed dose at a time, or an
  as-needed dose that would bring some period
  of its maximum's length over the maximum (a rolling window,
  :mod:`pll.domain.administration.as_needed`): :class:`~pll.domain.errors.RuleRefused`;
- the planned dose already has a record that stands: :class:`~pll.domain.errors.Conflict`;
- the second signer's HPR number is not 4 to 9 digits: :class:`~pll.domain.errors.RuleRefused`;
- a drug that needs a second signature (prescription group A, and group B where the
  giver's unit chose it: :func:`pll.domain.administration.unit_settings.needs_second_signature`)
  is given without a second signer, or the second signer is the giver:
  :class:`~pll.domain.errors.RuleRefused`.

The planned doses are those of the giver's unit's clock times (``slots``), as its chart
shows them.

Less than planned is a partial dose (recorded as given, with the amount); a time after the
planned one is a late dose (the record keeps both times); a time more than
:data:`FUTURE_SLACK` ahead of now, or on a day outside 1900–2999, is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum

from pll.domain.administration import as_needed as prn
from pll.domain.administration.keys import check_moment, parse_key
from pll.domain.administration.rounds import DUE_AHEAD
from pll.domain.administration.schedule import AsNeeded, Given, PlannedDose, schedule_list
from pll.domain.administration.slots import OSLO, Slot
from pll.domain.dosage import unit_key
from pll.domain.errors import Conflict, InvalidInput, RuleRefused
from pll.domain.model import IN_USE, MedicationList

#: How far ahead of the server's clock a recorded time may be (clocks of tablets drift).
FUTURE_SLACK = timedelta(minutes=5)
#: How long after its planned time a planned dose may still be recorded ("given late").
LATEST = timedelta(hours=12)
#: An HPR number: 4 to 9 digits (those in use have 7 to 9); both databases hold it alike.
_HPR = re.compile(r"[0-9]{4,9}")


class Status(StrEnum):
    """``MedicationAdministration.status`` as PLL records it."""

    COMPLETED = "completed"  #: given (wholly or partly)
    NOT_DONE = "not-done"  #: not given, with a :class:`NotGiven` reason
    ENTERED_IN_ERROR = "entered-in-error"  #: a correction: the record was wrong


class NotGiven(StrEnum):
    """Why a dose was not given: PLL's code system ``administration-not-given``."""

    REFUSED = "refused"
    ABSENT = "absent"
    UNAVAILABLE = "unavailable"
    HELD = "held"
    VOMITED = "vomited"

    @property
    def display(self) -> str:
        return _NOT_GIVEN_DISPLAY[self]


_NOT_GIVEN_DISPLAY = {
    NotGiven.REFUSED: "Pasienten ville ikke ta legemidlet",
    NotGiven.ABSENT: "Pasienten sov eller var ikke til stede",
    NotGiven.UNAVAILABLE: "Legemidlet var ikke tilgjengelig",
    NotGiven.HELD: "Holdt tilbake etter klinisk vurdering",
    NotGiven.VOMITED: "Pasienten kastet opp",
}


@dataclass(frozen=True)
class Recording:
    """What a request says was done; ``where`` names where each part stands in it."""

    entry_id: str
    entry_version: int
    status: Status
    at: datetime
    #: the planned dose's key; ``None`` for an as-needed dose
    slot_key: str | None = None
    reason: NotGiven | None = None
    amount: Decimal | None = None
    unit: str | None = None
    #: the HPR number of the second signer (a controlled drug)
    verifier_hpr: str | None = None
    #: why an as-needed dose was given
    reason_for_giving: str | None = None


@dataclass(frozen=True)
class Judged:
    """An accepted recording: the local day it belongs to, the amount given (the planned one
    when the request gave none) and what it was given against."""

    day: date
    amount: Decimal | None
    unit: str | None
    planned: PlannedDose | None = None
    as_needed: AsNeeded | None = None

    @property
    def partial(self) -> bool:
        return (
            self.planned is not None
            and self.amount is not None
            and (self.amount < self.planned.amount)
        )


_ENTRY = "MedicationAdministration.supportingInformation"
_SLOT = "MedicationAdministration.extension"
_DOSE = "MedicationAdministration.dosage.dose"
_PERFORMER = "MedicationAdministration.performer"


def judge(
    lst: MedicationList,
    rec: Recording,
    *,
    now: datetime,
    giver_hpr: str | None,
    controlled: bool,
    slot_taken: bool,
    given: Iterable[Given] = (),
    slots: Mapping[Slot, time] | None = None,
) -> Judged:
    """Check ``rec`` against the list as it is now; the :class:`Judged` record, or a refusal
    (see the module's docstring). ``given`` holds the entry's completed records that stand
    within :data:`~pll.domain.administration.as_needed.LONGEST` of ``rec.at`` (for an
    as-needed maximum)."""
    check_moment(rec.at, "MedicationAdministration.effectiveDateTime")
    if rec.verifier_hpr is not None and not _HPR.fullmatch(rec.verifier_hpr):
        raise RuleRefused(
            f"{rec.verifier_hpr[:40]!r} is not an HPR number: the second signer's HPR number "
            "has 4 to 9 digits.",
            f"{_PERFORMER}.actor.identifier.value",
            norwegian="HPR-nummeret til den som kontrollsignerer må være 4–9 sifre.",
        )
    _check_entry(lst, rec)
    if rec.at > now + FUTURE_SLACK:
        raise InvalidInput(
            "effectiveDateTime is in the future: record what was given when it has been given.",
            "MedicationAdministration.effectiveDateTime",
            norwegian="Tidspunktet er fram i tid: registrer det som er gitt når det er gitt.",
        )
    if rec.status is Status.NOT_DONE and rec.reason is None:
        raise InvalidInput(
            "A dose not given needs statusReason: " + ", ".join(r.value for r in NotGiven) + ".",
            "MedicationAdministration.statusReason",
            norwegian="Velg hvorfor dosen ikke ble gitt.",
        )
    if controlled and rec.status is Status.COMPLETED:
        _check_second_signer(rec, giver_hpr)
    if rec.slot_key is not None:
        judged = _planned(lst, rec, slots)
        if slot_taken:
            raise Conflict(
                f"The planned dose {rec.slot_key} is already recorded; correct that record "
                "(entered-in-error) before recording it again.",
                _SLOT,
                norwegian="Denne dosen er allerede registrert (av deg eller en kollega). "
                "Last kurven på nytt for å se hva som er registrert.",
            )
        return judged
    return _as_needed(lst, rec, given)


def _check_entry(lst: MedicationList, rec: Recording) -> None:
    if lst.pause is not None:
        raise Conflict(
            f"The list is paused (Pause PLL) since {lst.pause.at:%Y-%m-%d %H:%M} UTC by "
            f"{lst.pause.by.label()}: {lst.pause.reason}. Nothing is given from a paused list.",
            "List",
            norwegian=f"Listen er pauset ({lst.pause.reason}): ingenting gis fra en pauset liste.",
        )
    entry = lst.entries.get(rec.entry_id)
    if entry is None:
        raise InvalidInput(
            f"MedicationStatement/{rec.entry_id} is not on this patient's list.",
            _ENTRY,
            norwegian="Legemidlet finnes ikke på pasientens liste.",
        )
    if entry.status == "on-hold":
        raise Conflict(
            f"MedicationStatement/{entry.id} is paused: nothing is given from it.",
            _ENTRY,
            norwegian="Legemidlet er pauset: det gis ikke.",
        )
    if entry.status not in IN_USE:
        raise Conflict(
            f"MedicationStatement/{entry.id} is {entry.status} (no longer in use): nothing is "
            "given from it.",
            _ENTRY,
            norwegian="Legemidlet er ikke lenger i bruk (seponert): det gis ikke.",
        )
    if entry.version != rec.entry_version:
        raise Conflict(
            f"MedicationStatement/{entry.id} has changed: version {rec.entry_version} was "
            f"named, the current is {entry.version}. Read the schedule again and give from "
            "the current version.",
            _ENTRY,
            details={"currentVersion": str(entry.version)},
            norwegian="Legemidlet er endret siden kurven ble vist. Last kurven på nytt og gi "
            "etter den gjeldende versjonen.",
        )


def _check_second_signer(rec: Recording, giver_hpr: str | None) -> None:
    if rec.verifier_hpr is None:
        raise RuleRefused(
            "This medicine needs a second signature (prescription group A, or group B where "
            "the unit chose it): its administration needs a performer with function "
            "'verifier' naming the second nurse's HPR number.",
            _PERFORMER,
            norwegian=(
                "Legemidlet er i reseptgruppe A (eller B der enheten har valgt det) og krever "
                "kontrollsignatur fra en annen."
            ),
        )
    if rec.verifier_hpr == giver_hpr:
        raise RuleRefused(
            "The second signer of a controlled drug must be another person than the one "
            "who gives it.",
            _PERFORMER,
            norwegian="Kontrollsignaturen må være fra en annen enn den som gir legemidlet.",
        )


def _planned(lst: MedicationList, rec: Recording, slots: Mapping[Slot, time] | None) -> Judged:
    key = rec.slot_key or ""
    entry_id, day, *_ = parse_key(key, _SLOT)
    if entry_id != rec.entry_id:
        raise InvalidInput(
            f"The planned dose {key} is of MedicationStatement/{entry_id}, not of the entry "
            f"named ({rec.entry_id}).",
            _SLOT,
        )
    doses = schedule_list(lst, day, slots=slots).days[0].doses
    planned = next((d for d in doses if d.key == key), None)
    if planned is None:
        raise InvalidInput(
            f"There is no planned dose {key} on the schedule: read the schedule of "
            f"{day.isoformat()} for the planned doses' keys.",
            _SLOT,
            norwegian="Dosen står ikke på dagens plan (listen kan være endret). Last kurven "
            "på nytt.",
        )
    _check_window(rec.at, planned)
    if rec.status is not Status.COMPLETED:
        return Judged(day, None, None, planned)
    amount, unit = rec.amount, rec.unit
    if amount is None:
        return Judged(day, planned.amount, planned.unit, planned)
    _same_unit(unit, planned.unit)
    if amount > planned.amount:
        raise RuleRefused(
            f"{amount} {unit} is more than the planned {planned.amount} {planned.unit}: "
            "never give more than the list says.",
            _DOSE,
            norwegian=f"{amount} er mer enn planlagt dose {planned.amount} {planned.unit}.",
        )
    return Judged(day, amount, unit, planned)


def _check_window(at: datetime, planned: PlannedDose) -> None:
    """A planned dose is recorded from the rounds' due window before its time until
    :data:`LATEST` after it."""
    first, last = planned.at - DUE_AHEAD, planned.at + LATEST
    if first <= at <= last:
        return
    when = f"{planned.at.astimezone(OSLO):%d.%m.%Y %H:%M}"
    window = f"{first.astimezone(OSLO):%d.%m.%Y %H:%M} to {last.astimezone(OSLO):%d.%m.%Y %H:%M}"
    if at < first:
        raise RuleRefused(
            f"The planned dose {planned.key} is planned for {when}: it is recorded from "
            f"{int(DUE_AHEAD.total_seconds() // 60)} minutes before that, not at "
            f"{at.astimezone(OSLO):%d.%m.%Y %H:%M} (the window is {window}, Norwegian time).",
            "MedicationAdministration.effectiveDateTime",
            norwegian=f"Dosen er planlagt {when} og kan ikke registreres før en time før.",
        )
    raise RuleRefused(
        f"The planned dose {planned.key} was planned for {when}: more than "
        f"{int(LATEST.total_seconds() // 3600)} hours before "
        f"{at.astimezone(OSLO):%d.%m.%Y %H:%M} it is no longer given late (the window is "
        f"{window}, Norwegian time). Report a missed dose as a case instead.",
        "MedicationAdministration.effectiveDateTime",
        norwegian=f"Dosen var planlagt {when}: mer enn 12 timer etter kan den ikke "
        "registreres. Meld avvik om glemt dose.",
    )


def _as_needed(lst: MedicationList, rec: Recording, given: Iterable[Given]) -> Judged:
    day = rec.at.astimezone(OSLO).date()
    given = list(given)
    doses = [prn.Dose(g.at, g.amount, g.unit) for g in given if g.entry_id == rec.entry_id]
    found = schedule_list(lst, day, given=given, now=rec.at).days[0].as_needed
    item = next((a for a in found if a.entry_id == rec.entry_id), None)
    if item is None:
        raise InvalidInput(
            f"MedicationStatement/{rec.entry_id} has no as-needed dosage on "
            f"{day.isoformat()}: name the planned dose given (the planned-dose extension).",
            _SLOT,
            norwegian="Legemidlet har ingen ved behov-dosering denne dagen.",
        )
    if rec.status is not Status.COMPLETED:
        return Judged(day, None, None, as_needed=item)
    if rec.amount is None:
        raise InvalidInput(
            "An as-needed dose needs the amount given (dosage.dose).",
            _DOSE,
            norwegian="Skriv hvor mye som ble gitt.",
        )
    if not rec.reason_for_giving:
        raise InvalidInput(
            "An as-needed dose needs the reason it was given (reasonCode.text).",
            "MedicationAdministration.reasonCode",
            norwegian="Skriv hvorfor dosen ved behov ble gitt.",
        )
    _same_unit(rec.unit, item.unit)
    if rec.amount > item.amount:
        # one as-needed dose is the dose the list gives, as a planned one is (walk 17)
        raise RuleRefused(
            f"{rec.amount} {rec.unit} is more than the as-needed dose of {item.amount} "
            f"{item.unit}: never give more than the list says at a time.",
            _DOSE,
            norwegian=f"{rec.amount} er mer enn dosen ved behov, {item.amount} {item.unit}.",
        )
    _check_maximum(item, rec, doses)
    return Judged(day, rec.amount, rec.unit, as_needed=item)


def _check_maximum(item: AsNeeded, rec: Recording, doses: list[prn.Dose]) -> None:
    """Refuse a dose that would bring some period of the maximum's length over it."""
    if item.daily_max is None or item.period is None or rec.amount is None:
        return
    most = prn.Maximum(item.daily_max, item.max_unit or item.unit, item.period)
    if not most.counts(rec.unit or ""):
        return
    peak, start = prn.peak_with(most, doses, rec.at)
    if peak + rec.amount <= most.amount:
        return
    per = _period_text(item.period)
    since = f"{start.astimezone(OSLO):%d.%m.%Y %H:%M}"
    raise RuleRefused(
        f"{rec.amount} {rec.unit} at {rec.at.astimezone(OSLO):%d.%m.%Y %H:%M} would make "
        f"{peak + rec.amount} {most.unit} within {per} (from {since}, Norwegian time): the "
        f"maximum is {most.amount} {most.unit} per {per}, and {peak} was already given then.",
        _DOSE,
        norwegian=(
            f"{rec.amount} er mer enn det som gjenstår av maksimum "
            f"({max(most.amount - peak, 0)} av {most.amount} {most.unit} per {per}; "
            f"{peak} gitt fra {since})."
        ),
    )


def _period_text(period: timedelta) -> str:
    hours = int(period.total_seconds() // 3600)
    return f"{hours} timer" if hours != 1 else "1 time"


def _same_unit(given: str | None, planned: str) -> None:
    if given is None or unit_key(given) != unit_key(planned):
        raise InvalidInput(
            f"The dose is in {given or '(no unit)'}; the list doses it in {planned}.",
            f"{_DOSE}.unit",
            norwegian=f"Dosen må være i {planned}, som listen doserer den i.",
        )


def correct(status: Status, new: Status, reason: str | None, notes_added: int) -> None:
    """A new version of a record: ``entered-in-error`` with a reason, or the same status with
    notes added (the effect of an as-needed dose). Refused otherwise: what was given is never
    edited, and a record entered in error stays so."""
    where = "MedicationAdministration.status"
    if status is Status.ENTERED_IN_ERROR:
        raise Conflict("This record is entered in error; it is not changed again.", where)
    if new is Status.ENTERED_IN_ERROR:
        if not reason:
            raise InvalidInput(
                "A correction (entered-in-error) needs a reason: statusReason.text or a note.",
                "MedicationAdministration.statusReason",
            )
        return
    if new is not status:
        raise InvalidInput(
            f"A record is never edited from {status} to {new}: mark it entered-in-error and "
            "record what was done anew.",
            where,
        )
    if notes_added < 1:
        raise InvalidInput(
            "A new version either marks the record entered-in-error or adds a note (such as "
            "the effect of an as-needed dose).",
            "MedicationAdministration.note",
        )
