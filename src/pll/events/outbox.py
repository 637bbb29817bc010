"""Reading the outbox and keeping each consumer's place in it.

Every accepted change writes one event to ``outbox`` in its own transaction (DESIGN §3 rule
7). Outbox ids are handed out in commit order: SQLite commits one writer at a time, and on
PostgreSQL the insert takes a transaction-level lock held until commit
(:func:`pll.store.repository.add_event`), so an event with a smaller id is always committed
before one with a larger id. A consumer's ``position`` is the id of the last event it has had:
it reads on from there in id order, so it never misses one and gets each patient's events in
the order they happened; it advances only after a delivery succeeded, so an event is delivered
at least once. Consumers deduplicate by ``event_id``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, and_, exists, func, or_, select, update

from pll.store.db import insert_absent
from pll.store.schema import consumer, outbox, subscription

#: The longest wait between attempts for a consumer that keeps failing.
MAX_BACKOFF = timedelta(minutes=5)
#: How far :func:`backlogs` counts undelivered events one by one; past it, it takes the
#: distance between ids (exact unless a rolled-back insert left a gap in them).
BACKLOG_COUNT_CAP = 10_000
#: The consumer names of FHIR rest-hook subscriptions (pll.events.resthook).
SUBSCRIPTION_PREFIX = "subscription:"


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
    position: int
    attempts: int
    next_try_at: datetime | None
    last_error: str | None


def place(conn: Connection, name: str, now: datetime, *, start_at_end: bool = False) -> Place:
    """The consumer's place, made if it has none: at the start of the outbox, or at its end
    for a consumer that only wants what happens from now on (a new subscription)."""
    row = conn.execute(select(consumer).where(consumer.c.name == name)).first()
    if row is None:
        # another process may make the same place at the same moment (two workers starting
        # on a fresh database): whichever comes second takes the one made first
        position = head(conn) if start_at_end else 0
        insert_absent(
            conn,
            consumer,
            name=name,
            position=position,
            attempts=0,
            next_try_at=None,
            updated_at=now,
        )
        row = conn.execute(select(consumer).where(consumer.c.name == name)).one()
    return Place(row.name, row.position, row.attempts, row.next_try_at, row.last_error)


def head(conn: Connection) -> int:
    """The id of the newest event (0 when there is none)."""
    return int(conn.execute(select(func.coalesce(func.max(outbox.c.id), 0))).scalar_one())


def waiting(name: str) -> ColumnElement[bool]:
    """Whether the consumer ``name`` has events it has not had yet (every one, when it has
    no place yet). An expression, so that a consumer's idle check can ask it beside others
    in one query; one lookup on the outbox's primary key."""
    position = select(consumer.c.position).where(consumer.c.name == name).scalar_subquery()
    return exists().where(outbox.c.id > func.coalesce(position, 0))


def after(conn: Connection, position: int, limit: int = 100) -> list[Event]:
    """The events after ``position``, oldest first."""
    rows = conn.execute(
        select(outbox).where(outbox.c.id > position).order_by(outbox.c.id).limit(limit)
    ).all()
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
        )
        for r in rows
    ]


def advance(conn: Connection, name: str, event: Event, now: datetime) -> None:
    """The consumer has had every event up to ``event`` (only ever forward: a second
    dispatcher that is behind never moves a place back)."""
    conn.execute(
        update(consumer)
        .where(consumer.c.name == name, consumer.c.position < event.id)
        .values(
            position=event.id,
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
    return conn.execute(select(consumer).order_by(consumer.c.name)).all()


def lag(conn: Connection, position: int, now: datetime) -> tuple[int, float]:
    """How many events a consumer at ``position`` has not had, and how old the oldest is
    (seconds)."""
    count, oldest = conn.execute(
        select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.id > position)
    ).one()
    return int(count), (now - oldest).total_seconds() if oldest is not None else 0.0


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
    :func:`lag` says for one, for all of them in two queries on the outbox's primary key
    (for ``/metrics``, which runs this on every scrape). Each count stops at ``cap`` rows;
    a consumer further behind is given the distance from its place to the newest id."""
    waiting = (
        select(outbox.c.id)
        .where(outbox.c.id > consumer.c.position)
        .order_by(outbox.c.id)
        .limit(cap)
        .correlate(consumer)
        .subquery()
    )
    behind = select(func.count()).select_from(waiting).scalar_subquery()
    oldest = (
        select(outbox.c.created_at)
        .where(outbox.c.id > consumer.c.position)
        .order_by(outbox.c.id)
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
    newest = head(conn) if any(r.behind >= cap for r in rows) else 0
    return [
        Backlog(
            r.name,
            max(int(r.behind), newest - r.position) if r.behind >= cap else int(r.behind),
            max((now - r.oldest).total_seconds(), 0.0) if r.oldest is not None else 0.0,
            int(r.attempts),
        )
        for r in rows
    ]
