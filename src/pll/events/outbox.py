"""Reading the outbox and keeping each consumer's place in it.

Every accepted change writes one event to ``outbox`` in its own transaction (DESIGN §3 rule
7). Writers take no lock for it: writes to different patients commit side by side (issue 20).
A consumer reads on from its :class:`Position`, the ``(tx, id)`` of the last event it has
had, in ``(tx, id)`` order, and on PostgreSQL it reads only events whose ``tx`` is below the
oldest transaction of this database still running when the read began (``_BOUND``, from
``pg_current_snapshot()``):

- *It never skips one.* An event's ``tx`` is at least its writer's transaction id
  (:func:`pll.store.repository.add_event`). An event not yet committed when a consumer read
  belongs to a transaction still running then, so its ``tx`` is at or above that read's
  bound, above everything the read returned, and it comes after the consumer's place
  whenever it commits.
- *Each patient's events come in the order they happened.* Every event of a patient is
  written while its writer holds the patient's list row lock, and ``tx`` never goes back for
  a writer that comes later (:func:`pll.store.repository.add_event`); ids break a tie.

So a transaction that stays open holds every consumer back until it ends: any transaction in
PLL's database that has written anything (a long ``pll import`` or a migration too, and one
left open by hand). ``pll events status`` names the oldest (:func:`oldest_transaction`).
Other databases on the same server hold nothing back. On SQLite, which commits one writer
at a time, ``tx`` is 0 and ids are in commit order.

A consumer advances only after a delivery succeeded, so an event is delivered at least once;
consumers deduplicate by ``event_id``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    update,
)

from pll.store.db import insert_absent
from pll.store.schema import consumer, outbox, subscription

#: The longest wait between attempts for a consumer that keeps failing.
MAX_BACKOFF = timedelta(minutes=5)
#: How far :func:`backlogs` counts undelivered events one by one; past it, it takes the
#: distance between ids (an estimate: ids are close to, not quite in, reading order).
BACKLOG_COUNT_CAP = 10_000
#: The consumer names of FHIR rest-hook subscriptions (pll.events.resthook).
SUBSCRIPTION_PREFIX = "subscription:"
#: The kind of event that says what decides access to a patient's list has changed (a
#: block, a proxy, the multidose parties, a care unit registration): it makes no list
#: version, and names the list only if the patient has one (pll.store.repository
#: .add_patient_event). The read copy reads the patient's access facts afresh for it.
ACCESS_CHANGED = "access-changed"


@dataclass(frozen=True, order=True)
class Position:
    """A place in the outbox, in the order consumers read it: opaque to callers, who only
    pass on what :func:`place`, :func:`head` and :attr:`Event.position` give them."""

    tx: int
    id: int


#: Before the first event.
START = Position(0, 0)


@dataclass(frozen=True)
class Event:
    id: int
    event_id: str
    patient_id: str
    list_id: str
    list_version: int
    kind: str
    created_at: datetime
    payload: dict[str, Any]
    #: where its writer stood among transactions (:class:`Position`)
    tx: int = 0

    @property
    def position(self) -> Position:
        return Position(self.tx, self.id)

    def to_json(self) -> dict[str, Any]:
        named = {"list": f"List/{self.list_id}", "version": self.list_version}
        return {
            "id": self.event_id,
            "kind": self.kind,
            "patient": f"Patient/{self.patient_id}",
            # an access event of a patient who has no list names none
            **(named if self.list_id else {}),
            "created": self.created_at.isoformat(),
            **{k: v for k, v in self.payload.items() if k not in ("list", "patient", "version")},
        }


@dataclass(frozen=True)
class Place:
    name: str
    position: Position
    attempts: int
    next_try_at: datetime | None
    last_error: str | None


#: The consumer's place as one value, for comparing it with an event's.
_consumer_at = tuple_(consumer.c.position_tx, consumer.c.position)
_event_at = tuple_(outbox.c.tx, outbox.c.id)
#: How far this statement may read, ``(tx)`` below it: the oldest transaction of this
#: database that was running when the statement's snapshot was taken, or the snapshot's
#: ``xmax`` if none was. Every event with a smaller ``tx`` was committed (or rolled back)
#: by then and is visible. The snapshot's running transactions are the whole server's: those
#: that another database's sessions hold are left out (their xids, 32 bits in
#: ``pg_stat_activity``), so a bulk load or a long report elsewhere on the server holds no
#: consumer back; one whose session can no longer be found counts as this database's (it
#: may have been), so a read only ever stops short (PostgreSQL 13+).
_BOUND: ColumnElement[int] = literal_column(
    "(SELECT coalesce(min(x::text::bigint), pg_snapshot_xmax(pg_current_snapshot())::text::bigint)"
    " FROM pg_snapshot_xip(pg_current_snapshot()) AS x"
    " WHERE NOT EXISTS (SELECT FROM pg_stat_get_activity(NULL) AS a"
    " WHERE a.backend_xid::text::bigint = x::text::bigint & 4294967295"
    " AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database())))"
)


def _position(row: Any) -> Position:
    return Position(int(row.position_tx), int(row.position))


def place(conn: Connection, name: str, now: datetime, *, start_at_end: bool = False) -> Place:
    """The consumer's place, made if it has none: at the start of the outbox, or at its end
    for a consumer that only wants what happens from now on (a new subscription)."""
    row = conn.execute(select(consumer).where(consumer.c.name == name)).first()
    if row is None:
        # another process may make the same place at the same moment (two workers starting
        # on a fresh database): whichever comes second takes the one made first
        position = head(conn) if start_at_end else START
        insert_absent(
            conn,
            consumer,
            name=name,
            position=position.id,
            position_tx=position.tx,
            attempts=0,
            next_try_at=None,
            updated_at=now,
        )
        row = conn.execute(select(consumer).where(consumer.c.name == name)).one()
    return Place(row.name, _position(row), row.attempts, row.next_try_at, row.last_error)


_TAKE_TURNS = text("SELECT pg_advisory_xact_lock(hashtextextended('pll-consumer:' || :name, 0))")


def waiting(name: str) -> ColumnElement[bool]:
    """Whether the consumer ``name`` has events it has not had yet (every one, when it has
    no place yet). An expression, so that a consumer's idle check can ask it beside others
    in one query; one lookup on the outbox's ``(tx, id)`` index. It may say yes a moment
    before the events can be read (a transaction still open holds them back, see the
    module's docstring): the consumer then reads nothing and looks again."""
    at = select(consumer.c.position_tx, consumer.c.position).where(consumer.c.name == name)
    tx = func.coalesce(at.with_only_columns(consumer.c.position_tx).scalar_subquery(), 0)
    position = func.coalesce(at.with_only_columns(consumer.c.position).scalar_subquery(), 0)
    return exists().where(_event_at > tuple_(tx, position))


def take_turns(conn: Connection, name: str) -> None:
    """Hold the consumer ``name`` for this transaction: a second process that wants it
    waits until this one ends (statistics counted by two workers, never twice). Called
    before :func:`place`, which then reads the place the previous holder left. Unlike a row
    lock it gives the transaction no id, so until its first write it holds no other
    consumer back (the module's docstring says why that matters). SQLite's writers take
    turns anyway."""
    if conn.dialect.name == "postgresql":
        conn.execute(_TAKE_TURNS, {"name": name})


def head(conn: Connection) -> Position:
    """The end of what this transaction's snapshot can hand out: every event it could read
    is at or before it, every event it cannot is after it (:data:`START` when there is
    none). The events of transactions still running at the snapshot come after it, also
    those that have committed since: a consumer placed here gets them later."""
    newest = func.coalesce(select(func.max(outbox.c.id)).scalar_subquery(), 0)
    if conn.dialect.name != "postgresql":
        return Position(0, int(conn.execute(select(newest)).scalar_one()))
    row = conn.execute(select(newest.label("id"), _BOUND.label("bound"))).one()
    return Position(int(row.bound) - 1, int(row.id))


def _after(position: Position) -> ColumnElement[bool]:
    return _event_at > tuple_(position.tx, position.id)


def after(conn: Connection, position: Position, limit: int = 100) -> list[Event]:
    """The next events after ``position`` that can be read without ever skipping one that
    commits later (the module's docstring says why), oldest first."""
    query = select(outbox).where(_after(position))
    if conn.dialect.name == "postgresql":
        query = query.where(outbox.c.tx < _BOUND)
    rows = conn.execute(query.order_by(outbox.c.tx, outbox.c.id).limit(limit)).all()
    return [
        Event(
            id=r.id,
            event_id=r.event_id,
            patient_id=r.patient_id,
            list_id=r.list_id,
            list_version=r.list_version,
            kind=r.kind,
            created_at=r.created_at,
            payload=orjson.loads(r.payload),
            tx=r.tx,
        )
        for r in rows
    ]


def advance(conn: Connection, name: str, event: Event, now: datetime) -> None:
    """The consumer has had every event up to ``event`` (only ever forward: a second
    dispatcher that is behind never moves a place back)."""
    conn.execute(
        update(consumer)
        .where(consumer.c.name == name, _consumer_at < tuple_(event.tx, event.id))
        .values(
            position=event.id,
            position_tx=event.tx,
            attempts=0,
            next_try_at=None,
            last_error=None,
            updated_at=now,
            failing_since=None,
        )
    )


def failed(conn: Connection, name: str, error: str, now: datetime) -> datetime:
    """A delivery failed: try again later, waiting longer each time (1 s, 2 s, 4 s, … up to
    five minutes). Returns when. The first failure after a success marks since when the
    consumer has been failing (:func:`failing_since`)."""
    row = conn.execute(
        select(consumer.c.attempts, consumer.c.failing_since).where(consumer.c.name == name)
    ).first()
    attempts = (row.attempts if row else 0) + 1
    wait = min(timedelta(seconds=2 ** min(attempts - 1, 16)), MAX_BACKOFF)
    when = now + wait
    since = row.failing_since if row is not None and row.failing_since is not None else now
    conn.execute(
        update(consumer)
        .where(consumer.c.name == name)
        .values(
            attempts=attempts,
            next_try_at=when,
            last_error=error[:2000],
            updated_at=now,
            failing_since=since,
        )
    )
    return when


def failing_since(conn: Connection, name: str) -> datetime | None:
    """Since when every delivery to ``name`` has failed (``None``: its last one arrived)."""
    row = conn.execute(select(consumer.c.failing_since).where(consumer.c.name == name)).first()
    return row.failing_since if row is not None else None


def places(conn: Connection) -> Sequence[Any]:
    """Every consumer's row; :func:`position_of` gives its place."""
    return conn.execute(select(consumer).order_by(consumer.c.name)).all()


def position_of(row: Any) -> Position:
    """The place of a row :func:`places` gave."""
    return _position(row)


def lag(conn: Connection, position: Position, now: datetime) -> tuple[int, float]:
    """How many committed events a consumer at ``position`` has not had, and how old the
    oldest is (seconds); those a running transaction still holds back count too."""
    count, oldest = conn.execute(
        select(func.count(), func.min(outbox.c.created_at)).where(_after(position))
    ).one()
    return int(count), (now - oldest).total_seconds() if oldest is not None else 0.0


_OLDEST = text(
    "SELECT pid, coalesce(datname, '') AS datname, coalesce(state, '') AS state,"
    " extract(epoch FROM clock_timestamp() - xact_start) AS age"
    " FROM pg_stat_activity"
    " WHERE backend_xid IS NOT NULL AND datname = current_database()"
    " ORDER BY age(backend_xid) DESC LIMIT 1"
)


@dataclass(frozen=True)
class Transaction:
    """The oldest transaction of PLL's database still running that has written something:
    no consumer reads past it until it ends."""

    pid: int
    database: str
    seconds: float
    state: str


def oldest_transaction(conn: Connection) -> Transaction | None:
    """The transaction that holds every consumer back, on PostgreSQL (``None`` when none
    has written anything, and always on SQLite)."""
    if conn.dialect.name != "postgresql":
        return None
    row = conn.execute(_OLDEST).first()
    if row is None:
        return None
    return Transaction(int(row.pid), row.datname, float(row.age or 0.0), row.state)


@dataclass(frozen=True)
class Backlog:
    """What one consumer has not had yet."""

    name: str
    behind: int
    oldest_seconds: float
    attempts: int


def backlogs(conn: Connection, now: datetime, cap: int = BACKLOG_COUNT_CAP) -> list[Backlog]:
    """Every consumer the dispatcher still serves (not those of ended subscriptions), with
    how many events it has not had and how old the first of them is: what
    :func:`lag` says for one, for all of them in two queries on the outbox's ``(tx, id)``
    index (for ``/metrics``, which runs this on every scrape). Each count stops at ``cap``
    rows; a consumer further behind is given the distance from its place to the newest id
    (an estimate: ids are not quite in ``(tx, id)`` order)."""
    waiting = (
        select(outbox.c.id)
        .where(_event_at > _consumer_at)
        .order_by(outbox.c.tx, outbox.c.id)
        .limit(cap)
        .correlate(consumer)
        .subquery()
    )
    behind = select(func.count()).select_from(waiting).scalar_subquery()
    oldest = (
        select(outbox.c.created_at)
        .where(_event_at > _consumer_at)
        .order_by(outbox.c.tx, outbox.c.id)
        .limit(1)
        .scalar_subquery()
    )
    is_subscription = consumer.c.name.like(SUBSCRIPTION_PREFIX + "%")
    subscription_id = func.substr(consumer.c.name, len(SUBSCRIPTION_PREFIX) + 1)
    rows = conn.execute(
        select(
            consumer.c.name,
            consumer.c.position,
            consumer.c.attempts,
            behind.label("behind"),
            oldest.label("oldest"),
        )
        .outerjoin(subscription, and_(is_subscription, subscription.c.id == subscription_id))
        .where(or_(~is_subscription, subscription.c.status == "active"))
        .order_by(consumer.c.name)
    ).all()
    newest = head(conn).id if any(r.behind >= cap for r in rows) else 0
    return [
        Backlog(
            r.name,
            max(int(r.behind), newest - r.position) if r.behind >= cap else int(r.behind),
            max((now - r.oldest).total_seconds(), 0.0) if r.oldest is not None else 0.0,
            int(r.attempts),
        )
        for r in rows
    ]
