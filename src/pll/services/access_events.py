"""The events that say what decides access to a patient's list has changed.

A patient's block on a health worker, a proxy (fullmakt) for them, their multidose parties
and their care unit registrations decide who may read their list (:meth:`pll.auth.access
.Access.decide`). The read copy decides reads on its own copy of these facts
(``docs/events.md``, "The read copy"), so every change of one writes an ``access-changed``
event in its own transaction, as a list change writes ``list-changed`` (DESIGN §3 rule 7).
A change that writes a list version anyway (the multidose parties, shown on the list) needs
none: the read copy reads the patient's facts afresh for every event that names them.

Locks: the change takes the patient's list row first (:func:`lock`), as every write does
(list, then anything else), so the event stands among the list's own in order. A patient
without a list has no row to take: the event then names no list
(:func:`pll.store.repository.add_patient_event`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from pll.events.outbox import ACCESS_CHANGED
from pll.store import repository as repo

#: what changed, in the event's ``fact``: the patient's consumers need no more to know
#: what to read again (the event carries no HPR or person number)
BLOCK, BLOCK_ENDED = "block", "block-ended"
PROXY, PROXY_ENDED = "proxy", "proxy-ended"
CARE_UNIT, CARE_UNIT_ENDED = "care-unit", "care-unit-ended"
MULTIDOSE = "multidose"


def lock(conn: Connection, patient_id: str) -> Row[Any] | None:
    """Take the patient's list row for the change (``None``: the patient has no list)."""
    return repo.list_row(conn, patient_id=patient_id, lock=True)


def changed(
    conn: Connection,
    event_id: str,
    patient_id: str,
    head: Row[Any] | None,
    fact: str,
    now: datetime,
) -> None:
    """Write the ``access-changed`` event of a change made in this transaction, under the
    list row :func:`lock` took (``head``)."""
    payload: dict[str, Any] = {"patient": f"Patient/{patient_id}", "fact": fact}
    if head is not None:
        payload |= {"list": f"List/{head.id}", "version": int(head.version)}
    repo.add_patient_event(conn, event_id, patient_id, head, ACCESS_CHANGED, now, payload)
