"""Writing an accepted change: the list row and its stored documents, the list version
with every resource version it wrote, and the change's outgoing event, all in the caller's
open transaction (rules 1 and 7).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, update

from pll.domain.model import ListVersion, MedicationList
from pll.store import pipeline
from pll.store.list_rows import dumps
from pll.store.schema import (
    entry,
    entry_version,
    outbox,
    pll,
    pll_version,
    prescription,
    prescription_version,
    provenance_target,
)

# Statements are built once, here: building one costs more than running it, and the
# write path runs a dozen of them (DESIGN §6).
_INSERT_LIST = insert(pll)
_UPDATE_LIST = update(pll).where(pll.c.id == bindparam("key"))
_INSERT_VERSION = insert(pll_version)
_INSERT_ENTRY = insert(entry)
_UPDATE_ENTRY = update(entry).where(entry.c.id == bindparam("key"))
_INSERT_ENTRY_VERSION = insert(entry_version)
_INSERT_RX = insert(prescription)
_UPDATE_RX = update(prescription).where(prescription.c.id == bindparam("key"))
_INSERT_RX_VERSION = insert(prescription_version)
_INSERT_TARGET = insert(provenance_target)
#: ``inline``: no ``RETURNING id`` (nobody reads it), so it can be pipelined
#: (pll.store.pipeline)
_INSERT_EVENT = insert(outbox).inline()


def _list_values(lst: MedicationList, document: str, expires: datetime | None) -> dict[str, Any]:
    return {
        "version": lst.version,
        "updated_at": lst.updated,
        "baton": dumps(lst.baton.to_json()),
        "pause": dumps(
            {
                "by": lst.pause.by.to_json(),
                "at": lst.pause.at.isoformat(),
                "reason": lst.pause.reason,
            }
        )
        if lst.pause
        else None,
        "confirmation": dumps(
            {
                "by": lst.confirmation.by.to_json(),
                "at": lst.confirmation.at.isoformat(),
                "version": lst.confirmation.version,
            }
        )
        if lst.confirmation
        else None,
        "expires_at": expires,
        "document": document,
        "withdrawn": dumps(sorted(lst.withdrawn)) if lst.withdrawn else None,
        "dispensed": dumps({k: v.__dict__ for k, v in sorted(lst.dispensed.items())})
        if lst.dispensed
        else None,
    }


def insert_list(
    conn: Connection, lst: MedicationList, document: str, expires: datetime | None
) -> None:
    """A new list row with its stored document; the List itself is its version row
    (:func:`save_version`), stored once (migration 0028)."""
    values = _list_values(lst, document, expires)
    pipeline.execute(
        conn,
        _INSERT_LIST,
        {"id": lst.id, "patient_id": lst.patient_id, "created_at": lst.created, **values},
    )


def save_list(
    conn: Connection, lst: MedicationList, document: str, expires: datetime | None
) -> None:
    pipeline.execute(conn, _UPDATE_LIST, {"key": lst.id, **_list_values(lst, document, expires)})


def save_documents(conn: Connection, list_id: str, document: str, expires: datetime | None) -> None:
    """The stored document rebuilt at the same list version (a prescription expired, so it is
    marked; the List, its version row, is unchanged)."""
    pipeline.execute(
        conn, _UPDATE_LIST, {"key": list_id, "document": document, "expires_at": expires}
    )


def save_version(
    conn: Connection,
    lst: MedicationList,
    record: ListVersion,
    list_json: str,
    resources: dict[tuple[str, str], str],
    client_id: str | None = None,
) -> None:
    """Write one accepted change: its list version, every resource version, the targets
    that make it findable as ``Provenance`` (rule 1). ``client_id``: the client system the
    change came through (a change made by PLL itself or a pharmacy's record has none)."""
    touched = [
        {"type": t.resource_type, "id": t.id, "version": t.version, "action": t.action}
        for t in record.touched
    ]
    author = dumps(record.author.to_json())
    pipeline.execute(
        conn,
        _INSERT_VERSION,
        {
            "list_id": lst.id,
            "version": record.version,
            "recorded_at": record.recorded,
            "author": author,
            "activity": record.activity,
            "reason": record.reason,
            "touched": dumps(touched),
            "list_json": list_json,
            "override": record.override,
            "client_id": client_id,
        },
    )
    history = {"list_version": record.version, "recorded_at": record.recorded, "changed_by": author}
    for t in record.touched:
        if t.resource_type == "MedicationStatement":
            e = lst.entries[t.id]
            values = {
                "version": e.version,
                "status": e.status,
                "last_changed": e.last_changed,
                "changed_by": author,
                "ended_at": e.ended_at,
            }
            if t.action == "create":
                pipeline.execute(conn, _INSERT_ENTRY, {"id": e.id, "list_id": lst.id, **values})
            else:
                pipeline.execute(conn, _UPDATE_ENTRY, {"key": e.id, **values})
            # the resource goes once, in its version row: the current one (migration 0027)
            pipeline.execute(
                conn,
                _INSERT_ENTRY_VERSION,
                {
                    "entry_id": e.id,
                    "version": e.version,
                    "resource": resources[(t.resource_type, t.id)],
                    **history,
                },
            )
        elif t.resource_type == "MedicationRequest":
            rx = lst.prescriptions[t.id]
            values = {
                "version": rx.version,
                "status": rx.status,
                "prior_id": rx.prior_id,
                "last_changed": rx.last_changed,
                "changed_by": author,
            }
            if t.action == "create":
                pipeline.execute(conn, _INSERT_RX, {"id": rx.id, "list_id": lst.id, **values})
            else:
                pipeline.execute(conn, _UPDATE_RX, {"key": rx.id, **values})
            pipeline.execute(
                conn,
                _INSERT_RX_VERSION,
                {
                    "prescription_id": rx.id,
                    "version": rx.version,
                    "resource": resources[(t.resource_type, t.id)],
                    **history,
                },
            )
    pipeline.execute(
        conn,
        _INSERT_TARGET,
        [
            {
                "target_type": t.resource_type,
                "target_id": t.id,
                "list_id": lst.id,
                "list_version": record.version,
                "target_version": t.version,
            }
            for t in record.touched
        ],
    )


def add_event(
    conn: Connection,
    event_id: str,
    lst: MedicationList,
    kind: str,
    now: datetime,
    payload: dict[str, Any],
) -> None:
    """The change's outgoing event, in the change's own transaction (rule 7).

    The caller holds the list row's lock (:func:`~pll.store.list_rows.list_row` with
    ``lock``), or has just inserted the list: every event of a patient is written under that
    lock. No other lock is taken, so writes to different patients commit side by side
    (issue 20).

    On PostgreSQL the server gives the event its ``tx`` (migration 0022): the larger of the
    writer's transaction id and the newest id of a transaction that had finished when the
    insert began (``pg_snapshot_xmax`` less one). Consumers read in ``(tx, id)`` order, never
    past the oldest transaction still running (:mod:`pll.events.outbox`); that rests on three
    facts:

    - ``tx`` is at least the writer's own transaction id, so an event that has not committed
      is never behind the place of a consumer that has read past it.
    - A later writer to the same patient got the list row lock only when the earlier one had
      committed, so its insert sees that transaction finished and its ``tx`` is at least the
      earlier ``tx``; the earlier event also has the smaller id (the outbox sequence hands
      ids out in call order: it must keep ``CACHE 1``). The writers' own transaction
      ids need not be in that order (an id is handed out at a transaction's first write,
      which may come before it waits for the lock), which is why ``tx`` is not simply one.
    - ``tx`` is the id of a transaction that has finished once the writer has committed, so
      with nothing else running the event can be read at once (the snapshot's ``xmax``
      itself, one more, would wait for some later transaction to end).

    Whatever else inserts events (a bulk load) gets ``tx`` the same way, by leaving the column
    out. A write transaction must run at READ COMMITTED (:meth:`pll.store.db.Database.write`):
    the insert's snapshot must be taken after the list row lock was granted. SQLite commits
    one writer at a time; ``tx`` is 0 there and ids are in commit order."""
    _event(conn, event_id, lst.patient_id, lst.id, lst.version, kind, now, payload)


def add_patient_event(
    conn: Connection,
    event_id: str,
    patient_id: str,
    head: Row[Any] | None,
    kind: str,
    now: datetime,
    payload: dict[str, Any],
) -> None:
    """An event about a patient that makes no list version (who may see the list changed:
    ``access-changed``), in the change's own transaction, as :func:`add_event`.

    ``head`` is the patient's list row, which the caller has locked
    (:func:`~pll.store.list_rows.list_row` with ``lock``) before the change: the event then
    names the list at its current version and stands among the list's events in their order.
    ``None``: the patient has no list, and the event names none (list ``""``, version 0). No
    lock orders it among the patient's events then; a consumer that reads the patient's state
    afresh for each event (the read copy) does not need one."""
    list_id, version = (str(head.id), int(head.version)) if head is not None else ("", 0)
    _event(conn, event_id, patient_id, list_id, version, kind, now, payload)


def _event(
    conn: Connection,
    event_id: str,
    patient_id: str,
    list_id: str,
    version: int,
    kind: str,
    now: datetime,
    payload: dict[str, Any],
) -> None:
    pipeline.execute(
        conn,
        _INSERT_EVENT,
        {
            "event_id": event_id,
            "patient_id": patient_id,
            "list_id": list_id,
            "list_version": version,
            "kind": kind,
            "created_at": now,
            "payload": dumps(payload),
        },
    )
