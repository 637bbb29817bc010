"""The read copy: every list, kept current from the events, in a database of its own.

It stands for the national core record's (Kjernejournal's) view of the list: health personnel
whose own system has no PLL support read the list there. ``pll readcopy run`` follows the
outbox; for each list an event names it copies that list's current document from the store
and moves its place, in one transaction of the copy's database, so a crash anywhere leaves the
copy and its place together and an event applied twice changes nothing (a copy never goes back
to an older version). Events about discrepancy cases (``case-...``) leave the list as it was:
the copy only moves its place past them. ``pll readcopy rebuild`` copies every list afresh
from one snapshot of the store. The copy has its own small schema, not PLL's migrations: it can
be dropped and rebuilt at any time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
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
from pll.store.db import Database
from pll.store.schema import UTCDateTime, patient, pll

copy_metadata = MetaData()

copy_list = Table(
    "copy_list",
    copy_metadata,
    Column("list_id", String(64), primary_key=True),
    Column("patient_id", String(64), nullable=False),
    Column("identifier_system", String(64), nullable=False),
    Column("identifier_value", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("document", Text, nullable=False),
    #: when a discontinued entry next leaves the list (90 days): the document is stale then
    Column("expires_at", UTCDateTime),
    Column("copied_at", UTCDateTime, nullable=False),
    Index("ix_copy_list_patient", "patient_id", unique=True),
    Index("ix_copy_list_identifier", "identifier_system", "identifier_value"),
)

copy_place = Table(
    "copy_place",
    copy_metadata,
    Column("name", String(20), primary_key=True),
    #: the outbox place (pll.events.outbox.Position) of the last event applied: its id,
    Column("position", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    #: and its ``tx`` (added for issue 20; a copy made before gets it, as 0, from setup)
    Column("position_tx", BigInteger, nullable=False, server_default=text("0")),
)

_PLACE = "readcopy"


@dataclass(frozen=True)
class Lag:
    behind: int
    oldest_seconds: float
    lists: int


class ReadCopy:
    def __init__(self, store: Database, copy: Database, clock: Callable[[], datetime]) -> None:
        self.store, self.copy, self.clock = store, copy, clock

    def setup(self) -> None:
        """Make the copy's tables, and bring a copy made by an older PLL up to date: its
        place gets ``position_tx`` 0, where every event it had stands (migration 0022 of
        the store), so it reads on exactly where it was."""
        copy_metadata.create_all(self.copy.engine)
        with self.copy.write() as conn:
            have = {c["name"] for c in inspect(conn).get_columns(copy_place.name)}
            if "position_tx" not in have:
                conn.execute(
                    text("ALTER TABLE copy_place ADD COLUMN position_tx BIGINT NOT NULL DEFAULT 0")
                )

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
        """Apply the next events; returns how many there were."""
        with self.copy.read() as conn:
            place = self._place(conn)
        # a snapshot: on SQLite a plain read would take the one writer's lock
        with self.store.snapshot() as conn:
            events = outbox.after(conn, place, limit)
            # an event about a discrepancy case names the list but did not change it
            lists = {e.list_id for e in events if not e.kind.startswith(CASE_EVENTS)}
            rows = (
                conn.execute(_documents().where(pll.c.id.in_(sorted(lists)))).all() if lists else []
            )
        if not events:
            return 0
        with self.copy.write() as conn:
            for row in rows:
                self._put(conn, row)
            last = events[-1]
            self._set_place(conn, last.position)
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
        with self.copy.write() as conn:
            conn.execute(delete(copy_list))
            for i, row in enumerate(rows, 1):
                self._put(conn, row)
                if progress is not None and i % 1000 == 0:
                    progress(i)
            self._set_place(conn, position)
        return len(rows)

    def lag(self) -> Lag:
        with self.copy.read() as conn:
            place = self._place(conn)
            lists = int(conn.execute(select(func.count()).select_from(copy_list)).scalar_one())
        with self.store.snapshot() as conn:
            behind, age = outbox.lag(conn, place, self.clock())
        return Lag(behind, age, lists)

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
