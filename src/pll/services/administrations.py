"""Recording what was given (issue 17, docs/administration.md "Recording what was given"):
``MedicationAdministration`` recorded, corrected, read and searched.

A recording opens one transaction, decides access through the audit trail
(:attr:`~pll.auth.access.Verb.ADMINISTER`: nurses and care workers of a unit the patient is
registered with; a refusal is logged in the patient's access log), locks the patient's list
(so two recordings of one patient — and a change of the list — are judged one after the
other), loads the list, what was already given and whether the medicine is a controlled
drug, and lets :func:`pll.domain.administration.records.judge` decide. Refused: nothing is
written but the refusal's audit record. Accepted: the record, its first version and the
audit record commit together. A correction is a new version, never an edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from pll.auth.access import Access, Verb
from pll.domain.administration import OSLO
from pll.domain.administration import records as rules
from pll.domain.administration.as_needed import LONGEST
from pll.domain.administration.keys import check_moment, parse_key
from pll.domain.administration.records import Recording, Status
from pll.domain.administration.unit_settings import needs_second_signature
from pll.domain.errors import (
    Conflict,
    NotFound,
    PreconditionRequired,
    VersionConflict,
)
from pll.domain.model import Entry
from pll.fhir import administrations as fhir_ma
from pll.fhir.acknowledgements import flag_record
from pll.services.acknowledgements import pending
from pll.services.base import Stored
from pll.services.decision_support import named
from pll.services.lists import PLLService
from pll.services.unit_settings import on_day
from pll.store import administrations as store
from pll.store import catalog as catalog_store
from pll.store import repository as repo
from pll.store.repository import dumps

_R = "MedicationAdministration"


@dataclass
class AdministrationService:
    service: PLLService

    def record(self, access: Access, data: Any) -> Stored:
        """Record a dose given or not given; the stored ``MedicationAdministration``."""
        rec, patient_id = fhir_ma.recording(data)
        return self.give(access, patient_id, rec, fhir_ma.notes_of(data))

    def give(
        self,
        access: Access,
        patient_id: str,
        rec: Recording,
        notes: list[dict[str, Any]] | None = None,
    ) -> Stored:
        """Record ``rec`` for the patient: the use case behind :meth:`record`, for callers
        that state it without FHIR (the ``/kurve`` pages). The refusals are the domain's
        (:func:`pll.domain.administration.records.judge`), with their places named as in a
        ``MedicationAdministration``."""
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            rid = svc.ids()
            svc.trail.admit(conn, access, Verb.ADMINISTER, patient_id, "create", _R, rid)
            head = repo.list_row(conn, patient_id=patient_id, lock=True)
            if head is None:
                raise Conflict(
                    f"Patient/{patient_id} has no medication list to give from.",
                    f"{_R}.subject",
                    norwegian="Pasienten har ingen legemiddelliste å gi fra.",
                )
            now = svc.clock()
            lst = repo.load_list(conn, head, now, [rec.entry_id])
            entry = lst.entries.get(rec.entry_id)
            check_moment(rec.at, f"{_R}.effectiveDateTime")
            day = rec.at.astimezone(OSLO).date()
            # the giver's unit's clock times and second-signature rule, as on the day planned
            planned_day = parse_key(rec.slot_key).day if rec.slot_key else day
            unit = on_day(conn, access, patient_id, planned_day)
            # an as-needed maximum counts every period of its length around the time given
            near = (rec.at - LONGEST, rec.at + LONGEST)
            judged = rules.judge(
                lst,
                rec,
                now=now,
                giver_hpr=access.actor.hpr,
                controlled=entry is not None
                and needs_second_signature(rx_group(conn, entry), unit),
                slot_taken=rec.slot_key is not None and store.slot_taken(conn, rec.slot_key),
                given=store.given_between(conn, *near, entry_id=rec.entry_id),
                slots=unit.times,
            )
            if entry is None:  # pragma: no cover - judge refuses an entry not on the list
                raise NotFound(f"MedicationStatement/{rec.entry_id} does not exist.")
            resource = fhir_ma.record(
                rid, 1, now, rec, judged, patient_id, entry, access.actor, notes
            )
            # allowed (the patient must not miss a dose), but flagged: the giver's unit had
            # not acknowledged a change of this entry
            unseen = pending(conn, lst.id, patient_id, lst.version, access.actor.org_id)
            if unseen is not None:
                flag_record(resource, unseen.of_entry(entry.id))
            text = dumps(resource)
            key = judged.planned.key if judged.planned is not None else None
            values = {
                "id": rid,
                "version": 1,
                "patient_id": patient_id,
                "list_id": lst.id,
                "entry_id": entry.id,
                "entry_version": entry.version,
                "slot_key": key,
                "slot_taken": key,
                "day": judged.day.isoformat(),
                "status": rec.status.value,
                "amount": None if judged.amount is None else str(judged.amount),
                "unit": judged.unit,
                "planned_amount": None if judged.planned is None else str(judged.planned.amount),
                "performer": svc.trail.actor(access),
                "verifier_hpr": rec.verifier_hpr,
                "status_reason": rec.reason.value if rec.reason else None,
                "effective_at": rec.at,
                "recorded_at": now,
                "updated_at": now,
                "resource": text,
            }
            try:
                with conn.begin_nested():
                    store.add(conn, values, svc.trail.actor(access))
            except IntegrityError:
                # two nurses recorded the same planned dose at the same moment
                raise Conflict(
                    f"The planned dose {key} is already recorded.",
                    f"{_R}.extension",
                    norwegian="Denne dosen er allerede registrert (av deg eller en kollega).",
                ) from None
            return Stored(text, 1, now, patient_id)

    def correct(self, access: Access, rid: str, data: Any, expected: int | None) -> Stored:
        """A new version of a record (``PUT`` with ``If-Match``): ``entered-in-error`` with a
        reason, or notes added (the effect of an as-needed dose)."""
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            row = _row(conn, rid)
            svc.trail.admit(conn, access, Verb.ADMINISTER, row.patient_id, "update", _R, rid)
            # the list first, then the record: the order every write takes its locks in
            repo.list_row(conn, list_id=row.list_id, lock=True)
            row = _row(conn, rid, lock=True)
            if expected is None:
                raise PreconditionRequired(
                    'Send If-Match with the version you correct (W/"n").', "If-Match"
                )
            if expected != row.version:
                raise VersionConflict(
                    f"{_R}/{rid} is at version {row.version}, not {expected}; read it again.",
                    "If-Match",
                    {"currentVersion": str(row.version), "yourVersion": str(expected)},
                )
            current = orjson.loads(row.resource)
            change = fhir_ma.correction(data, current)
            rules.correct(Status(row.status), change.status, change.reason, len(change.notes))
            now = svc.clock()
            version = row.version + 1
            text = dumps(fhir_ma.corrected(current, change, version, now))
            error = change.status is Status.ENTERED_IN_ERROR
            store.save(
                conn,
                rid,
                {
                    "version": version,
                    "status": change.status.value,
                    "slot_taken": None if error else row.slot_taken,
                    "updated_at": now,
                    "resource": text,
                },
                svc.trail.actor(access),
            )
            return Stored(text, version, now, row.patient_id)

    def read(self, access: Access, rid: str) -> Stored:
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            row = _row(conn, rid)
            svc.trail.admit(conn, access, Verb.READ, row.patient_id, "read", _R, rid)
            return Stored(row.resource, row.version, row.updated_at, row.patient_id)

    def history(self, access: Access, rid: str) -> list[Stored]:
        """Every version of a record, newest first."""
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            row = _row(conn, rid)
            svc.trail.admit(conn, access, Verb.READ, row.patient_id, "history", _R, rid)
            return [
                Stored(v.resource, v.version, v.recorded_at, row.patient_id)
                for v in store.versions(conn, rid)
            ]

    def search(
        self, access: Access, patient_id: str, day: date | None, count: int, offset: int
    ) -> tuple[int, list[str]]:
        """A page of the patient's records (of one local day, if given), audited as a read."""
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            svc.trail.admit(conn, access, Verb.READ, patient_id, "search", _R, None)
            return store.for_patient(conn, patient_id, day, count, offset)


def _row(conn: Connection, rid: str, *, lock: bool = False) -> Any:
    row = store.current(conn, rid, lock=lock)
    if row is None:
        raise NotFound(f"{_R}/{rid} does not exist.", "id")
    return row


def rx_group(conn: Connection, entry: Entry) -> str | None:
    """The prescription group (*reseptgruppe*) of the entry's medicine in the catalogue in
    use, found by its FEST code as decision support finds it. A medicine named by ATC or
    text only has none known, so it is not known to be controlled (docs/administration.md)."""
    fest = named(entry.id, entry.content).fest
    version = catalog_store.active(conn) if fest else None
    if fest is None or version is None:
        return None
    row = catalog_store.drugs_by_code(conn, version, [fest]).get(fest)
    return None if row is None else row.rx_group
