"""Dispensings: a pharmacy registers what it handed out on a prescription (M10); the list
shows each prescription's last dispensing and what remains of it.

A dispensing is kept with a list version that shows it (the version moves, the baton stays),
in one transaction with its audit record and its event, like every change of what the list
shows. The list row is locked first, so two dispensings on one prescription are judged one
after the other and never together hand out more than it allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection

from pll.auth.access import Access, Verb
from pll.domain.dispensing import record_dispense
from pll.domain.errors import InvalidInput, NotFound
from pll.domain.identifiers import parse_person_identifier
from pll.domain.model import ListVersion, MedicationList
from pll.fhir import resources as fhir
from pll.fhir.dispensing import dispense_content
from pll.services.lists import PLLService, early_refusal
from pll.store import dispensing as store
from pll.store import repository as repo
from pll.store import sfm as sfm_store

_TYPE = "MedicationDispense"


@dataclass
class DispensingService:
    service: PLLService

    def dispense(self, access: Access, resource: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Register a dispensing on one of the patient's prescriptions; returns it as stored
        and the list version that shows it."""
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            patient_id = self._subject(conn, access, resource.get("subject"))
            svc.trail.admit(conn, access, Verb.DISPENSE, patient_id, "dispense", _TYPE, None)
            content, rx_id = dispense_content(resource, patient_id, access.actor)
            dispense_id = svc.ids()

            def make(lst: MedicationList, now: datetime) -> ListVersion:
                # read under the list's lock: what was dispensed before is what counts
                before = store.for_prescription(conn, rx_id)
                return record_dispense(lst, rx_id, dispense_id, content, before, access.actor, now)

            # handed over whether the list is paused or not (a stay ends, a prescription is
            # dispensed meanwhile): PLL records what the pharmacy did (docs/multidose.md)
            record = svc.record_in(conn, patient_id, make, [rx_id], while_paused=True)
            if record is None:
                raise InvalidInput(
                    f"MedicationRequest/{rx_id} is not a prescription of this patient.",
                    f"{_TYPE}.authorizingPrescription",
                )
            now = record.recorded
            sfm_store.add_dispense(
                conn, dispense_id, patient_id, rx_id, content["whenHandedOver"], now, content
            )
            return fhir.with_meta(_TYPE, dispense_id, 1, now, content), record.version

    def read(self, access: Access, dispense_id: str) -> dict[str, Any]:
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            row = store.get(conn, dispense_id)
            if row is None:
                raise NotFound(f"MedicationDispense/{dispense_id} does not exist.", f"{_TYPE}.id")
            svc.trail.admit(conn, access, Verb.READ, row.patient_id, "read", _TYPE, dispense_id)
            return _resource(row)

    def search(
        self, access: Access, patient_id: str, count: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            svc.trail.admit(conn, access, Verb.READ, patient_id, "search", _TYPE, None)
            total, rows = store.for_patient(conn, patient_id, count, offset)
            return total, [_resource(r) for r in rows]

    def _subject(self, conn: Connection, access: Access, subject: Any) -> str:
        """The patient a dispensing names, by reference or by fødselsnummer/D-nummer. A
        caller who may not dispense at all is refused before a fødselsnummer is looked up,
        so the answer cannot tell who is registered; one naming a patient by id is refused
        by the decision, in that patient's access log."""
        where = f"{_TYPE}.subject"
        if not isinstance(subject, dict) or not subject:
            raise InvalidInput("Name the patient: subject.", where)
        ref = subject.get("reference")
        if ref:
            if not str(ref).startswith("Patient/"):
                raise InvalidInput(f"The subject must reference a Patient, got {ref!r}.", where)
            pid = str(ref).removeprefix("Patient/")
            if repo.get_patient(conn, pid) is None:
                raise InvalidInput(f"{ref} does not exist.", f"{where}.reference")
            return pid
        early_refusal(access, Verb.DISPENSE)
        ident = subject.get("identifier") or {}
        parsed = parse_person_identifier(
            ident.get("system"), str(ident.get("value", "")), f"{where}.identifier"
        )
        row = repo.find_patient(conn, parsed.system, parsed.value)
        if row is None:
            raise InvalidInput(
                f"No patient is registered with {parsed.kind} {parsed.value}.",
                f"{where}.identifier",
            )
        return str(row.id)


def _resource(row: Any) -> dict[str, Any]:
    content: dict[str, Any] = orjson.loads(row.resource)
    return fhir.with_meta(_TYPE, row.id, 1, row.recorded_at, content)
