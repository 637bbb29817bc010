"""Patients as the list services know them: registering one (or finding the one with the same
fødselsnummer/D-nummer), reading and finding one, and resolving the patient a ``subject``
names, with the refusals that must not tell who is registered (DESIGN §3 rule 5). FHIR R4
``Patient``: https://hl7.org/fhir/R4/patient.html; the identifiers: DESIGN §2."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from pll.auth.access import NOT_YOURS, Access, Decision, Verb
from pll.domain.errors import Forbidden, InvalidInput, NotFound
from pll.domain.identifiers import parse_person_identifier
from pll.fhir import resources as fhir
from pll.fhir import systems
from pll.services.audit import Refused
from pll.services.base import ServiceBase, guarded
from pll.store import audit_log
from pll.store import repository as repo
from pll.store.repository import dumps


def _person(resource: dict[str, Any]) -> tuple[str, str]:
    found = []
    for i, ident in enumerate(resource.get("identifier") or []):
        if ident.get("system") in (systems.FNR, systems.DNR):
            parsed = parse_person_identifier(
                ident.get("system"), str(ident.get("value", "")), f"Patient.identifier[{i}]"
            )
            found.append((parsed.system, parsed.value))
    if len(found) != 1:
        raise InvalidInput(
            "A patient needs exactly one fødselsnummer (system urn:oid:2.16.578.1.12.4.1.4.1) "
            "or D-nummer (urn:oid:2.16.578.1.12.4.1.4.2) identifier.",
            "Patient.identifier",
        )
    return found[0]


class PatientRecords(ServiceBase):
    """Registering, reading, finding and resolving patients."""

    @guarded
    def register_patient(
        self, access: Access, resource: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """Register a patient, or find the one with the same fødselsnummer/D-nummer.

        Returns the patient and whether it was created.
        """
        for attempt in range(2):
            try:
                with self.db.write() as conn:
                    return self.register_patient_in(conn, access, resource)
            except IntegrityError:
                # Registered by someone else at the same moment: the retry finds it.
                if attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def register_patient_in(
        self, conn: Connection, access: Access, resource: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        system, value = _person(resource)
        early_refusal(access, Verb.READ)
        self._named_person(conn, access, system, value)
        existing = repo.find_patient(conn, system, value)
        if existing is not None:
            self.trail.admit(conn, access, Verb.READ, existing.id, "read", "Patient", existing.id)
            found: dict[str, Any] = orjson.loads(existing.resource)
            return found, False
        early_refusal(access, Verb.WRITE)  # registering is a change, refused before it is made
        now = self.clock()
        pid = self.ids()
        stored = fhir.with_meta(
            "Patient",
            pid,
            1,
            now,
            {k: v for k, v in resource.items() if k not in ("id", "meta", "text")},
        )
        repo.insert_patient(conn, pid, system, value, now, dumps(stored))
        self.trail.admit(conn, access, Verb.WRITE, pid, "create", "Patient", pid)
        return stored, True

    def _named_person(self, conn: Connection, access: Access, system: str, identifier: str) -> None:
        """Refuse a patient naming a person who is neither themselves nor someone they hold
        a proxy for, with the same answer whether or not that person is registered; when
        they are, the attempt goes into that person's access log."""
        if not access.is_patient:
            return
        pid = access.actor.pid
        if pid and access.speaks_for(
            identifier, identifier != pid and audit_log.has_proxy(conn, pid, identifier)
        ):
            return
        row = repo.find_patient(conn, system, identifier)
        record = None
        if row is not None:
            record = self.trail.record(
                access, "search", "Patient", None, row.id, Decision(False, NOT_YOURS)
            )
        raise Refused(NOT_YOURS, record=record)

    def patient_by_identifier(
        self, access: Access, verb: Verb, system: str | None, value: str
    ) -> str | None:
        """The id of the patient with this fødselsnummer/D-nummer, for a search that will
        decide and log access itself (so the lookup is not logged twice)."""
        parsed = parse_person_identifier(system or None, value, "patient.identifier")
        early_refusal(access, verb)
        with self.trail.refusals(), self.db.read() as conn:
            self._named_person(conn, access, parsed.system, parsed.value)
            row = repo.find_patient(conn, parsed.system, parsed.value)
            return str(row.id) if row is not None else None

    @guarded
    def read_patient(self, access: Access, patient_id: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = repo.get_patient(conn, patient_id)
            if row is None:
                raise NotFound(f"Patient/{patient_id} does not exist.", "Patient.id")
            self.trail.admit(conn, access, Verb.READ, patient_id, "read", "Patient", patient_id)
            data: dict[str, Any] = orjson.loads(row.resource)
            return data

    @guarded
    def find_patient(self, access: Access, system: str | None, value: str) -> dict[str, Any] | None:
        parsed = parse_person_identifier(system or None, value, "identifier")
        early_refusal(access, Verb.READ)
        with self.db.read() as conn:
            self._named_person(conn, access, parsed.system, parsed.value)
            row = repo.find_patient(conn, parsed.system, parsed.value)
            if row is None:
                return None
            self.trail.admit(conn, access, Verb.READ, row.id, "search", "Patient", row.id)
            data: dict[str, Any] = orjson.loads(row.resource)
            return data

    def resolve_patient(
        self, conn: Connection, access: Access, subject: dict[str, Any] | None, where: str
    ) -> str:
        """The patient id a ``subject`` reference names (by id or by identifier)."""
        if not subject:
            raise InvalidInput("The subject (the patient) is missing.", where)
        ref = subject.get("reference")
        if ref:
            if not ref.startswith("Patient/"):
                raise InvalidInput(
                    f"The subject must reference a Patient, got {ref!r}.", where + ".reference"
                )
            row = repo.get_patient(conn, ref.removeprefix("Patient/"))
            if row is None:
                raise InvalidInput(f"{ref} does not exist.", where + ".reference")
        elif subject.get("identifier"):
            ident = subject["identifier"]
            parsed = parse_person_identifier(
                ident.get("system"), str(ident.get("value", "")), where + ".identifier"
            )
            early_refusal(access, Verb.PRESCRIBE)  # every caller changes the list; refused first
            self._named_person(conn, access, parsed.system, parsed.value)
            row = repo.find_patient(conn, parsed.system, parsed.value)
            if row is None:
                raise InvalidInput(
                    f"No patient is registered with {parsed.kind} {parsed.value}.",
                    where + ".identifier",
                )
        else:
            raise InvalidInput("The subject needs a reference or an identifier.", where)
        patient_id: str = row.id
        return patient_id


def early_refusal(access: Access, verb: Verb) -> None:
    """Refuse what no patient's facts could allow before a fødselsnummer is looked up, so
    the answer cannot tell who is registered. (A request naming a list or patient by its
    id goes on to the decision, and its refusal is logged in that patient's access log.)"""
    refusal = access.refusal(verb)
    if refusal is not None:
        raise Forbidden(refusal)
