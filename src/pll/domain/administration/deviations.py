"""Cases about giving the medicines (issue 17, docs/administration.md "Deviations"): a
missed or wrong administration reported as a case (the existing discrepancy ``Task``, of
kind :attr:`~pll.domain.cases.Kind.ADMINISTRATION`). Pure rules, no I/O.

A case names either a record (``MedicationAdministration``, at the version the reporter
saw) — a dose given wrongly, to the wrong time, not given — or a planned dose of the
schedule by its key that has no record (missed). It is routed as a case on the entry is
(:func:`pll.domain.cases.route`): to the entry's last author, who answers for the
medicine, else the list's baton holder. The unit's own follow-up of the deviation is its
quality system's; PLL's case tells the prescriber and is tracked as every case is.
"""

from __future__ import annotations

from datetime import datetime

from pll.domain.cases import Action, Case, Kind, Status, Step, described, route
from pll.domain.errors import InvalidInput
from pll.domain.model import Author, MedicationList


def report(
    case_id: str,
    lst: MedicationList,
    entry_id: str,
    reporter: Author,
    description: str | None,
    now: datetime,
    *,
    administration: tuple[str, int] | None = None,
    planned_dose: str | None = None,
) -> tuple[Case, Step]:
    """A new case about the record ``administration`` (id, version seen) or the planned
    dose ``planned_dose`` of the entry ``entry_id``; exactly one of them is given."""
    if (administration is None) == (planned_dose is None):
        raise InvalidInput(
            "Name either the administration record or the planned dose the case is about.",
            "Task.focus",
        )
    text = described(description)
    recipient = route(lst, entry_id if entry_id in lst.entries else None)
    case = Case(
        id=case_id,
        patient_id=lst.patient_id,
        list_id=lst.id,
        entry_id=entry_id,
        focus_version=administration[1] if administration else lst.entries[entry_id].version,
        status=Status.OPEN,
        version=1,
        reporter=reporter,
        recipient=recipient,
        description=text,
        reported_at=now,
        updated_at=now,
        kind=Kind.ADMINISTRATION,
        administration_id=administration[0] if administration else None,
        planned_dose=planned_dose,
    )
    return case, Step(1, now, reporter, Action.REPORT, Status.OPEN)
