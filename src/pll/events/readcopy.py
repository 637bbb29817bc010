"""The read copy: every list, kept current from the events, in a database of its own.

It stands for the national core record's (Kjernejournal's) view of the list: health personnel
whose own system has no PLL support read the list there. ``pll readcopy run`` follows the
outbox; for each list an event names it copies that list's current document from the store,
and for each patient an event names the patient's access facts (blocks, proxies, multidose
parties, care units: :mod:`pll.events.readcopy_facts`), and moves its place, in one
transaction of the copy's database, so a crash anywhere leaves the copy and its place together
and an event applied twice changes nothing (a copy never goes back to an older version).
Events about discrepancy cases (``case-...``) leave the list and the facts as they were: the
copy only moves its place past them. ``pll readcopy rebuild`` copies every list and every
patient's facts afresh from one snapshot of the store. The copy has its own small schema
(:mod:`pll.events.readcopy_schema`), not PLL's migrations: it can be dropped and rebuilt at
any time, once its audit records are forwarded (:mod:`pll.events.readcopy_audit`).

With its facts the copy decides reads on its own (:mod:`pll.services.readcopy_reads`), and
serves lists while the store is down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Row,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)

from pll.domain.cases import EVENT_PREFIX as CASE_EVENTS
from pll.events import outbox
from pll.events import readcopy_facts as facts_store
from pll.events.readcopy_schema import copy_block, copy_list, copy_metadata, copy_place
from pll.store.db import Database
from pll.store.schema import patient, pll

__all__ = ["Lag", "ReadCopy", "copy_list", "copy_metadata", "copy_place"]

_PLACE = "readcopy"
#: a place row that says the copy's access facts are incomplete: a copy made before it
#: kept them (issue 21) gets them all from the store at its next step
_FACTS_WANTED = "facts-wanted"


@dataclass(frozen=True)
class Lag:
    behind: int
    oldest_seconds: float
    lists: int


class ReadCopy:
    def __init__(self, store: Database, copy: Database, clock: Callable[[], datetime]) -> None:
        self.store, self.copy, self.clock = store, copy, clock
        self._complete = False

    def setup(self) -> None:
        """Make the copy's tables, and bring a copy made by an older PLL up to date: its
        place gets ``position_tx`` 0, where every event it had stands (migration 0022 of
        the store), so it reads on exactly where it was; and a copy that kept no access
        facts yet gets them all at its next :meth:`step` (until then it serves no read,
        :meth:`facts_complete`)."""
        with self.copy.read() as conn:
            had_facts = inspect(conn).has_table(copy_block.name)
        copy_metadata.create_all(self.copy.engine)
        with self.copy.write() as conn:
            have = {c["name"] for c in inspect(conn).get_columns(copy_place.name)}
            if "position_tx" not in have:
                conn.execute(
                    text("ALTER TABLE copy_place ADD COLUMN position_tx BIGINT NOT NULL DEFAULT 0")
                )
            self._complete = False
            if not had_facts and self._place(conn) != outbox.START:
                # the events it has applied read no facts: those of a patient no later
                # event names would be missing
                conn.execute(
                    insert(copy_place).values(
                        name=_FACTS_WANTED, position=0, position_tx=0, updated_at=self.clock()
                    )
                )

    def facts_complete(self) -> bool:
        """Whether the copy holds every patient's access facts (it may decide reads). Once
        they are, they stay so: only :meth:`setup` marks them wanted, before the copy
        serves, so a yes is remembered (a read asks this every time)."""
        if self._complete:
            return True
        with self.copy.read() as conn:
            wanted = conn.execute(
                select(copy_place.c.name).where(copy_place.c.name == _FACTS_WANTED)
            ).first()
        self._complete = wanted is None
        return self._complete

    def _place(self, conn: Any) -> outbox.Position:
        row = conn.execute(select(copy_place).where(copy_place.c.name == _PLACE)).first()
        return outbox.Position(int(row.position_tx), int(row.position)) if row else outbox.START

    def _set_place(self, conn: Any, position: outbox.Position) -> None:
        values = {
            "position": position.id,
            "position_tx": position.tx,
            "updated_at": self.clock(),
        }
        done = conn.execute(update(copy_place).where(copy_place.c.name == _PLACE).values(**values))
        if done.rowcount == 0:
            conn.execute(insert(copy_place).values(name=_PLACE, **values))

    def step(self, limit: int = 500) -> int:
        """Apply the next events; returns how many there were.

        For each event it copies the list's current document, and the access facts of the
        patient it names (:mod:`pll.events.readcopy_facts`), both from the snapshot the
        events come from: an event about a discrepancy case changes neither, an
        ``access-changed`` event only the facts."""
        all_facts = not self.facts_complete()
        with self.copy.read() as conn:
            place = self._place(conn)
        # a snapshot: on SQLite a plain read would take the one writer's lock
        with self.store.snapshot() as conn:
            events = outbox.after(conn, place, limit)
            named = [e for e in events if not e.kind.startswith(CASE_EVENTS)]
            lists = {e.list_id for e in named if e.kind != outbox.ACCESS_CHANGED and e.list_id}
            rows = (
                conn.execute(_documents().where(pll.c.id.in_(sorted(lists)))).all() if lists else []
            )
            patients = {e.patient_id for e in named if e.patient_id}
            facts = (
                facts_store.read(conn, None)
                if all_facts
                else facts_store.read(conn, patients)
                if patients
                else None
            )
        if not events and not all_facts:
            return 0
        with self.copy.write() as conn:
            for row in rows:
                self._put(conn, row)
            if facts is not None:
                facts_store.save(conn, facts)
            if all_facts:
                conn.execute(delete(copy_place).where(copy_place.c.name == _FACTS_WANTED))
            if events:
                self._set_place(conn, events[-1].position)
        return len(events)

    def refresh(self, list_id: str) -> None:
        """Copy one list's current document now (its place in the events stays)."""
        with self.store.snapshot() as conn:
            row = conn.execute(_documents().where(pll.c.id == list_id)).first()
        if row is not None:
            with self.copy.write() as conn:
                self._put(conn, row, same_version=True)

    def _put(self, conn: Any, row: Any, *, same_version: bool = False) -> None:
        have = conn.execute(
            select(copy_list.c.version).where(copy_list.c.list_id == row.id)
        ).scalar()
        values = {
            "patient_id": row.patient_id,
            "identifier_system": row.identifier_system,
            "identifier_value": row.identifier_value,
            "version": row.version,
            "document": row.document,
            "expires_at": row.expires_at,
            "copied_at": self.clock(),
        }
        if have is None:
            conn.execute(insert(copy_list).values(list_id=row.id, **values))
        elif have < row.version or (same_version and have == row.version):
            # never back to an older version
            conn.execute(update(copy_list).where(copy_list.c.list_id == row.id).values(**values))

    def rebuild(self, progress: Callable[[int], None] | None = None) -> int:
        """Copy every list afresh from one snapshot of the store; returns how many."""
        with self.store.snapshot() as conn:
            position = outbox.head(conn)
            rows = conn.execute(_documents()).all()
            facts = facts_store.read(conn, None)
        with self.copy.write() as conn:
            conn.execute(delete(copy_list))
            for i, row in enumerate(rows, 1):
                self._put(conn, row)
                if progress is not None and i % 1000 == 0:
                    progress(i)
            facts_store.save(conn, facts)
            conn.execute(delete(copy_place).where(copy_place.c.name == _FACTS_WANTED))
            self._set_place(conn, position)
        return len(rows)

    def lag(self) -> Lag:
        with self.copy.read() as conn:
            place = self._place(conn)
        lists = self.lists()
        with self.store.snapshot() as conn:
            behind, age = outbox.lag(conn, place, self.clock())
        return Lag(behind, age, lists)

    def lists(self) -> int:
        """How many lists the copy holds (no need of the store)."""
        with self.copy.read() as conn:
            return int(conn.execute(select(func.count()).select_from(copy_list)).scalar_one())

    def document(self, patient_id: str) -> Any:
        """The copied list of a patient: ``list_id``, ``version``, ``document``,
        ``expires_at``; ``None`` if it has none."""
        with self.copy.read() as conn:
            return conn.execute(
                select(
                    copy_list.c.list_id,
                    copy_list.c.version,
                    copy_list.c.document,
                    copy_list.c.expires_at,
                ).where(copy_list.c.patient_id == patient_id)
            ).first()

    def differences(self) -> list[str]:
        """Lists whose copy is not the store's current document (for checks and tests)."""
        with self.store.snapshot() as conn:
            store = {r.id: (r.version, r.document) for r in conn.execute(_documents())}
        with self.copy.read() as conn:
            copied = {
                r.list_id: (r.version, r.document)
                for r in conn.execute(
                    select(copy_list.c.list_id, copy_list.c.version, copy_list.c.document)
                )
            }
        return sorted(k for k in store.keys() | copied.keys() if store.get(k) != copied.get(k))


def by_person(conn: Connection, system: str, value: str) -> Row[Any] | None:
    """The copied list of the person with this number, in the copy's transaction ``conn``:
    ``patient_id``, ``list_id``, ``version``, ``document``, ``expires_at``."""
    query = select(
        copy_list.c.patient_id,
        copy_list.c.list_id,
        copy_list.c.version,
        copy_list.c.document,
        copy_list.c.expires_at,
    ).where(copy_list.c.identifier_system == system, copy_list.c.identifier_value == value)
    return cast("Row[Any] | None", conn.execute(query).first())


def _documents() -> Any:
    return select(
        pll.c.id,
        pll.c.patient_id,
        pll.c.version,
        pll.c.document,
        pll.c.expires_at,
        patient.c.identifier_system,
        patient.c.identifier_value,
    ).join(patient, patient.c.id == pll.c.patient_id)
