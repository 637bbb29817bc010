"""Recording, changing and reading a patient's drug reactions (CAVE) as AllergyIntolerance
(https://hl7.org/fhir/R4/allergyintolerance.html).

A reaction names what it is to by ``code``: an ATC coding at any level (a class such as
``J01C`` covers every penicillin) or a FEST substance (``http://ehelse.no/fhir/CodeSystem/FEST``,
the ``Virkestoff`` id). Only an active one (``clinicalStatus`` active, the default) is checked
against the list. Doctors record and change reactions; whoever may read the list may read
them. Every change is a new version, written with ``If-Match`` like the list's entries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from pll.auth.access import Access, Verb
from pll.domain.checks import Finding, Kind
from pll.domain.errors import (
    InvalidInput,
    NotFound,
    PreconditionRequired,
    RuleRefused,
    VersionConflict,
)
from pll.domain.limits import MAX_ACTIVE_REACTIONS
from pll.fhir import resources as fhir
from pll.fhir import systems
from pll.fhir.validate import validate
from pll.services.base import Stored
from pll.services.decision_support import FEST, items, review
from pll.services.lists import PLLService
from pll.store import allergies as store
from pll.store import repository as repo
from pll.store.repository import dumps

CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
#: ATC at any level: A, A10, A10B, A10BA, A10BA02
ATC_CODE = re.compile(r"[A-Z]([0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?)?")
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
    for coding in (resource.get("verificationStatus") or {}).get("coding") or []:
        if coding.get("code") in ("refuted", "entered-in-error"):
            status = "inactive"  # a reaction that was not one is not checked
    atc = substance = None
    for i, coding in enumerate((resource.get("code") or {}).get("coding") or []):
        code = str(coding.get("code") or "")
        where = f"AllergyIntolerance.code.coding[{i}].code"
        if coding.get("system") == systems.ATC:
            if not ATC_CODE.fullmatch(code.upper()):
                raise InvalidInput(
                    f"{code[:20]!r} is not an ATC code (a level such as J01, J01C or J01CA04).",
                    where,
                )
            atc = code.upper()
        elif coding.get("system") == FEST and code:
            if not code.isprintable() or len(code) > 64:
                raise InvalidInput("A FEST substance id is at most 64 characters.", where)
            substance = code
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

    def create(self, access: Access, resource: dict[str, Any]) -> tuple[Stored, list[Finding]]:
        """Record a reaction; returns it and the medicines already on the list it concerns
        (a CAVE conflict the doctor should know of now, not at the next change)."""
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
            stored = self._save(
                conn, access, rid, 1, data, patient_id, status, atc, substance, True
            )
            return stored, self._conflicts(conn, patient_id, rid)

    def update(
        self, access: Access, rid: str, resource: dict[str, Any], if_match: int | None
    ) -> tuple[Stored, list[Finding]]:
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
            stored = self._save(
                conn, access, rid, row.version + 1, data, patient_id, status, atc, substance, False
            )
            return stored, self._conflicts(conn, patient_id, rid)

    def record_in(
        self, conn: Any, access: Access, resource: dict[str, Any], patient_id: str
    ) -> Stored:
        """Record a reaction inside the caller's transaction (a reaction brought in with a
        list from another system); access is decided and logged as for :meth:`create`."""
        data = validate(resource, "AllergyIntolerance")
        named, status, atc, substance = _facts(data)
        if named != patient_id:
            raise InvalidInput("The reaction is not this patient's.", "AllergyIntolerance.patient")
        rid = self.service.ids()
        self.service.trail.admit(
            conn, access, Verb.WRITE, patient_id, "create", "AllergyIntolerance", rid
        )
        return self._save(conn, access, rid, 1, data, patient_id, status, atc, substance, True)

    def _conflicts(self, conn: Any, patient_id: str, rid: str) -> list[Finding]:
        head = repo.list_row(conn, patient_id=patient_id)
        if head is None:
            return []
        lst = repo.load_list(conn, head, self.service.clock())
        found = review(
            conn, patient_id, items(lst.entries.values(), lst.prescriptions.values()), None
        )
        return [f for f in found if f.kind is Kind.CAVE and f.code == rid]

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
        # (two made at the very same moment may both pass: the bound is kept within the
        # number of requests at once, and the next is refused)
        if status == "active" and store.active_count(conn, patient_id, rid) >= (
            MAX_ACTIVE_REACTIONS
        ):
            raise RuleRefused(
                f"The patient has {MAX_ACTIVE_REACTIONS} active drug reactions, the most PLL "
                "keeps; mark one that no longer applies as inactive or resolved first. "
                "Nothing was changed.",
                "AllergyIntolerance.clinicalStatus",
                {"limit": str(MAX_ACTIVE_REACTIONS)},
                norwegian=(
                    f"Pasienten har {MAX_ACTIVE_REACTIONS} aktive legemiddelreaksjoner, så "
                    "mange PLL tar vare på. Avslutt en som ikke lenger gjelder først; "
                    "ingenting ble lagret."
                ),
            )
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
