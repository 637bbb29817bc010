"""What every kind of case shares when it changes (discrepancy cases,
:mod:`pll.services.cases`; cases about giving the medicines, :mod:`pll.services.deviations`):
the outgoing event of each change, and the medicine an entry names."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import Connection

from pll.domain.cases import Case, Step
from pll.domain.model import MedicationList
from pll.fhir import cases as fhir_cases
from pll.fhir.resources import instant
from pll.services.base import ServiceBase
from pll.services.lists import PLLService
from pll.store import repository as repo


def with_deadline(svc: ServiceBase, case: Case) -> Case:
    """A newly reported case with its deadline, from the configured deadline of its kind
    counted from when it was reported."""
    return replace(case, due_at=svc.case_rules.deadlines.due(case.deadline_kind, case.reported_at))


def drug(lst: MedicationList, entry_id: str | None) -> str | None:
    """The medicine an entry names, as the list shows it."""
    if entry_id is None:
        return None
    concept = lst.entries[entry_id].content.get("medicationCodeableConcept") or {}
    text = concept.get("text") or next(
        (c.get("display") for c in concept.get("coding") or [] if c.get("display")), None
    )
    return str(text) if text else None


def event(svc: PLLService, conn: Connection, lst: MedicationList, case: Case, step: Step) -> None:
    """The outgoing event of a case change, in its own transaction (rule 7). The list did
    not change: the event names its current version, and the case at its new version."""
    owner = case.recipient.org_id
    repo.add_event(
        conn,
        svc.ids(),
        lst,
        step.action.event,
        step.at,
        {
            "list": f"List/{lst.id}",
            "patient": f"Patient/{lst.patient_id}",
            "version": lst.version,
            "task": f"Task/{case.id}/_history/{case.version}",
            "status": fhir_cases.TASK_STATUS[case.status],
            "focus": fhir_cases.focus_of(case),
            "owner": owner,
            "reported": instant(case.reported_at),
        },
    )
