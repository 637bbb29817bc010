"""Registering a patient with a care unit and ending it (issue 17, docs/administration.md).

Each operation opens one transaction, decides access through the audit trail
(:attr:`~pll.auth.access.Verb.CARE_UNIT`: basis, blocks, no patients), applies
:mod:`pll.domain.care_units` (a nurse or doctor of that very unit) and writes the
registration. Either refusal — the policy's or the unit's — is logged as a refused access
and writes nothing else; an accepted one is logged as the write it is (who, when, which
patient). A registration is not a change of the list, so it makes no list version; it
changes who may read the list (a care worker reads only for patients of their unit), so it
writes an ``access-changed`` event for the read copy (:mod:`pll.services.access_events`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from pll.auth.access import Access, Decision, Verb
from pll.domain import care_units as rules
from pll.domain.care_units import CareRegistration
from pll.domain.errors import Forbidden
from pll.fhir import care_units as fhir_cu
from pll.services import access_events
from pll.services.audit import Refused
from pll.services.lists import PLLService
from pll.store import care_units as store

#: the audit action of ending a registration (and what tells its event from a new one's)
_END = "care-unit-end"


@dataclass(frozen=True)
class Registered:
    """The answer: the registration as an ``EpisodeOfCare``, and whether this call made
    the change (``False``: the patient was already registered there)."""

    episode: dict[str, Any]
    changed: bool


@dataclass
class CareUnitService:
    service: PLLService

    def register(self, access: Access, patient_id: str, data: Any) -> Registered:
        """Register the patient with the unit the ``Parameters`` name; the caller must be a
        nurse or doctor of that unit. Registering again changes nothing."""
        unit = fhir_cu.register_request(data)
        svc = self.service

        def act(conn: Connection, current: list[CareRegistration]) -> Registered:
            now = svc.clock()
            made = rules.register(
                current, patient_id, unit, access.actor, now, svc.ids(), "Parameters.parameter"
            )
            if made is None:
                same = next(r for r in current if r.unit.orgnr == unit.orgnr)
                return Registered(fhir_cu.episode(same), changed=False)
            store.save_unit(conn, unit, now)
            store.insert_registration(conn, made)
            return Registered(fhir_cu.episode(made), changed=True)

        return self._within(access, patient_id, "care-unit-register", act)

    def end(self, access: Access, patient_id: str, data: Any) -> Registered:
        """End the patient's registration with the unit the ``Parameters`` name; the caller
        must be a nurse or doctor of that unit."""
        orgnr, where = fhir_cu.end_request(data)
        svc = self.service

        def act(conn: Connection, current: list[CareRegistration]) -> Registered:
            ended = rules.end(current, orgnr, access.actor, svc.clock(), where)
            store.end_registration(conn, ended)
            return Registered(fhir_cu.episode(ended), changed=True)

        return self._within(access, patient_id, _END, act)

    def _within(
        self,
        access: Access,
        patient_id: str,
        action: str,
        act: Callable[[Connection, list[CareRegistration]], Registered],
    ) -> Registered:
        svc = self.service
        trail = svc.trail
        with svc.guard(access), svc.db.write() as conn:
            # the list first, as every write takes it (the event below is written under it)
            head = access_events.lock(conn, patient_id)
            store.lock(conn, patient_id)
            _, record = trail.admit_unlogged(
                conn, access, Verb.CARE_UNIT, patient_id, action, "Patient", patient_id
            )
            try:
                answer = act(conn, store.open_registrations(conn, patient_id))
            except Forbidden as exc:
                # not this unit's nurse or doctor: a refused access, logged like the policy's
                refused = trail.record(
                    access, action, "Patient", patient_id, patient_id, Decision(False, exc.message)
                )
                raise Refused(
                    exc.message, exc.expression, norwegian=exc.norwegian, record=refused
                ) from None
            # logged even when nothing changed: the caller has seen the registration
            trail.log(conn, access, Verb.CARE_UNIT, patient_id, record)
            if answer.changed:
                # the unit's care workers may read the list now, or no longer (the read
                # copy decides on its own copy of the registrations)
                fact = access_events.CARE_UNIT_ENDED if action == _END else access_events.CARE_UNIT
                access_events.changed(conn, svc.ids(), patient_id, head, fact, svc.clock())
            return answer
