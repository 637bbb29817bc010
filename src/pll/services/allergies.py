"""Recording, changing and reading a patient's drug reactions (CAVE) as AllergyIntolerance
(https://hl7.org/fhir/R4/allergyintolerance.html).

A reaction names what it is to by ``code``: an ATC coding at any level (a class such as
``J01C`` covers every penicillin) or a FEST substance (``http://ehelse.no/fhir/CodeSystem/FEST``,
the ``Virkestoff`` id). Only an active one (``clinicalStatus`` active, the default) is checked
against the list. Doctors record and change reactions; whoever may read the list may read
them. Every change is a new version, written with ``If-Match`` like the list's entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from pll.auth.access import Access, Verb
from pll.domain.errors import InvalidInput, NotFound, PreconditionRequired, VersionConflict
from pll.fhir import resources as fhir
from pll.fhir import systems
from pll.fhir.validate import validate
from pll.services.decision_support import FEST
from pll.services.lists import PLLService, Stored
from pll.store import allergies as store
from pll.store import repository as repo
from pll.store.repository import dumps

CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
STATUSES = ("active", "inactive", "resolved")


def _facts(resource: dict[str, Any]) -> tuple[str, str, str | None, str | None]:
    """``(patient id, clinical status, ATC, FEST substance)`` of an AllergyIntolerance."""
    ref = (resource.get("patient") or {}).get("reference", "")
    if not isinstance(ref, str) or not ref.startswith("Patient/"):
        raise InvalidInput(
            "Name the patient: patient.reference = Patient/<id>.", "AllergyIntolerance.patient"
        )
    status = "active"
    for coding in (resource.get("clinicalStatus") or {}).get("coding") or []:
        if coding.get("system") == CLINICAL:
            status = str(coding.get("code"))
    if status not in STATUSES:
        raise InvalidInput(
            f"clinicalStatus must be one of {', '.join(STATUSES)}.",
            "AllergyIntolerance.clinicalStatus",
        )
    atc = substance = None
    for coding in (resource.get("code") or {}).get("coding") or []:
        if coding.get("system") == systems.ATC and coding.get("code"):
            atc = str(coding["code"]).upper()
        elif coding.get("system") == FEST and coding.get("code"):
            substance = str(coding["code"])
    if atc is None and substance is None:
        raise InvalidInput(
            "Say what the reaction is to: an ATC coding (http://www.whocc.no/atc, at any "
            "level) or a FEST substance (http://ehelse.no/fhir/CodeSystem/FEST).",
            "AllergyIntolerance.code",
        )
    return ref.removeprefix("Patient/"), status, atc, substance


@dataclass
class Allergies:
    """Drug reactions, decided and logged through the list service's trail."""

    service: PLLService

    def create(self, access: Access, resource: dict[str, Any]) -> Stored:
        data = validate(resource, "AllergyIntolerance")
        patient_id, status, atc, substance = _facts(data)
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            if repo.get_patient(conn, patient_id) is None:
                raise InvalidInput(
                    f"Patient/{patient_id} does not exist.", "AllergyIntolerance.patient"
                )
            rid = svc.ids()
            svc.trail.admit(
                conn, access, Verb.WRITE, patient_id, "create", "AllergyIntolerance", rid
            )
            return self._save(conn, access, rid, 1, data, patient_id, status, atc, substance, True)

    def update(
        self, access: Access, rid: str, resource: dict[str, Any], if_match: int | None
    ) -> Stored:
        data = validate(resource, "AllergyIntolerance")
        if data.get("id") not in (None, rid):
            raise InvalidInput("The resource id does not match the URL.", "AllergyIntolerance.id")
        patient_id, status, atc, substance = _facts(data)
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            row = store.get(conn, rid, lock=True)
            if row is None:
                raise NotFound(f"AllergyIntolerance/{rid} does not exist.", "AllergyIntolerance.id")
            svc.trail.admit(
                conn, access, Verb.WRITE, row.patient_id, "update", "AllergyIntolerance", rid
            )
            if patient_id != row.patient_id:
                raise InvalidInput(
                    "The patient of a reaction cannot change.", "AllergyIntolerance.patient"
                )
            if if_match is None:
                raise PreconditionRequired(
                    'Send If-Match with the version you changed (W/"n").', "If-Match"
                )
            if if_match != row.version:
                raise VersionConflict(
                    f"AllergyIntolerance/{rid} is at version {row.version}, not {if_match}; "
                    "read it again.",
                    "If-Match",
                    {"currentVersion": str(row.version)},
                )
            return self._save(
                conn, access, rid, row.version + 1, data, patient_id, status, atc, substance, False
            )

    def _save(
        self,
        conn: Any,
        access: Access,
        rid: str,
        version: int,
        data: dict[str, Any],
        patient_id: str,
        status: str,
        atc: str | None,
        substance: str | None,
        new: bool,
    ) -> Stored:
        now = self.service.clock()
        body = {k: v for k, v in data.items() if k not in ("id", "meta", "text")}
        stored = fhir.with_meta("AllergyIntolerance", rid, version, now, body)
        text = dumps(stored)
        store.save(
            conn,
            {
                "id": rid,
                "patient_id": patient_id,
                "version": version,
                "updated_at": now,
                "status": status,
                "atc": atc,
                "substance": substance,
                "resource": text,
            },
            dumps(access.actor.to_json()),
            new=new,
        )
        return Stored(text, version, now, patient_id)

    def read(self, access: Access, rid: str) -> Stored:
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            row = store.get(conn, rid)
            if row is None:
                raise NotFound(f"AllergyIntolerance/{rid} does not exist.", "AllergyIntolerance.id")
            svc.trail.admit(
                conn, access, Verb.READ, row.patient_id, "read", "AllergyIntolerance", rid
            )
            return Stored(row.resource, row.version, row.updated_at, row.patient_id)

    def history(self, access: Access, rid: str) -> list[Stored]:
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            row = store.get(conn, rid)
            if row is None:
                raise NotFound(f"AllergyIntolerance/{rid} does not exist.", "AllergyIntolerance.id")
            svc.trail.admit(
                conn, access, Verb.READ, row.patient_id, "history", "AllergyIntolerance", rid
            )
            return [
                Stored(v.resource, v.version, v.recorded_at, row.patient_id)
                for v in store.versions(conn, rid)
            ]

    def search(self, access: Access, patient_id: str) -> list[dict[str, Any]]:
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            if repo.get_patient(conn, patient_id) is None:
                return []
            svc.trail.admit(
                conn, access, Verb.READ, patient_id, "search", "AllergyIntolerance", None
            )
            return [orjson.loads(r.resource) for r in store.for_patient(conn, patient_id)]
