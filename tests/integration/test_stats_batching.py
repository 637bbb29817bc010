"""The statistics consumer's database work per batch is a fixed number of statements, not
one or more per event or patient (issue 20: a profile of a serve worker had 46 % of its
samples in per-event queries of ``Statistics.catch_up``), and an idle check is one query."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from pll.events import outbox
from pll.services.stats import CONSUMER, Statistics
from pll.stats import organisations
from pll.store.db import Database
from tests.conftest import Clock, LiveServer
from tests.e2e.scenes import METFORMIN, add_medicine
from tests.integration.builders import new_patient_with_list, ok

REGISTER = """orgnr,name,kommunenummer,actor_type,her_id
974600951,Bergen legesenter,4601,fastlege,
985563756,Apotek 1 Bergen multidose,4601,apotek,
"""


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """Every statement sent to the database inside the block (an ``executemany`` is one;
    SQLite's ``BEGIN``, which PostgreSQL's driver sends with the first statement, is not)."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.startswith("BEGIN"):
            seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)


def events(db: Database) -> int:
    with db.read() as conn:
        return outbox.head(conn).id


def patients(server: LiveServer, gp: httpx.Client, pharmacy: httpx.Client, n: int) -> list[str]:
    """``n`` patients with a list; every fourth with a medicine (two more events) and every
    fifth on paper multidose (one more)."""
    pids = []
    for i in range(n):
        pid, _ = new_patient_with_list(gp)
        if i % 4 == 0:
            add_medicine(gp, pid, METFORMIN)
        if i % 5 == 0:
            paper = {"resourceType": "Parameters"}
            ok(pharmacy.post(f"/fhir/Patient/{pid}/$paper-multidose", json=paper))
        pids.append(pid)
    return pids


def test_a_batch_of_events_costs_a_fixed_number_of_statements(server: LiveServer) -> None:
    db = server.db
    stats = Statistics(db, server.service.clock)
    stats.register(organisations.parse("test", REGISTER))
    with server.client("gp") as gp, server.client("pharmacist") as pharmacy:
        patients(server, gp, pharmacy, 10)
        small = events(db)
        with statements(db) as few:
            assert stats.step(500) == small
        # 200 patients more, and then more events for each of them, to make 500
        pids = patients(server, gp, pharmacy, 200)
        for pid in pids:
            if events(db) - small >= 500:
                break
            add_medicine(gp, pid, METFORMIN)
    assert events(db) - small >= 500
    with statements(db) as many:
        assert stats.step(500) == 500
    # the same statements whether 500 events of 200 patients or a handful of 10
    assert len(many) <= 16, "\n".join(many)
    assert len(many) <= len(few) + 2, "\n".join(many)
    # every event was counted: the place is at the newest counted
    position, _ = stats.updated()
    assert position == small + 500


def test_an_idle_check_is_one_query(server: LiveServer) -> None:
    db = server.db
    stats = Statistics(db, server.service.clock)
    with server.client("gp") as gp:
        new_patient_with_list(gp)
    assert stats.catch_up() >= 1
    with statements(db) as idle:
        assert stats.catch_up() == 0
    assert len(idle) == 1, idle
    position, newest = stats.updated()
    assert position == newest
    assert CONSUMER == "statistics"


def test_an_audit_record_alone_is_due_once_it_has_settled(server: LiveServer, clock: Clock) -> None:
    db = server.db
    settled = Statistics(db, server.service.clock, settle=timedelta(0))
    waiting = Statistics(db, server.service.clock)  # 30 s behind the newest record
    with server.client("gp") as gp:
        _, list_id = new_patient_with_list(gp)
        settled.catch_up()
        assert not settled.due()
        ok(gp.get(f"/fhir/List/{list_id}"))  # a read: an audit record, no event
    assert settled.due()
    assert not waiting.due()
    clock.advance(seconds=31)
    assert waiting.due()
    settled.catch_up()
    assert not settled.due()
    assert not waiting.due()
