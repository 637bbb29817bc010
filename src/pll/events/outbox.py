"""Reading the outbox and keeping each consumer's place in it.

Every accepted change writes one event to ``outbox`` in its own transaction (DESIGN §3 rule
7), with an id that grows with commit order per list (the list row is locked while a change is
made). A consumer's ``position`` is the id of the last event it has had: it reads on from there,
in id order, so each patient's events reach it in the order they happened, and it advances only
after a delivery succeeded, so an event is delivered at least once. Consumers deduplicate by
``event_id``.

Ids are allocated when the inserting transaction runs, not when it commits, so on PostgreSQL a
change that commits later may hold a smaller id than one already read. There each event also
carries its transaction's id (``txid``), and a consumer reads in ``(txid, id)`` order only the
events of transactions older than the oldest one still running
(``pg_snapshot_xmin(pg_current_snapshot())``): every transaction still to commit has a larger
txid, so nothing can ever appear behind a consumer's place. SQLite commits one writer at a
time, so there the id alone is commit order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, func, insert, literal_column, select, tuple_, update

from pll.store.schema import consumer, outbox

#: The longest wait between attempts for a consumer that keeps failing.
MAX_BACKOFF = timedelta(minutes=5)


@dataclass(frozen=True)
class Event:
    id: int
    txid: int
    event_id: str
    patient_id: str
    list_id: str
    list_version: int
    kind: str
    created_at: datetime
    payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.event_id,
            "kind": self.kind,
            "patient": f"Patient/{self.patient_id}",
            "list": f"List/{self.list_id}",
            "version": self.list_version,
            "created": self.created_at.isoformat(),
            **{k: v for k, v in self.payload.items() if k not in ("list", "patient", "version")},
        }


@dataclass(frozen=True)
class Place:
    name: str
    #: the last event had, as (txid, id); txid is 0 on SQLite
    position: tuple[int, int]
    attempts: int
    next_try_at: datetime | None
    last_error: str | None


def place(conn: Connection, name: str, now: datetime, *, start_at_end: bool = False) -> Place:
    """The consumer's place, made if it has none: at the start of the outbox, or at its end
    for a consumer that only wants what happens from now on (a new subscription)."""
    row = conn.execute(select(consumer).where(consumer.c.name == name)).first()
    if row is None:
        txid, position = horizon(conn) if start_at_end else (0, 0)
        conn.execute(
            insert(consumer).values(
                name=name,
                position=position,
                position_txid=txid,
                attempts=0,
                next_try_at=None,
                updated_at=now,
            )
        )
        return Place(name, (txid, position), 0, None, None)
    return Place(
        row.name,
        (row.position_txid, row.position),
        row.attempts,
        row.next_try_at,
        row.last_error,
    )


def _txid() -> Any:
    return func.coalesce(outbox.c.txid, 0)


def head(conn: Connection) -> tuple[int, int]:
    """The place of the newest event, as (txid, id); (0, 0) when there is none."""
    row = conn.execute(
        select(_txid(), outbox.c.id).order_by(_txid().desc(), outbox.c.id.desc()).limit(1)
    ).first()
    return (int(row[0]), int(row[1])) if row is not None else (0, 0)


def horizon(conn: Connection) -> tuple[int, int]:
    """A place from which nothing committed after this transaction's snapshot is missed:
    on PostgreSQL just before the oldest transaction still running (an event of one already
    seen may come again; consumers deduplicate), on SQLite the newest event."""
    if conn.dialect.name != "postgresql":
        return head(conn)
    xmin: Any = conn.execute(select(literal_column(_XMIN))).scalar_one()
    return int(xmin) - 1, 2**62


_XMIN = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"


def after(conn: Connection, position: tuple[int, int], limit: int = 100) -> list[Event]:
    """The committed events after ``position`` that no later commit can precede, oldest
    first."""
    if conn.dialect.name == "postgresql":
        # txid is set on every row there (0 for events from before it was), so the
        # (txid, id) index gives the order
        oldest_running: Any = literal_column(_XMIN)
        query = (
            select(outbox)
            .where(
                tuple_(outbox.c.txid, outbox.c.id) > tuple_(*position),
                outbox.c.txid < oldest_running,
            )
            .order_by(outbox.c.txid, outbox.c.id)
        )
    else:
        query = select(outbox).where(outbox.c.id > position[1]).order_by(outbox.c.id)
    query = query.limit(limit)
    return [_event(r) for r in conn.execute(query).all()]


def _event(row: Any) -> Event:
    return Event(
        id=row.id,
        txid=row.txid or 0,
        event_id=row.event_id,
        patient_id=row.patient_id,
        list_id=row.list_id,
        list_version=row.list_version,
        kind=row.kind,
        created_at=row.created_at,
        payload=orjson.loads(row.payload),
    )


def advance(conn: Connection, name: str, event: Event, now: datetime) -> None:
    """The consumer has had every event up to ``event``."""
    # only forward: a second dispatcher that is behind never moves a place back
    ahead = (
        tuple_(consumer.c.position_txid, consumer.c.position) < tuple_(event.txid, event.id)
        if conn.dialect.name == "postgresql"
        else consumer.c.position < event.id
    )
    conn.execute(
        update(consumer)
        .where(consumer.c.name == name, ahead)
        .values(
            position=event.id,
            position_txid=event.txid,
            attempts=0,
            next_try_at=None,
            last_error=None,
            updated_at=now,
        )
    )


def failed(conn: Connection, name: str, error: str, now: datetime) -> datetime:
    """A delivery failed: try again later, waiting longer each time (1 s, 2 s, 4 s, … up to
    five minutes). Returns when."""
    row = conn.execute(select(consumer.c.attempts).where(consumer.c.name == name)).first()
    attempts = (row.attempts if row else 0) + 1
    wait = min(timedelta(seconds=2 ** min(attempts - 1, 16)), MAX_BACKOFF)
    when = now + wait
    conn.execute(
        update(consumer)
        .where(consumer.c.name == name)
        .values(attempts=attempts, next_try_at=when, last_error=error[:2000], updated_at=now)
    )
    return when


def places(conn: Connection) -> Sequence[Any]:
    return conn.execute(select(consumer).order_by(consumer.c.name)).all()


def lag(conn: Connection, position: tuple[int, int], now: datetime) -> tuple[int, float]:
    """How many events a consumer at ``position`` has not had, and how old the oldest is
    (seconds)."""
    behind = (
        tuple_(_txid(), outbox.c.id) > tuple_(*position)
        if conn.dialect.name == "postgresql"
        else outbox.c.id > position[1]
    )
    count, oldest = conn.execute(
        select(func.count(), func.min(outbox.c.created_at)).where(behind)
    ).one()
    return int(count), (now - oldest).total_seconds() if oldest is not None else 0.0
