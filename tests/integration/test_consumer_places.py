"""A consumer's place is made once, however many processes start on a fresh database.

Seen on PostgreSQL with ``pll serve --workers 2``: both workers' statistics consumers found
no place, both inserted one, and the second failed on the duplicate key. On SQLite writers
take turns from the start of their transaction, so the race cannot happen there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from pll.events import outbox
from pll.store import stats as stats_store
from pll.store.db import Database
from pll.store.schema import consumer, stats_place
from tests.conftest import empty_tables

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def _race(db: Database, make: Callable[[sa.Connection], object]) -> list[BaseException]:
    """Two transactions make the same place: the first holds its new row uncommitted while
    the second looks, finds none and inserts; then the first commits."""
    if db.is_sqlite:
        pytest.skip("SQLite admits one writer from BEGIN on: the second cannot look first")
    empty_tables(db)
    errors: list[BaseException] = []
    second_started = threading.Event()

    def second() -> None:
        second_started.set()
        try:
            with db.write() as conn:
                make(conn)
        except BaseException as exc:  # the test reports it
            errors.append(exc)

    with db.write() as conn:
        make(conn)
        thread = threading.Thread(target=second)
        thread.start()
        second_started.wait(5)
        _blocked_on_a_lock(db)  # the second has looked, found nothing, and tries to insert
    thread.join(10)
    assert not thread.is_alive()
    return errors


def _blocked_on_a_lock(db: Database) -> None:
    """Wait until a session of this database waits for a lock: the second transaction's
    insert, held up by the first's uncommitted row with the same key."""
    deadline = time.monotonic() + 30
    with db.engine.connect() as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            watcher.rollback()
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("the second transaction never waited for the first's row")


def test_an_outbox_place_made_twice_at_once(database: Database) -> None:
    errors = _race(database, lambda conn: outbox.place(conn, "statistics", NOW))
    assert errors == []
    with database.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(consumer)).scalar() == 1


def test_an_audit_place_made_twice_at_once(database: Database) -> None:
    errors = _race(database, lambda conn: stats_store.audit_place(conn, "audit", NOW))
    assert errors == []
    with database.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(stats_place)).scalar() == 1
