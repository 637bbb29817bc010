"""Who a page is about: the patient, their list's state and their drug reactions, for the
patient banner every health worker's page about a patient shows (DESIGN §3 rule 9).

The banner is part of the page's read, on the same access basis. Access is decided as for
any read (a refusal is logged and refuses the page); the read is logged here only when the
page has not already logged its own read of the patient's list in this request, so a page
view leaves one record, never a second one for the same look (:meth:`summary`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from pll.auth.access import Access, Verb
from pll.domain.errors import NotFound
from pll.services.lists import PLLService
from pll.store import allergies as reactions_store


@dataclass(frozen=True)
class PatientSummary:
    """The stored FHIR the banner is made from."""

    patient_id: str
    identifier_system: str
    identifier: str
    patient: dict[str, Any]
    #: the List resource (baton, confirmation, pause), None when the patient has no PLL
    pll: dict[str, Any] | None
    #: the active AllergyIntolerances, oldest first
    reactions: list[dict[str, Any]]


@dataclass
class PatientSummaries:
    """The patient banner's read: one statement for the data, plus the access decision."""

    service: PLLService

    def summary(
        self,
        access: Access,
        patient_id: str,
        *,
        page_logged: bool,
    ) -> PatientSummary:
        """The patient, their List and their active reactions. ``page_logged``: the page
        has read (and logged) this patient's list in this request, so the banner's read is
        part of that one and adds no record; otherwise it is logged as a read of the
        Patient. Either way access is decided first, and a refusal is logged and raised."""
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            _, record = svc.trail.admit_unlogged(
                conn, access, Verb.READ, patient_id, "read", "Patient", patient_id
            )
            rows = reactions_store.with_patient(conn, patient_id)
            if not rows:
                raise NotFound(f"Patient/{patient_id} does not exist.", "Patient.id")
            if not page_logged:
                svc.trail.log(conn, access, Verb.READ, patient_id, record)
        first = rows[0]
        return PatientSummary(
            patient_id=patient_id,
            identifier_system=first.identifier_system,
            identifier=first.identifier_value,
            patient=orjson.loads(first.patient),
            pll=orjson.loads(first.list_json) if first.list_json else None,
            reactions=[orjson.loads(r.reaction) for r in rows if r.reaction is not None],
        )
