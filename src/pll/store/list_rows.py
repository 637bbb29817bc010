"""The list *aggregate* the write path loads, and the rows it is made of. Every function
takes the caller's open transaction.

The write path loads the list row (locked), the entries shown on the list, the prescriptions
in use, and any extra rows a request names, so that the domain can check its rules on
everything that matters without loading years of history. Here too: how stored JSON is
written and read back (:func:`dumps`, :func:`content_of`, :func:`author_of`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

import orjson
from sqlalchemy import Connection, Row, and_, bindparam, or_, select

from pll.domain.model import (
    DISCONTINUED_VISIBLE_FOR,
    ENDED,
    IN_USE,
    RX_ACTIVE,
    Author,
    Confirmation,
    Dispensed,
    Entry,
    MedicationList,
    Multidose,
    Pause,
    Prescription,
)
from pll.store import direct
from pll.store import multidose as multidose_store
from pll.store.schema import entry, entry_version, pll, prescription, prescription_version


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def content_of(resource_text: str) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(resource_text)
    for key in ("id", "meta"):
        data.pop(key, None)
    return data


# Statements are built once, here: building one costs more than running it, and the
# write path runs a dozen of them (DESIGN §6; its writes are built in pll.store.list_writes).
#: the list row's columns but the stored document; pll.store.resource_history locks a
#: resource's list row by these too
LIST_COLUMNS = [c for c in pll.c if c.name != "document"]
_LIST = {
    (key, lock): (
        select(*LIST_COLUMNS).where(column == bindparam("key")).with_for_update()
        if lock
        else select(*LIST_COLUMNS).where(column == bindparam("key"))
    )
    for key, column in (("list", pll.c.id), ("patient", pll.c.patient_id))
    for lock in (False, True)
}
#: an entry's or a prescription's current resource is its version row at the row's version:
#: each resource is stored once (migration 0027); pll.store.resource_history joins by these too
ENTRY_IS_CURRENT = and_(
    entry_version.c.entry_id == entry.c.id, entry_version.c.version == entry.c.version
)
RX_IS_CURRENT = and_(
    prescription_version.c.prescription_id == prescription.c.id,
    prescription_version.c.version == prescription.c.version,
)
_ENTRIES = select(entry, entry_version.c.resource).join(entry_version, ENTRY_IS_CURRENT)
_PRESCRIPTIONS = select(prescription, prescription_version.c.resource).join(
    prescription_version, RX_IS_CURRENT
)
_LOAD_ENTRIES = _ENTRIES.where(
    entry.c.list_id == bindparam("list_id"),
    or_(
        entry.c.status.in_(IN_USE),
        and_(entry.c.status.in_(ENDED), entry.c.ended_at > bindparam("since")),
        entry.c.id.in_(bindparam("ids", expanding=True)),
    ),
)
#: when PLL first recorded a prescription (its first version): the issue date of last resort
#: for one stored with neither ``authoredOn`` nor a validity (pll.domain.prescriptions.end_of)
_FIRST_RX = prescription_version.alias("first_rx")
_RX_RECORDED = (
    select(_FIRST_RX.c.recorded_at)
    .where(_FIRST_RX.c.prescription_id == prescription.c.id, _FIRST_RX.c.version == 1)
    .scalar_subquery()
    .label("recorded_at")
)
_LOAD_PRESCRIPTIONS = _PRESCRIPTIONS.add_columns(_RX_RECORDED).where(
    prescription.c.list_id == bindparam("list_id"),
    or_(
        prescription.c.status.in_(RX_ACTIVE),
        prescription.c.id.in_(bindparam("ids", expanding=True)),
        prescription.c.prior_id.in_(bindparam("ids", expanding=True)),
    ),
)


def list_row(
    conn: Connection,
    *,
    list_id: str | None = None,
    patient_id: str | None = None,
    lock: bool = False,
) -> Row[Any] | None:
    """The list row (all but the stored document), locked for a change when ``lock``."""
    query = _LIST[("list" if list_id else "patient", lock)]
    return direct.first(conn, query, {"key": list_id or patient_id})


def coded_entries(conn: Connection, after: str, limit: int) -> Sequence[Row[Any]]:
    """Entries in use on any list, by id after ``after``: ``(id, list_id, resource)``."""
    rows = conn.execute(
        select(entry.c.id, entry.c.list_id, entry_version.c.resource)
        .join(entry_version, ENTRY_IS_CURRENT)
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
    entry_rows = direct.rows(
        conn,
        _LOAD_ENTRIES,
        {"list_id": row.id, "since": now - DISCONTINUED_VISIBLE_FOR, "ids": sorted(set(entry_ids))},
    )
    entries = {r.id: _entry_from(r) for r in entry_rows}
    linked = {rx for e in entries.values() for rx in e.prescription_ids}
    rx_rows = direct.rows(
        conn, _LOAD_PRESCRIPTIONS, {"list_id": row.id, "ids": sorted(linked | set(rx_ids))}
    )
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


def all_entries(conn: Connection, list_id: str) -> list[Entry]:
    """Every entry the list ever had (SFM's ``historyTimestamp`` reaches past the 90 days)."""
    rows = conn.execute(_ENTRIES.where(entry.c.list_id == list_id).order_by(entry.c.id))
    return [_entry_from(r) for r in rows]


def all_prescriptions(conn: Connection, list_id: str) -> dict[str, Prescription]:
    """Every prescription of the list, with the older links of renewal chains."""
    rows = conn.execute(
        _PRESCRIPTIONS.add_columns(_RX_RECORDED).where(prescription.c.list_id == list_id)
    )
    return {r.id: _rx_from(r) for r in rows}
