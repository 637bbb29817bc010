"""Changes a care unit has not yet taken in, and their acknowledgement (issue 17,
docs/administration.md "Acknowledging changes").

:func:`pending` answers, inside the caller's transaction, the changes that touch giving
which a unit has not acknowledged: from the unit's base (the newest list version it
acknowledged since its open registration with the patient began, else the version current
when that registration began — 0 when the list did not exist yet) to the list's current
version, by :func:`pll.domain.administration.changes.unacknowledged`. The schedule marks
them, a recording is flagged by them, and :class:`AcknowledgementService` takes them in.

The work is bounded by what changed since the base: the entry versions and list versions
written after it (and each touched entry's version at the base).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection

from pll.auth.access import Access, Verb
from pll.domain.administration.changes import Change, ListState, unacknowledged
from pll.domain.errors import Conflict, NotFound
from pll.fhir import acknowledgements as fhir_ack
from pll.fhir import systems
from pll.services.lists import PLLService
from pll.store import acknowledgements as store
from pll.store import repository as repo
from pll.store.repository import author_of, dumps

#: The audit action (``AuditEvent.subtype`` ``operation``): the nurse read the changes and
#: acknowledged them for the unit.
ACTION = "acknowledge-changes"


@dataclass(frozen=True)
class Pending:
    """A unit's unacknowledged changes of a list: made by versions ``base < v <= upto``."""

    unit: str
    base: int
    upto: int
    changes: tuple[Change, ...]

    def of_entry(self, entry_id: str) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.entry_id == entry_id)


def base_of(conn: Connection, list_id: str, patient_id: str, unit: str) -> int | None:
    """The list version the unit has taken in; ``None`` when the patient is not registered
    with the unit (it has nothing to acknowledge)."""
    started = store.registration_start(conn, patient_id, unit)
    if started is None:
        return None
    at_start = store.version_at(conn, list_id, started)
    return max(at_start, store.acknowledged(conn, list_id, unit, started))


def changes_between(conn: Connection, list_id: str, base: int, upto: int) -> tuple[Change, ...]:
    """The changes that touch giving made by list versions ``base < v <= upto``."""
    if upto <= base:
        return ()
    entries = store.entry_versions(conn, list_id, base, upto)
    states = [
        ListState(r.version, _paused(r.list_json), author_of(r.author), r.recorded_at)
        for r in store.list_versions(conn, list_id, base, upto)
    ]
    return unacknowledged(base, upto, entries, states)


def pending(
    conn: Connection, list_id: str, patient_id: str, current: int, unit: str | None
) -> Pending | None:
    """The unit's unacknowledged changes up to the list's ``current`` version; ``None``
    when there is no unit or the patient is not registered with it."""
    if unit is None:
        return None
    base = base_of(conn, list_id, patient_id, unit)
    if base is None:
        return None
    return Pending(unit, base, current, changes_between(conn, list_id, base, current))


def _paused(list_json: str) -> bool:
    resource = orjson.loads(list_json)
    return any(e.get("url") == systems.EXT_PAUSED for e in resource.get("extension") or [])


@dataclass
class AcknowledgementService:
    service: PLLService

    def acknowledge(
        self, access: Access, list_id: str, data: Any, patient_id: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """``POST List/{id}/$acknowledge-changes``: a nurse of a unit the patient is
        registered with acknowledges, for the unit, the list's changes up to ``version``.
        Answers the ``Parameters`` of :func:`pll.fhir.acknowledgements.acknowledged_answer`
        and whether anything was written.

        Refused with nothing written: a bad ``version`` (``InvalidInput``), an unknown list
        (``NotFound``), anyone but a nurse of a unit the patient is registered with
        (``Forbidden``, logged), a version the list has not reached (``Conflict``, naming
        the current one). A version at or below what the unit already acknowledged is
        answered (200) with ``written`` false and nothing written: acknowledging is
        idempotent, and the history keeps only real steps forward. With ``patient_id`` (a
        page showing one patient's chart), a list that is not that patient's is unknown."""
        version = fhir_ack.acknowledge_request(data)
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            head = repo.list_row(conn, list_id=list_id)
            if head is None or patient_id not in (None, head.patient_id):
                raise NotFound(f"List/{list_id} does not exist.", "List.id")
            svc.trail.admit(
                conn, access, Verb.ACKNOWLEDGE, head.patient_id, ACTION, "List", list_id
            )
            # the list's row: a change of the list waits, so 'current' stays current
            head = repo.list_row(conn, list_id=list_id, lock=True)
            if head is None:  # pragma: no cover - a list is never deleted
                raise NotFound(f"List/{list_id} does not exist.", "List.id")
            if version > head.version:
                raise Conflict(
                    f"List/{list_id} is at version {head.version}; version {version} cannot be "
                    "acknowledged before it exists. Read the list and its schedule again.",
                    "Parameters.parameter[0]",
                    {"currentVersion": str(head.version)},
                )
            unit = access.actor.org_id
            base = base_of(conn, head.id, head.patient_id, unit) if unit else None
            if unit is None or base is None:  # pragma: no cover - the policy refused it
                raise Conflict("The patient is not registered with your care unit.", "List.id")
            written = version > base
            taken_in: tuple[Change, ...] = ()
            if written:
                taken_in = changes_between(conn, head.id, base, version)
                store.add(
                    conn,
                    {
                        "id": svc.ids(),
                        "unit_orgnr": unit,
                        "patient_id": head.patient_id,
                        "list_id": head.id,
                        "list_version": version,
                        "base_version": base,
                        "acknowledged_by": dumps(access.actor.to_json()),
                        "acknowledged_at": svc.clock(),
                    },
                    taken_in,
                )
            remaining = changes_between(conn, head.id, max(base, version), head.version)
        answer = fhir_ack.acknowledged_answer(
            list_id, version, base, taken_in, remaining, written=written
        )
        return answer, written
