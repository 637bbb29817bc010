"""The patient's side of access: blocks on named health workers, the access log, proxies.

Only the patient, or a person holding a proxy for them, may see or change these
(:attr:`~pll.auth.access.Verb.OWN`), and every use is itself logged. Proxies come from the
national proxy register (helsenorge), which PLL does not run; ``pll proxy add`` records
them here. A block ends the blocked worker's subscriptions to the patient's list at once
(:func:`pll.services.subscriptions.end_refused`), whatever basis they were made on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from pll.auth.access import Access, Verb
from pll.domain.errors import Conflict, InvalidInput, NotFound
from pll.domain.identifiers import parse_person_identifier
from pll.fhir import access as fhir_access
from pll.services import access_events
from pll.services.lists import PLLService
from pll.services.subscriptions import end_refused
from pll.store import audit_log
from pll.store import repository as repo
from pll.store.db import Database
from pll.store.repository import dumps


@dataclass
class PatientAccess:
    """Blocks and the access log, decided and logged through the list service's trail."""

    service: PLLService

    def block(self, access: Access, resource: dict[str, Any]) -> dict[str, Any]:
        """Record a patient's block on one health worker (``POST Consent``)."""
        patient_id, hpr = fhir_access.blocked_hpr(resource)
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            head = access_events.lock(conn, patient_id)
            if head is None and repo.get_patient(conn, patient_id) is None:
                raise InvalidInput(f"Patient/{patient_id} does not exist.", "Consent.patient")
            block_id = svc.ids()
            svc.trail.admit(conn, access, Verb.OWN, patient_id, "create", "Consent", block_id)
            if any(r.hpr == hpr and r.ended_at is None for r in audit_log.blocks(conn, patient_id)):
                raise Conflict(
                    f"HPR {hpr} is already blocked for this patient.",
                    "Consent.provision.actor",
                )
            now = svc.clock()
            stored = fhir_access.consent(block_id, patient_id, hpr, now, None, _display(resource))
            audit_log.insert_block(conn, block_id, patient_id, hpr, now, dumps(stored))
            access_events.changed(conn, svc.ids(), patient_id, head, access_events.BLOCK, now)
            # the blocked worker's subscriptions end with the block (the dispatcher would
            # refuse their next notification anyway, but they stop here, at once)
            end_refused(conn, svc.trail, patient_id, now)
            return stored

    def unblock(self, access: Access, block_id: str) -> dict[str, Any]:
        """End a block (``DELETE Consent/<id>``); the Consent stays, as ``inactive``."""
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            row = audit_log.block(conn, block_id)
            if row is None:
                raise NotFound(f"Consent/{block_id} does not exist.", "Consent.id")
            svc.trail.admit(conn, access, Verb.OWN, row.patient_id, "delete", "Consent", block_id)
            stored: dict[str, Any] = orjson.loads(row.resource)
            if row.ended_at is not None:
                return stored
            # the list before the change (every write's order); the block is read again
            # under it, so two ends of one block at once make one change and one event
            head = access_events.lock(conn, row.patient_id)
            row = audit_log.block(conn, block_id, lock=True)
            if row is None or row.ended_at is not None:
                return stored
            now = svc.clock()
            stored = fhir_access.consent(
                block_id, row.patient_id, row.hpr, row.created_at, now, _display(stored)
            )
            audit_log.end_block(conn, block_id, now, dumps(stored))
            access_events.changed(
                conn, svc.ids(), row.patient_id, head, access_events.BLOCK_ENDED, now
            )
            return stored

    def read_block(self, access: Access, block_id: str) -> dict[str, Any]:
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            row = audit_log.block(conn, block_id)
            if row is None:
                raise NotFound(f"Consent/{block_id} does not exist.", "Consent.id")
            svc.trail.admit(conn, access, Verb.OWN, row.patient_id, "read", "Consent", block_id)
            found: dict[str, Any] = orjson.loads(row.resource)
            return found

    def blocks(self, access: Access, patient_id: str) -> list[dict[str, Any]]:
        """The patient's blocks, current and ended (``GET Consent?patient=``)."""
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            if repo.get_patient(conn, patient_id) is None:
                return []
            svc.trail.admit(conn, access, Verb.OWN, patient_id, "search", "Consent", None)
            return [orjson.loads(r.resource) for r in audit_log.blocks(conn, patient_id)]

    def access_log(
        self, access: Access, patient_id: str, count: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """Who accessed the patient's data, newest first (``GET AuditEvent?patient=``).

        The patient's own reading of the log is logged too, after the page is taken, so a
        page does not show the request that fetched it.
        """
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            if repo.get_patient(conn, patient_id) is None:
                return 0, []
            total, rows = audit_log.for_patient(conn, patient_id, count, offset)
            svc.trail.admit(conn, access, Verb.OWN, patient_id, "search", "AuditEvent", None)
            return total, [fhir_access.audit_event(r) for r in rows]

    def proxies(self, access: Access) -> list[str]:
        """The persons the calling patient holds a proxy (fullmakt) for, by fødselsnummer or
        D-nummer. This is the holder's own record, so nothing is logged here; whether the
        proxy may read a person's data is decided, and logged, when it does."""
        if not access.is_patient or not access.actor.pid:
            return []
        with self.service.db.read() as conn:
            return audit_log.proxies_held(conn, access.actor.pid)


def _display(resource: dict[str, Any]) -> str | None:
    actors = (resource.get("provision") or {}).get("actor") or [{}]
    display = (actors[0].get("reference") or {}).get("display")
    return str(display)[:200] if display else None


def register_proxy(db: Database, holder: str, patient: str, *, add: bool) -> bool:
    """Record (or end) that ``holder`` may act for ``patient``, both fødselsnummer or
    D-nummer; returns whether anything changed."""
    holder_id = parse_person_identifier(None, holder, "holder").value
    person = parse_person_identifier(None, patient, "patient")
    if holder_id == person.value:
        raise InvalidInput("A person needs no proxy for themself.", "holder")
    with db.write() as conn:
        # a proxy is kept by person number, and may come before the person is registered:
        # the event names the patient if there is one (the read copy then reads the
        # person's proxies again); of a person registered later, the read copy reads them
        # with the patient's first event (docs/events.md, "The read copy")
        registered = repo.find_patient(conn, person.system, person.value)
        head = access_events.lock(conn, registered.id) if registered is not None else None
        now = datetime.now(UTC)
        if add:
            done = audit_log.add_proxy(conn, holder_id, person.value, now)
        else:
            done = audit_log.remove_proxy(conn, holder_id, person.value)
        if done and registered is not None:
            fact = access_events.PROXY if add else access_events.PROXY_ENDED
            access_events.changed(conn, str(uuid.uuid4()), registered.id, head, fact, now)
        return done
