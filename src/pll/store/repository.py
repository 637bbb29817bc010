"""Reading and writing PLL rows. Every function takes the caller's open transaction.

The write path loads a list *aggregate*: the list row (locked), the entries shown on the
list, the prescriptions in use, and any extra rows a request names, so that the domain can
check its rules on everything that matters without loading years of history.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

import orjson
from sqlalchemy import (
    Connection,
    Row,
    Select,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)

from pll.domain.model import (
    DISCONTINUED_VISIBLE_FOR,
    ENDED,
    IN_USE,
    RX_ACTIVE,
    Author,
    Confirmation,
    Dispensed,
    Entry,
    ListVersion,
    MedicationList,
    Multidose,
    Pause,
    Prescription,
)
from pll.store import multidose as multidose_store
from pll.store import pipeline
from pll.store.schema import (
    entry,
    entry_version,
    outbox,
    patient,
    pll,
    pll_version,
    prescription,
    prescription_version,
    provenance_target,
)


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def content_of(resource_text: str) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(resource_text)
    for key in ("id", "meta"):
        data.pop(key, None)
    return data


# -- patients ------------------------------------------------------------------------------


def find_patient(conn: Connection, system: str, value: str) -> Row[Any] | None:
    return conn.execute(
        select(patient).where(
            patient.c.identifier_system == system, patient.c.identifier_value == value
        )
    ).first()


def get_patient(conn: Connection, patient_id: str) -> Row[Any] | None:
    return conn.execute(select(patient).where(patient.c.id == patient_id)).first()


def insert_patient(
    conn: Connection, pid: str, system: str, value: str, now: datetime, resource: str
) -> None:
    conn.execute(
        insert(patient).values(
            id=pid,
            identifier_system=system,
            identifier_value=value,
            version=1,
            created_at=now,
            updated_at=now,
            resource=resource,
        )
    )


# -- lists ---------------------------------------------------------------------------------


# Statements are built once, here: building one costs more than running it, and the
# write path runs a dozen of them (DESIGN §6).
_LIST_COLUMNS = [c for c in pll.c if c.name != "document"]
_LIST = {
    (key, lock): (
        select(*_LIST_COLUMNS).where(column == bindparam("key")).with_for_update()
        if lock
        else select(*_LIST_COLUMNS).where(column == bindparam("key"))
    )
    for key, column in (("list", pll.c.id), ("patient", pll.c.patient_id))
    for lock in (False, True)
}
_LOAD_ENTRIES = select(entry).where(
    entry.c.list_id == bindparam("list_id"),
    or_(
        entry.c.status.in_(IN_USE),
        and_(entry.c.status.in_(ENDED), entry.c.ended_at > bindparam("since")),
        entry.c.id.in_(bindparam("ids", expanding=True)),
    ),
)
#: when PLL first recorded a prescription (its first version): the issue date of last resort
#: for one stored with neither ``authoredOn`` nor a validity (pll.domain.prescriptions.end_of)
_RX_RECORDED = (
    select(prescription_version.c.recorded_at)
    .where(
        prescription_version.c.prescription_id == prescription.c.id,
        prescription_version.c.version == 1,
    )
    .scalar_subquery()
    .label("recorded_at")
)
_LOAD_PRESCRIPTIONS = select(prescription, _RX_RECORDED).where(
    prescription.c.list_id == bindparam("list_id"),
    or_(
        prescription.c.status.in_(RX_ACTIVE),
        prescription.c.id.in_(bindparam("ids", expanding=True)),
        prescription.c.prior_id.in_(bindparam("ids", expanding=True)),
    ),
)
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


def list_row(
    conn: Connection,
    *,
    list_id: str | None = None,
    patient_id: str | None = None,
    lock: bool = False,
) -> Row[Any] | None:
    """The list row (all but the stored document), locked for a change when ``lock``."""
    query = _LIST[("list" if list_id else "patient", lock)]
    return conn.execute(query, {"key": list_id or patient_id}).first()


def coded_entries(conn: Connection, after: str, limit: int) -> Sequence[Row[Any]]:
    """Entries in use on any list, by id after ``after``: ``(id, list_id, resource)``."""
    rows = conn.execute(
        select(entry.c.id, entry.c.list_id, entry.c.resource)
        .where(entry.c.status.in_(IN_USE), entry.c.id > after)
        .order_by(entry.c.id)
        .limit(limit)
    ).all()
    return cast("Sequence[Row[Any]]", rows)


def flagged_lists(conn: Connection) -> dict[str, frozenset[str]]:
    """The lists that flag entries as withdrawn from the catalogue, with those entries."""
    rows = conn.execute(select(pll.c.id, pll.c.withdrawn).where(pll.c.withdrawn.is_not(None)))
    return {r.id: frozenset(orjson.loads(r.withdrawn)) for r in rows}


def list_exists_for(conn: Connection, patient_id: str) -> bool:
    return list_row(conn, patient_id=patient_id) is not None


@lru_cache(maxsize=4096)
def author_of(text: str) -> Author:
    """An author from its stored JSON; authors repeat, and they are immutable."""
    return Author.from_json(orjson.loads(text))


def _entry_from(row: Row[Any]) -> Entry:
    return Entry(
        id=row.id,
        version=row.version,
        content=content_of(row.resource),
        last_changed=row.last_changed,
        changed_by=author_of(row.changed_by),
        ended_at=row.ended_at,
    )


def _rx_from(row: Row[Any]) -> Prescription:
    return Prescription(
        id=row.id,
        version=row.version,
        content=content_of(row.resource),
        last_changed=row.last_changed,
        changed_by=author_of(row.changed_by),
        recorded=row.recorded_at,
    )


def pause_of(row: Row[Any]) -> Pause | None:
    """The pause (Pause PLL) of a list row, ``None`` when the list is not paused."""
    if not row.pause:
        return None
    pause = orjson.loads(row.pause)
    return Pause(
        Author.from_json(pause["by"]), datetime.fromisoformat(pause["at"]), pause["reason"]
    )


def load_list(
    conn: Connection,
    row: Row[Any],
    now: datetime,
    entry_ids: Iterable[str] = (),
    rx_ids: Iterable[str] = (),
    multidose: Multidose | None = None,
) -> MedicationList:
    """The aggregate the domain needs to judge a change to this list: the entries shown on
    it, the prescriptions in use or linked, and whatever else the request names.
    ``multidose``: the patient's multidose state when the caller has read it already (with
    the access facts, :meth:`pll.services.audit.AuditTrail.admit_change`)."""
    entry_rows = conn.execute(
        _LOAD_ENTRIES,
        {"list_id": row.id, "since": now - DISCONTINUED_VISIBLE_FOR, "ids": sorted(set(entry_ids))},
    ).all()
    entries = {r.id: _entry_from(r) for r in entry_rows}
    linked = {rx for e in entries.values() for rx in e.prescription_ids}
    rx_rows = conn.execute(
        _LOAD_PRESCRIPTIONS, {"list_id": row.id, "ids": sorted(linked | set(rx_ids))}
    ).all()
    conf = orjson.loads(row.confirmation) if row.confirmation else None
    return MedicationList(
        id=row.id,
        patient_id=row.patient_id,
        version=row.version,
        created=row.created_at,
        updated=row.updated_at,
        baton=author_of(row.baton),
        entries=entries,
        prescriptions={r.id: _rx_from(r) for r in rx_rows},
        pause=pause_of(row),
        confirmation=Confirmation(
            Author.from_json(conf["by"]), datetime.fromisoformat(conf["at"]), conf["version"]
        )
        if conf
        else None,
        withdrawn=frozenset(orjson.loads(row.withdrawn)) if row.withdrawn else frozenset(),
        multidose=multidose
        if multidose is not None
        else multidose_store.state(conn, row.patient_id),
        dispensed={
            rx_id: Dispensed(**summary)
            for rx_id, summary in (orjson.loads(row.dispensed) if row.dispensed else {}).items()
        },
    )


def _list_values(
    lst: MedicationList, list_json: str, document: str, expires: datetime | None
) -> dict[str, Any]:
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
        "list_json": list_json,
        "document": document,
        "withdrawn": dumps(sorted(lst.withdrawn)) if lst.withdrawn else None,
        "dispensed": dumps({k: v.__dict__ for k, v in sorted(lst.dispensed.items())})
        if lst.dispensed
        else None,
    }


def insert_list(
    conn: Connection, lst: MedicationList, list_json: str, document: str, expires: datetime | None
) -> None:
    values = _list_values(lst, list_json, document, expires)
    pipeline.execute(
        conn,
        _INSERT_LIST,
        {"id": lst.id, "patient_id": lst.patient_id, "created_at": lst.created, **values},
    )


def save_list(
    conn: Connection, lst: MedicationList, list_json: str, document: str, expires: datetime | None
) -> None:
    pipeline.execute(
        conn, _UPDATE_LIST, {"key": lst.id, **_list_values(lst, list_json, document, expires)}
    )


def save_documents(
    conn: Connection, list_id: str, list_json: str, document: str, expires: datetime | None
) -> None:
    pipeline.execute(
        conn,
        _UPDATE_LIST,
        {"key": list_id, "list_json": list_json, "document": document, "expires_at": expires},
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
                "resource": resources[(t.resource_type, t.id)],
            }
            if t.action == "create":
                pipeline.execute(conn, _INSERT_ENTRY, {"id": e.id, "list_id": lst.id, **values})
            else:
                pipeline.execute(conn, _UPDATE_ENTRY, {"key": e.id, **values})
            pipeline.execute(
                conn,
                _INSERT_ENTRY_VERSION,
                {"entry_id": e.id, "version": e.version, "resource": values["resource"], **history},
            )
        elif t.resource_type == "MedicationRequest":
            rx = lst.prescriptions[t.id]
            values = {
                "version": rx.version,
                "status": rx.status,
                "prior_id": rx.prior_id,
                "last_changed": rx.last_changed,
                "changed_by": author,
                "resource": resources[(t.resource_type, t.id)],
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
                    "resource": values["resource"],
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

    The caller holds the list row's lock (:func:`list_row` with ``lock``), or has just
    inserted the list: every event of a patient is written under that lock. No other lock
    is taken, so writes to different patients commit side by side (issue 20).

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

    ``head`` is the patient's list row, which the caller has locked (:func:`list_row` with
    ``lock``) before the change: the event then names the list at its current version and
    stands among the list's events in their order. ``None``: the patient has no list, and
    the event names none (list ``""``, version 0). No lock orders it among the patient's
    events then; a consumer that reads the patient's state afresh for each event (the read
    copy) does not need one."""
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


# -- reads ---------------------------------------------------------------------------------


# The read path's statements are built once: constructing a statement costs more than
# running it (DESIGN §6: a read is one keyed lookup plus its audit row).
def _document_query(key: str, column: str) -> Select[Any]:
    wanted = (pll.c.id, pll.c.patient_id, pll.c.version, pll.c.updated_at, pll.c.expires_at)
    query = select(*wanted, pll.c[column].label("text"), patient.c.identifier_value).join(
        patient, patient.c.id == pll.c.patient_id
    )
    if key == "list":
        return query.where(pll.c.id == bindparam("key"))
    if key == "patient":
        return query.where(pll.c.patient_id == bindparam("key"))
    return query.where(
        patient.c.identifier_system == bindparam("system"),
        patient.c.identifier_value == bindparam("key"),
    )


_DOCUMENT = {
    (key, column): _document_query(key, column)
    for key in ("list", "patient", "identifier")
    for column in ("list_json", "document")
}


def list_document(
    conn: Connection, key: str, value: str, *, document: bool, system: str | None = None
) -> Row[Any] | None:
    """The current List or list document as stored text, by list id, patient id or the
    patient's identifier (``key`` list/patient/identifier): one keyed lookup, nothing parsed,
    only the one text column asked for."""
    query = _DOCUMENT[(key, "document" if document else "list_json")]
    params = {"key": value, "system": system} if key == "identifier" else {"key": value}
    return conn.execute(query, params).first()


def list_version_row(conn: Connection, list_id: str, version: int) -> Row[Any] | None:
    return conn.execute(
        select(pll_version).where(
            pll_version.c.list_id == list_id, pll_version.c.version == version
        )
    ).first()


def list_versions(
    conn: Connection, list_id: str, limit: int, offset: int, upto: int
) -> tuple[int, Sequence[Row[Any]]]:
    """A page of a list's versions up to ``upto``, newest first; pages stay put while the
    list moves on, because later versions are outside ``upto``."""
    where = and_(pll_version.c.list_id == list_id, pll_version.c.version <= upto)
    total = conn.execute(select(func.count()).select_from(pll_version).where(where)).scalar_one()
    rows = conn.execute(
        select(pll_version)
        .where(where)
        .order_by(pll_version.c.version.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return total, rows


def overridden_versions(
    conn: Connection, list_id: str, low: int, high: int, limit: int
) -> Sequence[Row[Any]]:
    """The versions in ``low..high`` that overrode findings, newest first, at most ``limit``:
    ``(version, recorded_at, author, override)``."""
    rows = conn.execute(
        select(
            pll_version.c.version,
            pll_version.c.recorded_at,
            pll_version.c.author,
            pll_version.c.override,
        )
        .where(
            pll_version.c.list_id == list_id,
            pll_version.c.version.between(low, high),
            pll_version.c.override.is_not(None),
        )
        .order_by(pll_version.c.version.desc())
        .limit(limit)
    ).all()
    return cast("Sequence[Row[Any]]", rows)


RESOURCE_TABLES = {
    "MedicationStatement": (entry, entry_version, entry_version.c.entry_id),
    "MedicationRequest": (
        prescription,
        prescription_version,
        prescription_version.c.prescription_id,
    ),
}


def _recorded(rtype: str) -> Any:
    """When PLL first recorded each resource of ``rtype`` (its first version's time)."""
    table, history, key = RESOURCE_TABLES[rtype]
    first = select(history.c.recorded_at).where(key == table.c.id, history.c.version == 1)
    return first.scalar_subquery().label("recorded_at")


def _resource_row_query(rtype: str) -> Select[Any]:
    table = RESOURCE_TABLES[rtype][0]
    return (
        select(
            table.c.id,
            table.c.version,
            table.c.list_id,
            table.c.last_changed,
            table.c.resource,
            pll.c.patient_id,
            _recorded(rtype),
        )
        .join(pll, pll.c.id == table.c.list_id)
        .where(table.c.id == bindparam("rid"))
    )


def _resource_version_query(rtype: str) -> Select[Any]:
    _, history, key = RESOURCE_TABLES[rtype]
    return select(history).where(key == bindparam("rid"), history.c.version == bindparam("v"))


# built once, as the list statements above: every write runs them
_RESOURCE_ROW = {rtype: _resource_row_query(rtype) for rtype in RESOURCE_TABLES}
_RESOURCE_VERSION = {rtype: _resource_version_query(rtype) for rtype in RESOURCE_TABLES}


def resource_row(conn: Connection, rtype: str, rid: str) -> Row[Any] | None:
    """A current resource with its list's patient and ``recorded_at``, when PLL first
    recorded it."""
    return conn.execute(_RESOURCE_ROW[rtype], {"rid": rid}).first()


def resource_version(conn: Connection, rtype: str, rid: str, version: int) -> Row[Any] | None:
    return conn.execute(_RESOURCE_VERSION[rtype], {"rid": rid, "v": version}).first()


def resource_versions(conn: Connection, rtype: str, rid: str) -> Sequence[Row[Any]]:
    _, history, key = RESOURCE_TABLES[rtype]
    return conn.execute(select(history).where(key == rid).order_by(history.c.version.desc())).all()


def resources_for_list(
    conn: Connection, rtype: str, list_id: str, limit: int, offset: int
) -> tuple[int, Sequence[Row[Any]]]:
    table = RESOURCE_TABLES[rtype][0]
    total = conn.execute(
        select(func.count()).select_from(table).where(table.c.list_id == list_id)
    ).scalar_one()
    rows = conn.execute(
        select(table.c.resource, _recorded(rtype))
        .where(table.c.list_id == list_id)
        .order_by(table.c.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return total, rows


def versions_until(
    conn: Connection, rtype: str, ids: Iterable[str], list_version: int
) -> dict[str, list[tuple[int, int, str]]]:
    """Each resource's versions written at or before a list version:
    ``{id: [(version, list_version, resource text), ...]}``."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    _, history, key = RESOURCE_TABLES[rtype]
    rows = conn.execute(
        select(
            key.label("rid"), history.c.version, history.c.list_version, history.c.resource
        ).where(key.in_(wanted), history.c.list_version <= list_version)
    ).all()
    out: dict[str, list[tuple[int, int, str]]] = {}
    for r in rows:
        out.setdefault(r.rid, []).append((r.version, r.list_version, r.resource))
    return out


def touched_between(conn: Connection, list_id: str, after: int, upto: int) -> set[tuple[str, str]]:
    """The (type, id) of every resource written by list versions ``after < v <= upto``."""
    rows = conn.execute(
        select(provenance_target.c.target_type, provenance_target.c.target_id).where(
            provenance_target.c.list_id == list_id,
            provenance_target.c.list_version > after,
            provenance_target.c.list_version <= upto,
        )
    ).all()
    return {(r.target_type, r.target_id) for r in rows}


def provenance_rows(
    conn: Connection,
    target_type: str,
    target_id: str,
    target_version: int | None,
    limit: int,
    offset: int,
    upto: int,
) -> tuple[int, Sequence[Row[Any]]]:
    """The list versions up to ``upto`` that wrote a resource (or one version of it), newest
    first."""
    where = and_(
        provenance_target.c.target_type == target_type,
        provenance_target.c.target_id == target_id,
        provenance_target.c.list_version <= upto,
    )
    if target_version is not None:
        where = and_(where, provenance_target.c.target_version == target_version)
    total = conn.execute(
        select(func.count()).select_from(provenance_target).where(where)
    ).scalar_one()
    rows = conn.execute(
        select(pll_version)
        .join(
            provenance_target,
            and_(
                provenance_target.c.list_id == pll_version.c.list_id,
                provenance_target.c.list_version == pll_version.c.version,
            ),
        )
        .where(where)
        .order_by(pll_version.c.version.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return total, rows


def all_entries(conn: Connection, list_id: str) -> list[Entry]:
    """Every entry the list ever had (SFM's ``historyTimestamp`` reaches past the 90 days)."""
    rows = conn.execute(select(entry).where(entry.c.list_id == list_id).order_by(entry.c.id))
    return [_entry_from(r) for r in rows]


def all_prescriptions(conn: Connection, list_id: str) -> dict[str, Prescription]:
    """Every prescription of the list, with the older links of renewal chains."""
    rows = conn.execute(select(prescription, _RX_RECORDED).where(prescription.c.list_id == list_id))
    return {r.id: _rx_from(r) for r in rows}
