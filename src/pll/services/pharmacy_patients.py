"""A multidose pharmacy's work list (M27): the patients whose e-multidose registration names
the caller's pharmacy, each shown as a read of that patient, decided and logged
(`/apotek`, docs/web.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Row

from pll.auth.access import Access, PatientFacts, Verb
from pll.domain.errors import Forbidden
from pll.domain.model import Author, Pause
from pll.services.lists import PLLService
from pll.store import audit_log
from pll.store import multidose as store


@dataclass
class PharmacyWorkList:
    service: PLLService

    def patients(self, access: Access, limit: int = 50, offset: int = 0) -> PharmacyPatients:
        """The patients whose e-multidose registration names the caller's pharmacy (the
        organisation number in the token), newest registration first, a page at a time.

        Showing a patient here tells the caller something about them (a multidose patient
        of theirs, a paused list, proposals waiting), so each patient shown is a read of
        that patient: decided by the access policy as the pharmacy's own work
        (:attr:`Verb.PACK`: only the responsible pharmacy, never a worker the patient has
        blocked) and logged in that patient's access log with the action
        ``multidose-patients`` (DESIGN §3 rule 5). A patient who has blocked the caller is
        left out with no record, as nothing of theirs is shown; ``left_out`` counts them."""
        refusal = access.refusal(Verb.PACK)
        if refusal is not None:
            raise Forbidden(refusal)
        org = access.actor.org_id
        if org is None:
            return PharmacyPatients(0, 0, [])
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            total, rows = store.pharmacy_patients(conn, org, access.actor.hpr, limit, offset)
            now = svc.clock()
            shown: list[PharmacyPatient] = []
            for row in rows:
                facts = PatientFacts(
                    row.patient_id,
                    row.identifier_value,
                    bool(row.blocked),
                    multidose_pharmacy=row.pharmacy_org,
                    multidose_doctor=row.doctor_hpr,
                )
                decision = access.decide(Verb.PACK, facts)
                if not decision.allowed:
                    continue
                audit_log.append(
                    conn,
                    svc.trail.record(
                        access,
                        "multidose-patients",
                        "Patient",
                        row.patient_id,
                        row.patient_id,
                        decision,
                        now,
                    ),
                )
                shown.append(_pharmacy_patient(row))
            return PharmacyPatients(total, len(rows) - len(shown), shown)


@dataclass(frozen=True)
class PharmacyPatient:
    """One of a pharmacy's multidose patients, as its work list shows them."""

    patient_id: str
    identifier: str
    name: str | None
    doctor: str | None
    since: datetime
    list_id: str | None
    list_version: int | None
    pause: Pause | None
    #: items of the pharmacy's proposals still waiting for the doctor
    pending: int
    paper: bool


@dataclass(frozen=True)
class PharmacyPatients:
    """A page of :meth:`PharmacyWorkList.patients`."""

    #: the pharmacy's registered patients in all
    total: int
    #: patients of this page left out because they have blocked the caller
    left_out: int
    patients: list[PharmacyPatient]


def _pharmacy_patient(row: Row[Any]) -> PharmacyPatient:
    pause = orjson.loads(row.pause) if row.pause else None
    return PharmacyPatient(
        patient_id=row.patient_id,
        identifier=row.identifier_value,
        name=_person_name(orjson.loads(row.resource)),
        doctor=store.author_label(row.doctor),
        since=row.registered_at,
        list_id=row.list_id,
        list_version=row.version,
        pause=Pause(
            Author.from_json(pause["by"]), datetime.fromisoformat(pause["at"]), pause["reason"]
        )
        if pause
        else None,
        pending=int(row.pending or 0),
        paper=bool(row.paper),
    )


def _person_name(resource: dict[str, Any]) -> str | None:
    """A FHIR Patient's first name as one line: its text, else given names and family."""
    for name in resource.get("name") or []:
        text = name.get("text") or " ".join([*name.get("given", []), name.get("family", "")])
        if text.strip():
            return str(text).strip()
    return None
