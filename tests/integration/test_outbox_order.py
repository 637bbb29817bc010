"""The outbox without a global lock (issue 20): writes to different patients commit side by
side, and a consumer still gets every committed event exactly once, each patient's in the
order they happened, also when a transaction that got its outbox id first commits last
(DESIGN §3 rule 7, :mod:`pll.events.outbox`).

Real concurrency on PostgreSQL: open transactions are held with two connections at once, not
with sleeps. SQLite commits one writer at a time; the concurrent writers run there too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from alembic import command

from pll.auth.access import Access, Basis
from pll.auth.tokens import PERSONAS
from pll.domain.model import Author, Role
from pll.events import outbox
from pll.events.readcopy import ReadCopy
from pll.services.lists import Op
from pll.store.db import Database, alembic_config, normalise_url
from pll.store.schema import consumer
from pll.store.schema import outbox as outbox_table
from tests.conftest import Clock, LiveServer, _drop_postgres_database, _postgres_database
from tests.integration.builders import new_patient_with_list, ok, statement

GP = PERSONAS["gp"]
#: the GP as the services see them, for writes held open inside a test's own transaction
GP_ACCESS = Access(
    Author(GP.name, Role.DOCTOR, hpr=GP.hpr, org_id=GP.org_id, org_name=GP.org_name),
    Basis.TREATMENT,
    "pll-test",
)


def _postgres_only(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite admits one writer at a time: no two transactions are open at once")


def _add(server: LiveServer, conn: sa.Connection, pid: str, name: str) -> None:
    """A new entry on the patient's list, written by the service in ``conn``'s transaction
    (the list version, the documents, the audit row and the event: the whole write)."""
    entry = statement(f"Patient/{pid}", name, "N02BE01")
    result = server.service.apply_in(
        conn, GP_ACCESS, pid, [Op("create", "MedicationStatement", str(uuid.uuid4()), entry)], None
    )
    assert result.list_version is not None


class Reader:
    """A consumer placed at the end of the outbox, reading as a dispatcher does: the next
    events after its place, its place moved past them; it keeps all it was given."""

    def __init__(self, server: LiveServer) -> None:
        self.server, self.name = server, f"test-{uuid.uuid4().hex[:12]}"
        self.seen: list[outbox.Event] = []
        with server.db.write() as conn:
            outbox.place(conn, self.name, server.service.clock(), start_at_end=True)

    def read(self, limit: int = 100) -> list[outbox.Event]:
        clock = self.server.service.clock
        with self.server.db.write() as conn:
            place = outbox.place(conn, self.name, clock())
            events = outbox.after(conn, place.position, limit)
            if events:
                outbox.advance(conn, self.name, events[-1], clock())
        self.seen += events
        return events

    def until(self, pids: set[str], count: int) -> list[outbox.Event]:
        """Read until ``count`` events of ``pids`` have come; what came. A transaction of
        the server's own background work may hold the consumer back for a moment."""
        got: list[outbox.Event] = []
        for _ in range(3000):
            got += _ours(self.read(), pids)
            if len(got) >= count:
                break
            threading.Event().wait(0.01)
        return got


def _ours(events: list[outbox.Event], pids: set[str]) -> list[outbox.Event]:
    return [e for e in events if e.patient_id in pids]


def _patients(server: LiveServer, count: int) -> list[str]:
    with server.client("gp") as gp:
        return [new_patient_with_list(gp)[0] for _ in range(count)]


def test_writes_to_two_patients_are_in_the_outbox_together_before_either_commits(
    server: LiveServer,
) -> None:
    _postgres_only(server.db)
    first, second = _patients(server, 2)
    with server.db.write() as one:
        _add(server, one, first, "Paracet tab 500 mg")
        with server.db.write() as two:
            # with one lock for every write, this waits for ``one``, which cannot commit
            # before this block ends: it would fail here, instead of waiting for ever
            two.execute(sa.text("SET LOCAL lock_timeout = '10s'"))
            _add(server, two, second, "Paracet tab 500 mg")
            for conn, pid in ((one, first), (two, second)):
                assert (
                    conn.execute(
                        sa.select(sa.func.count())
                        .select_from(outbox_table)
                        .where(outbox_table.c.patient_id == pid)
                    ).scalar_one()
                    == 2
                )  # its list's creation, and the new entry
    with server.db.read() as conn:
        kinds = conn.execute(
            sa.select(outbox_table.c.patient_id, outbox_table.c.list_version).where(
                outbox_table.c.patient_id.in_([first, second])
            )
        ).all()
    assert sorted(v for _, v in kinds) == [1, 1, 2, 2]


def test_an_event_can_be_read_as_soon_as_it_commits(server: LiveServer) -> None:
    """With nothing else running in PLL's database, a consumer gets an event at once: it
    does not wait for some later transaction, anywhere on the server, to end first. Here a
    newer transaction ends while the writer is open, as one often does."""
    pids = _patients(server, 3)
    reader = Reader(server)
    for pid in pids:
        with server.db.write() as conn:
            if not server.db.is_sqlite:
                conn.execute(sa.text("SELECT pg_current_xact_id()"))
                with server.db.engine.begin() as newer:
                    newer.execute(sa.text("SELECT pg_current_xact_id()"))
            _add(server, conn, pid, "Paracet tab 500 mg")
        assert [e.patient_id for e in _ours(reader.read(), set(pids))] == [pid]


def test_an_event_that_commits_after_a_later_one_is_not_skipped(server: LiveServer) -> None:
    _postgres_only(server.db)
    early_patient, late_patient = pids = _patients(server, 2)
    reader = Reader(server)
    with server.db.write() as early:
        _add(server, early, early_patient, "Paracet tab 500 mg")
        with server.db.write() as late:
            late.execute(sa.text("SET LOCAL lock_timeout = '10s'"))  # as above
            _add(server, late, late_patient, "Paracet tab 500 mg")
        # ``late`` has committed; ``early`` got its outbox id first and is still open
        with server.db.read() as conn:
            late_id = conn.execute(
                sa.select(outbox_table.c.id).where(
                    outbox_table.c.patient_id == late_patient, outbox_table.c.list_version == 2
                )
            ).scalar_one()
        early_id = early.execute(
            sa.select(outbox_table.c.id).where(
                outbox_table.c.patient_id == early_patient, outbox_table.c.list_version == 2
            )
        ).scalar_one()
        assert early_id < late_id
        # the consumer waits for ``early``: had it taken ``late``'s event now, its place
        # would be past ``early``'s id, and ``early``'s event would never reach it
        assert _ours(reader.read(), set(pids)) == []
    got = reader.until(set(pids), 2)
    assert [(e.patient_id, e.list_version) for e in got] == [
        (early_patient, 2),
        (late_patient, 2),
    ]
    assert _ours(reader.read(), set(pids)) == []  # and nothing twice


def _waiting_for_a_lock(db: Database) -> None:
    """Return once a session of this database waits for a lock (polled: the outcome of the
    test does not depend on how long it takes)."""
    with db.engine.connect() as watcher:
        for _ in range(3000):
            waiting = watcher.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            watcher.rollback()
            if waiting:
                return
            threading.Event().wait(0.01)
    raise AssertionError("the second writer never waited for the first")


def test_a_patients_events_keep_their_order_when_the_later_writer_began_first(
    server: LiveServer,
) -> None:
    """The second writer to a patient got its transaction id before the first (it wrote
    something before it asked for the list) and waits for the first's list lock; its event
    still comes after the first's."""
    _postgres_only(server.db)
    (pid,) = _patients(server, 1)
    reader = Reader(server)
    errors: list[BaseException] = []
    with server.db.write() as second:
        second.execute(sa.text("SELECT pg_current_xact_id()"))  # its id, before the first's
        with server.db.write() as first:
            _add(server, first, pid, "Paracet tab 500 mg")

            def write_second() -> None:
                try:
                    _add(server, second, pid, "Ibux tab 400 mg")
                except BaseException as exc:  # the test reports it
                    errors.append(exc)

            thread = threading.Thread(target=write_second)
            thread.start()
            _waiting_for_a_lock(server.db)  # the list row, held by ``first``
        thread.join(30)  # ``first`` has committed; ``second`` has written its version
        assert not thread.is_alive()
    assert errors == []
    got = reader.until({pid}, 2)
    assert [e.list_version for e in got] == [2, 3]
    assert _ours(reader.read(), {pid}) == []


def test_a_transaction_in_another_database_holds_no_consumer_back(
    server: LiveServer,
) -> None:
    _postgres_only(server.db)
    (pid,) = _patients(server, 1)
    reader = Reader(server)
    name = f"pll_test_other_{uuid.uuid4().hex[:8]}"
    other = sa.create_engine(normalise_url(_postgres_database(name)))
    try:
        with other.connect() as elsewhere:
            # older than the write below, and open until the consumer has read it
            elsewhere.execute(sa.text("SELECT pg_current_xact_id()"))
            with server.db.write() as conn:
                _add(server, conn, pid, "Paracet tab 500 mg")
            assert [e.list_version for e in reader.until({pid}, 1)] == [2]
            elsewhere.rollback()
    finally:
        other.dispose()
        _drop_postgres_database(name)


def _write_many(server: LiveServer, pids: list[str], writers: int, each: int) -> list[str]:
    """``writers`` threads each adding ``each`` entries over HTTP, spread over ``pids``;
    returns the errors."""
    errors: list[str] = []

    def write(n: int) -> None:
        try:
            with server.client("gp") as gp:
                for i in range(each):
                    pid = pids[(n + i) % len(pids)]
                    body = statement(f"Patient/{pid}", f"Legemiddel {n}-{i}", "N02BE01")
                    ok(gp.post("/fhir/MedicationStatement", json=body), 201)
        except (AssertionError, httpx.HTTPError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_a_consumer_reading_beside_many_writers_gets_every_event_once_in_order(
    server: LiveServer,
) -> None:
    """16 writers on 4 patients over HTTP while a consumer reads in a loop; on PostgreSQL a
    fifth patient's write is held open from before the first of them to after the last
    (it got its outbox id first and commits last)."""
    pids = _patients(server, 5)
    busy, held = pids[:4], pids[4]
    reader = Reader(server)
    stop = threading.Event()
    failures: list[BaseException] = []

    def consume() -> None:
        try:
            while not stop.is_set():
                if not reader.read():
                    stop.wait(0.01)
        except BaseException as exc:  # the test reports it
            failures.append(exc)
            raise

    thread = threading.Thread(target=consume)
    thread.start()
    try:
        if server.db.is_sqlite:
            errors = _write_many(server, busy, 16, 3)
        else:
            with server.db.write() as first:
                _add(server, first, held, "Paracet tab 500 mg")
                errors = _write_many(server, busy, 16, 3)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert failures == []
    assert errors == []
    with server.db.read() as conn:
        committed = {
            r.event_id
            for r in conn.execute(
                sa.select(outbox_table.c.event_id).where(
                    outbox_table.c.patient_id.in_(pids), outbox_table.c.list_version > 1
                )
            )
        }
    # what was committed after the loop's last look
    reader.until(set(pids), len(committed) - len(_ours(reader.seen, set(pids))))
    reader.read()  # and nothing more comes
    mine = _ours(reader.seen, set(pids))
    assert len(committed) == 48 + (0 if server.db.is_sqlite else 1)
    assert sorted(e.event_id for e in mine) == sorted(committed)  # every one, exactly once
    for pid in pids:
        versions = [e.list_version for e in mine if e.patient_id == pid]
        assert versions == list(range(2, 2 + len(versions))), pid  # in the list's order
    positions = [e.position for e in reader.seen]
    assert positions == sorted(positions)  # the consumer never went back


# -- an upgraded database -------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0021(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database as PLL left it before issue 20 (migration 0021)."""
    name = ""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    else:
        name = f"pll_test_outbox_{uuid.uuid4().hex[:8]}"
        db = Database(_postgres_database(name))
    with db.engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0021")
    yield db
    db.dispose()
    if name:
        _drop_postgres_database(name)


def _old_event(conn: sa.Connection, n: int, clock: Clock) -> None:
    conn.execute(
        sa.insert(outbox_table).values(
            event_id=f"old-{n}",
            patient_id="p-old",
            list_id="l-old",
            list_version=n,
            kind="list-changed",
            created_at=clock(),
            payload="{}",
        )
    )


def test_consumers_carry_on_where_they_were_after_the_upgrade(
    at_0021: Database, tmp_path: Path, clock: Clock
) -> None:
    db = at_0021
    now = clock()
    old_consumer = sa.table(
        "consumer",
        sa.column("name"),
        sa.column("position"),
        sa.column("attempts"),
        sa.column("updated_at"),
    )
    old_outbox = sa.table(
        "outbox",
        *(sa.column(c) for c in ("event_id", "patient_id", "list_id", "list_version", "kind")),
        sa.column("created_at"),
        sa.column("payload"),
    )
    with db.engine.begin() as conn:
        for n in range(1, 5):
            conn.execute(
                sa.insert(old_outbox).values(
                    event_id=f"old-{n}",
                    patient_id="p-old",
                    list_id="l-old",
                    list_version=n,
                    kind="list-changed",
                    created_at=now,
                    payload="{}",
                )
            )
        ids = [r.id for r in conn.execute(sa.text("SELECT id FROM outbox ORDER BY id"))]
        conn.execute(
            sa.insert(old_consumer),
            [
                {"name": "statistics", "position": ids[1], "attempts": 0, "updated_at": now},
                {"name": "subscription:s", "position": ids[3], "attempts": 0, "updated_at": now},
            ],
        )
    # the read copy keeps its place in its own database, as it did before
    copy_db = Database(f"sqlite:///{tmp_path / 'copy.sqlite3'}")
    with copy_db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE copy_place (name VARCHAR(20) PRIMARY KEY, "
                "position BIGINT NOT NULL, updated_at DATETIME NOT NULL)"
            )
        )
        conn.execute(
            sa.text("INSERT INTO copy_place VALUES ('readcopy', :p, '2026-12-06 08:00:00')"),
            {"p": ids[1]},
        )

    db.upgrade()
    with db.write() as conn:
        _old_event(conn, 5, clock)  # the first event after the upgrade
    with db.write() as conn:
        stats = outbox.place(conn, "statistics", now)
        hook = outbox.place(conn, "subscription:s", now)
        assert (stats.position, hook.position) == (
            outbox.Position(0, ids[1]),
            outbox.Position(0, ids[3]),
        )
        stats_got = [e.list_version for e in outbox.after(conn, stats.position)]
        hook_got = [e.list_version for e in outbox.after(conn, hook.position)]
        new_id, new_tx = conn.execute(
            sa.select(outbox_table.c.id, outbox_table.c.tx).where(outbox_table.c.list_version == 5)
        ).one()
    assert stats_got == [3, 4, 5]  # nothing missed ...
    assert hook_got == [5]  # ... and nothing sent again
    assert (new_tx > 0) is (not db.is_sqlite)  # PostgreSQL names the writing transaction

    copy = ReadCopy(db, copy_db, clock)
    copy.setup()
    copy.setup()  # a second start changes nothing
    assert copy.lag().behind == 3
    assert copy.step() == 3
    assert copy.lag().behind == 0
    with copy_db.engine.connect() as conn:
        place = conn.execute(sa.text("SELECT position, position_tx FROM copy_place")).one()
    assert tuple(place) == (new_id, new_tx)
    with db.read() as conn:
        rows = conn.execute(sa.select(consumer.c.name, consumer.c.position_tx)).all()
    assert sorted(rows) == [("statistics", 0), ("subscription:s", 0)]
    copy_db.dispose()


def test_events_status_names_the_transaction_that_holds_consumers_back(
    database: Database, tmp_path: Path
) -> None:
    _postgres_only(database)
    env = {k: v for k, v in os.environ.items() if k != "PLL_DATABASE_URL"} | {
        "PLL_DATA_DIR": str(tmp_path / "data"),
        "PLL_DATABASE_URL": database.engine.url.render_as_string(hide_password=False),
    }
    pll = str(Path(sys.executable).parent / "pll")
    with database.engine.connect() as conn:
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        conn.execute(sa.text("SELECT pg_current_xact_id()"))  # it has written, as it were
        held = subprocess.run(
            [pll, "events", "status"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        conn.rollback()
    assert held.returncode == 0, held.stderr
    assert f"PostgreSQL process {pid} " in " ".join(held.stdout.split())


def test_a_consumer_takes_turns_without_holding_the_others_back(database: Database) -> None:
    """Two processes counting the statistics take turns on the consumer (the second waits),
    and the one counting has no transaction id while it reads: it holds no other consumer
    back until it writes."""
    _postgres_only(database)
    name = f"test-{uuid.uuid4().hex[:12]}"
    with database.write() as first:
        outbox.take_turns(first, name)
        outbox.place(first, name, datetime.now(UTC))  # made here: its insert has an id
    with database.write() as first:
        outbox.take_turns(first, name)
        place = outbox.place(first, name, datetime.now(UTC))
        outbox.after(first, place.position)
        assert first.execute(sa.text("SELECT pg_current_xact_id_if_assigned()")).scalar() is None
        with database.write() as second:
            second.execute(sa.text("SET LOCAL lock_timeout = '100ms'"))
            with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
                outbox.take_turns(second, name)
