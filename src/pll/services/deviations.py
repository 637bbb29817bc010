"""Cases about giving the medicines (issue 17, docs/administration.md "Deviations"): a
missed or wrong administration reported as a case, the discrepancy ``Task`` of kind
``administration``.

Reported through ``POST Task`` as every case is (:meth:`pll.services.cases.CaseService.report`
hands it here): access is :attr:`~pll.auth.access.Verb.REPORT` (anyone with access to the
patient's list: the unit's nurses and care workers for its patients; refused and logged
otherwise), one transaction locks the list, writes the case, the first step of its history
and its ``case-reported`` event. Taking, commenting, resolving and withdrawing are those of
every case. Refused with nothing written: a record or entry that does not exist, a planned
dose not on that day's schedule (of the reporter's unit's clock times), a version never
seen, a case naming another patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection

from pll.auth.access import Access, Verb
from pll.domain.administration import deviations as rules
from pll.domain.administration import schedule_list
from pll.domain.administration.keys import parse_key
from pll.domain.errors import InvalidInput, NotFound
from pll.fhir import cases as fhir_cases
from pll.services.base import Stored
from pll.services.case_events import drug, event, with_deadline
from pll.services.lists import PLLService
from pll.services.unit_settings import on_day
from pll.store import administrations as records
from pll.store import cases as store
from pll.store import repository as repo
from pll.store.repository import dumps

_FOCUS = "Task.focus"


@dataclass(frozen=True)
class _Focus:
    list_id: str
    entry_id: str
    #: the record and its current version, or the planned dose's key and day
    administration: tuple[str, int] | None = None
    planned_dose: tuple[str, date] | None = None


@dataclass
class DeviationService:
    service: PLLService

    def report(self, access: Access, reported: fhir_cases.Reported) -> Stored:
        """A new case about a recorded administration or a missed planned dose, routed as a
        case on its entry is (the entry's last author, else the baton holder)."""
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            focus = _focus_of(conn, reported)
            head = repo.list_row(conn, list_id=focus.list_id, lock=True)
            if head is None:  # pragma: no cover - a list is never deleted
                raise NotFound(f"List/{focus.list_id} does not exist.", _FOCUS)
            # access to the patient the focus belongs to is decided (and a refusal logged in
            # their access log) before anything about the focus is told
            case_id = svc.ids()
            svc.trail.admit(conn, access, Verb.REPORT, head.patient_id, "create", "Task", case_id)
            if reported.patient_id not in (None, head.patient_id):
                raise InvalidInput(
                    f"Task.for names Patient/{reported.patient_id}, but the focus is not "
                    "that patient's.",
                    "Task.for",
                )
            focus = _check_version(focus, reported.version)
            now = svc.clock()
            lst = repo.load_list(conn, head, now, [focus.entry_id])
            key = None
            if focus.planned_dose is not None:
                key, day = focus.planned_dose
                # the dose as the reporter's chart planned it: their unit's clock times
                times = on_day(conn, access, head.patient_id, day).times
                doses = schedule_list(lst, day, slots=times).days[0].doses
                if all(d.key != key for d in doses):
                    raise InvalidInput(
                        f"There is no planned dose {key} on the schedule of {day.isoformat()}: "
                        "name the planned dose by the identifier the schedule gives it.",
                        _FOCUS,
                    )
            case, step = rules.report(
                case_id,
                lst,
                focus.entry_id,
                access.actor,
                reported.description,
                now,
                administration=focus.administration,
                planned_dose=key,
            )
            case = with_deadline(svc, case)
            shown = drug(lst, focus.entry_id) if focus.entry_id in lst.entries else None
            text = dumps(fhir_cases.task(case, [step], shown))
            store.add(conn, case, step, text)
            event(svc, conn, lst, case, step)
            return Stored(text, case.version, case.updated_at, case.patient_id)


def _focus_of(conn: Connection, reported: fhir_cases.Reported) -> _Focus:
    """The list, entry and record or planned dose a report names; refused when it names
    nothing that exists."""
    if reported.focus_type == "MedicationAdministration":
        row = records.current(conn, reported.focus_id)
        if row is None:
            raise InvalidInput(
                f"MedicationAdministration/{reported.focus_id} does not exist.", _FOCUS
            )
        return _Focus(row.list_id, row.entry_id, administration=(row.id, row.version))
    entry_id, day, *_ = parse_key(reported.focus_id, _FOCUS)
    found = repo.resource_row(conn, "MedicationStatement", entry_id)
    if found is None:
        raise InvalidInput(f"MedicationStatement/{entry_id} does not exist.", _FOCUS)
    return _Focus(str(found.list_id), entry_id, planned_dose=(reported.focus_id, day))


def _check_version(focus: _Focus, seen: int | None) -> _Focus:
    """The record's version the reporter saw (default: the current one), once access to its
    patient is decided."""
    if focus.administration is None:
        return focus
    rid, current = focus.administration
    seen = seen or current
    if not 1 <= seen <= current:
        raise InvalidInput(
            f"Version {seen} does not exist; the current version is {current}.", _FOCUS
        )
    return _Focus(focus.list_id, focus.entry_id, administration=(rid, seen))
