"""The audit trail partitioned by month on PostgreSQL (issue 20, migration 0025): rows land
in their month, a month without a partition still takes rows, the sealer makes partitions
ahead (safely from several processes), and the hash chain and ``pll audit verify`` hold
across months. SQLite keeps one table."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from pll.auth import audit as seal_math
from pll.services.audit import AuditTrail
from pll.store import audit_log
from pll.store.audit_partitions import PartitionsBusy
from pll.store.db import Database, alembic_config
from tests.conftest import _drop_postgres_database, _postgres_database, append_only_lifted
from tests.conftest import empty_tables as _empty_tables

PLL = str(Path(sys.executable).parent / "pll")
KEY = seal_math.AuditKey(b"test-audit-partitions-key-32-bytes!")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def trail(db: Database, now: str) -> AuditTrail:
    moment = at(now)
    return AuditTrail(db, KEY, lambda: moment)


def record(when: datetime, patient: str = "p-1") -> dict[str, Any]:
    """An audit record as PLL writes it, with its MAC."""
    actor = '{"hpr":"9144889","name":"Kari Fastlege"}'
    content = seal_math.canonical(when, actor, "read", "List", "HPBEH", "0", "l-1", patient, None)
    return {
        "recorded_at": when,
        "actor": actor,
        "action": "read",
        "resource_type": "List",
        "resource_id": "l-1",
        "patient_id": patient,
        "basis": "HPBEH",
        "outcome": "0",
        "flag": None,
        "mac": KEY.mac(content),
    }


def append(db: Database, *moments: str) -> None:
    with db.write() as conn:
        for moment in moments:
            audit_log.append(conn, record(at(moment)))


def homes(db: Database) -> dict[str, str]:
    """Each record's ``recorded_at`` (as stored) and the partition holding it."""
    with db.read() as conn:
        rows = conn.execute(
            sa.text("SELECT recorded_at, tableoid::regclass::text FROM audit_event")
        ).all()
    return {r[0].isoformat(): r[1] for r in rows}


def partition_names(db: Database) -> set[str]:
    return {p.name for p in AuditTrail(db, KEY, lambda: datetime.now(UTC)).partitions()}


@pytest.fixture
def pg(database: Database) -> Iterator[Database]:
    """The session's PostgreSQL database, its tables emptied before and after."""
    if database.is_sqlite:
        pytest.skip("SQLite keeps the audit trail in one table")
    _empty_tables(database)
    yield database
    _empty_tables(database)


def test_rows_land_in_their_months_partition(pg: Database) -> None:
    assert trail(pg, "2031-01-15T12:00:00").keep_partitions() == [
        "audit_event_2031_01",
        "audit_event_2031_02",
        "audit_event_2031_03",
        "audit_event_2031_04",
    ]
    append(pg, "2031-01-31T23:59:59.999999", "2031-02-01T00:00:00", "2031-04-30T08:00:00")
    assert homes(pg) == {
        "2031-01-31T23:59:59.999999": "audit_event_2031_01",
        "2031-02-01T00:00:00": "audit_event_2031_02",
        "2031-04-30T08:00:00": "audit_event_2031_04",
    }
    assert trail(pg, "2031-01-20T00:00:00").keep_partitions() == []  # idempotent


def test_a_month_without_a_partition_still_takes_rows_and_they_move_into_it(
    pg: Database,
) -> None:
    append(pg, "2032-06-10T09:00:00", "2032-06-11T10:00:00")
    assert set(homes(pg).values()) == {"audit_event_default"}

    # the next sealer run (whatever its own month) makes June and moves them in, then seals
    sealer = AuditTrail(pg, KEY, lambda: datetime.now(UTC))
    assert sealer.seal() == 2
    assert "audit_event_2032_06" in partition_names(pg)
    assert "audit_event_2032_07" not in partition_names(pg)
    assert set(homes(pg).values()) == {"audit_event_2032_06"}
    result = sealer.verify()
    assert result.ok, result.problems
    assert (result.records, result.unsealed) == (2, 0)
    # the moved rows are guarded as before, and so is the default partition after the move
    for sql in ("DELETE FROM audit_event", "UPDATE audit_event SET actor = 'x'"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), pg.write() as conn:
            conn.execute(sa.text(sql))
    append(pg, "2040-01-01T00:00:00")
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), pg.write() as conn:
        conn.execute(sa.text("DELETE FROM audit_event_default"))


def test_seal_and_verify_across_a_month_boundary(pg: Database) -> None:
    sealer = trail(pg, "2033-01-31T23:00:00")
    sealer.keep_partitions()
    # ids and months out of step, as at a month's turn: a record of January commits last
    append(pg, "2033-01-31T23:59:59.5", "2033-02-01T00:00:00.1")
    append(pg, "2033-01-31T23:59:59.9")
    assert sealer.seal() == 3
    append(pg, "2033-02-01T00:00:01", "2033-01-31T23:59:58")
    assert sealer.seal() == 2
    assert set(homes(pg).values()) == {"audit_event_2033_01", "audit_event_2033_02"}
    result = sealer.verify()
    assert result.ok, result.problems
    assert (result.records, result.unsealed) == (5, 0)
    with pg.read() as conn:
        positions = conn.execute(
            sa.text("SELECT chain_seq FROM audit_event ORDER BY chain_seq")
        ).scalars()
        assert list(positions) == [1, 2, 3, 4, 5]


def test_verify_names_a_tampered_row_in_an_older_partition(pg: Database) -> None:
    sealer = trail(pg, "2034-03-02T10:00:00")
    sealer.keep_partitions()
    append(pg, "2034-03-02T10:00:00", "2034-04-02T10:00:00", "2034-05-02T10:00:00")
    sealer.seal()
    with pg.write() as conn, append_only_lifted(conn, pg):
        target = conn.execute(
            sa.text("SELECT id FROM audit_event_2034_03"),
        ).scalar_one()
        conn.execute(
            sa.text("UPDATE audit_event SET patient_id = 'p-2' WHERE id = :id"), {"id": target}
        )
    result = sealer.verify()
    assert not result.ok
    assert result.problems[0][0] == target
    assert "does not match its MAC" in result.problems[0][1]


def test_verify_names_a_chain_position_held_in_two_months(pg: Database) -> None:
    """No index spans the months, so verify is what catches a position used twice."""
    sealer = trail(pg, "2035-07-30T10:00:00")
    sealer.keep_partitions()
    append(pg, "2035-07-30T10:00:00", "2035-08-02T10:00:00")
    sealer.seal()
    with pg.write() as conn, append_only_lifted(conn, pg):
        copy = conn.execute(
            sa.text(
                "INSERT INTO audit_event (recorded_at, actor, action, resource_type, "
                "resource_id, patient_id, basis, outcome, mac, chain_seq, chain_hash) "
                "SELECT recorded_at + interval '1 month', actor, action, resource_type, "
                "resource_id, patient_id, basis, outcome, mac, chain_seq, chain_hash "
                "FROM audit_event WHERE chain_seq = 1 RETURNING id"
            )
        ).scalar_one()
    result = sealer.verify()
    assert not result.ok
    assert any(rid == copy and "claims chain position #1" in text for rid, text in result.problems)


def test_the_migration_moves_existing_rows_and_the_chain_verifies_after(
    database: Database,
) -> None:
    if database.is_sqlite:
        pytest.skip("SQLite keeps the audit trail in one table")
    name = f"pll_test_audit_mig_{uuid.uuid4().hex[:8]}"
    db = Database(_postgres_database(name))
    try:
        with db.engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0021")
        old = trail(db, "2026-10-05T00:00:00")
        append(db, "2026-09-30T23:59:59.999999", "2026-10-01T00:00:00", "2026-10-05T00:00:00")
        assert old.seal() == 3
        append(db, "2026-10-06T00:00:00")  # one waiting for the sealer through the migration
        with db.read() as conn:
            before = conn.execute(
                sa.text("SELECT id, chain_seq, chain_hash, mac FROM audit_event ORDER BY id")
            ).all()

        db.upgrade()

        placed = homes(db)
        assert placed["2026-09-30T23:59:59.999999"] == "audit_event_2026_09"
        assert placed["2026-10-01T00:00:00"] == "audit_event_2026_10"
        with db.read() as conn:
            after = conn.execute(
                sa.text("SELECT id, chain_seq, chain_hash, mac FROM audit_event ORDER BY id")
            ).all()
            kind = conn.execute(
                sa.text("SELECT relkind FROM pg_class WHERE relname = 'audit_event'")
            ).scalar_one()
        assert kind == "p"
        assert after == before
        assert old.seal() == 1
        append(db, "2026-10-07T00:00:00")
        assert old.seal() == 1
        result = old.verify()
        assert result.ok, result.problems
        assert (result.records, result.unsealed) == (5, 0)
        with db.read() as conn:  # new ids continue the old sequence
            newest = conn.execute(sa.text("SELECT max(id) FROM audit_event")).scalar_one()
        assert newest == before[-1].id + 1
        # partitions for this month and the next three exist (the migration made them)
        now = datetime.now(UTC)
        assert f"audit_event_{now:%Y_%m}" in partition_names(db)
    finally:
        db.dispose()
        _drop_postgres_database(name)


def test_two_processes_making_partitions_at_once(pg: Database, data_dir: Path) -> None:
    env = os.environ | {"PLL_DATABASE_URL": pg.url, "PLL_DATA_DIR": str(data_dir)}
    env.pop("PLL_AUDIT_KEY", None)
    had = partition_names(pg)
    procs = [
        subprocess.Popen(
            [PLL, "audit", "partitions", "--ahead", "48"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    made = [out.rsplit("made: ", 1)[1].strip() for out, _ in outs]
    names = [set() if m.startswith("none") else set(m.split(", ")) for m in made]
    assert not names[0] & names[1]  # each partition made once
    assert had | names[0] | names[1] == partition_names(pg)
    assert len(partition_names(pg) - had) >= 45
    listed = outs[0][0]
    assert "audit_event_default" in listed
    assert "rows" in listed


def test_threads_making_partitions_at_once_make_each_once(pg: Database) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def make() -> None:
        start.wait()
        try:
            results.append(trail(pg, "2036-01-01T00:00:00").keep_partitions(ahead=12))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    made = [name for names in results for name in names]
    assert sorted(made) == sorted(set(made))
    assert len(made) == 13


def test_maintenance_gives_up_on_a_busy_lock_and_the_sealer_goes_on(pg: Database) -> None:
    """Attaching a partition locks the default partition; while a long reader holds it,
    maintenance gives up within its lock timeout, changes nothing, and sealing goes on."""
    append(pg, "2037-03-03T03:00:00")  # waits in the default partition
    reader = pg.engine.connect()
    try:
        reader.begin()
        reader.execute(sa.text("SELECT count(*) FROM audit_event_default"))
        sealer = trail(pg, "2037-03-03T03:00:00")
        with pytest.raises(PartitionsBusy):
            sealer.keep_partitions()
        assert "audit_event_2037_03" not in partition_names(pg)
        assert sealer.seal() == 1  # the sealer logs the busy lock and seals all the same
    finally:
        reader.rollback()
        reader.close()
    before = _chain(pg)
    assert trail(pg, "2037-03-03T03:00:00").keep_partitions()[0] == "audit_event_2037_03"
    # the sealed record moved into its month with its seal, and the chain verifies
    assert set(homes(pg).values()) == {"audit_event_2037_03"}
    assert _chain(pg) == before
    result = sealer.verify()
    assert result.ok, result.problems


def test_sqlite_keeps_one_table(database: Database, data_dir: Path) -> None:
    if not database.is_sqlite:
        pytest.skip("PostgreSQL partitions the trail")
    sealer = trail(database, "2031-01-15T12:00:00")
    assert sealer.keep_partitions() == []
    assert sealer.partitions() == []
    with database.read() as conn:
        tables = conn.execute(
            sa.text(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'audit_event%'"
            )
        ).scalars()
        assert list(tables) == ["audit_event"]
    env = os.environ | {"PLL_DATABASE_URL": database.url, "PLL_DATA_DIR": str(data_dir)}
    done = subprocess.run(
        [PLL, "audit", "partitions"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "SQLite keeps the audit trail in one table" in done.stdout


def _chain(db: Database) -> list[tuple[Any, ...]]:
    with db.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, recorded_at, mac, chain_seq, chain_hash FROM audit_event ORDER BY id"
            )
        ).all()
    return [tuple(r) for r in rows]


def test_a_record_of_the_month_committed_while_its_partition_is_made_moves_with_it(
    pg: Database,
) -> None:
    """A record for a month without a partition, still being written when the partition is
    made, is waited for and moved in: without the lock taken before the look into the
    default partition, the record committed between the look and ATTACH made ATTACH fail
    (a 23514 check violation instead of a partition). Review of issue 20."""
    month = f"2{uuid.uuid4().int % 800 + 100:03d}-07"  # a month no other test uses
    writer = pg.engine.connect()
    maker = pg.engine.connect()
    try:
        writer.begin()
        audit_log.append(writer, record(at(f"{month}-15T10:00:00")))  # open, not committed
        made: list[Any] = []

        def make() -> None:
            try:
                with maker.begin():
                    made.append(
                        maker.execute(
                            sa.text("SELECT audit_event_add_partition(:m)"),
                            {"m": at(f"{month}-01T00:00:00").replace(tzinfo=None)},
                        ).scalar_one()
                    )
            except Exception as exc:
                made.append(exc)

        thread = threading.Thread(target=make)
        thread.start()
        pid = maker.connection.driver_connection.info.backend_pid  # type: ignore[union-attr]
        with pg.engine.connect() as watch:
            waiting = sa.text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :p")
            while watch.execute(waiting, {"p": pid}).scalar() != "Lock":
                watch.rollback()
        writer.commit()
        thread.join(60)
        assert made == [f"audit_event_{month.replace('-', '_')}"]
        assert set(homes(pg).values()) == {f"audit_event_{month.replace('-', '_')}"}
    finally:
        writer.close()
        maker.close()


def test_a_batch_newer_than_the_statistics_is_sealed_reading_the_batch_once(
    pg: Database,
) -> None:
    """The worker seals each second's records, which are always newer than what ANALYZE last
    saw. The batch statement must still find each record by its key: a plan that scanned the
    batch's time range (taken for one row) and compared every record in it with every record
    in the batch sealed 5,000 records in 5–10 s (bench/seal_bench.py)."""
    sealer = trail(pg, "2034-03-10T12:00:00")
    sealer.keep_partitions()
    fill = sa.text(
        "INSERT INTO audit_event (recorded_at, actor, action, resource_type, outcome, mac) "
        "SELECT CAST(:start AS timestamp) + interval '1 millisecond' * g, 'a', 'read', "
        "'List', '0', md5(g::text) FROM generate_series(1, :n) AS g"
    )
    with pg.write() as conn:
        conn.execute(fill, {"start": "2034-03-10T11:00:00", "n": 3000})
    assert sealer.seal() == 3000
    with pg.engine.connect() as plain:
        plain.execution_options(isolation_level="AUTOCOMMIT").execute(
            sa.text("ANALYZE audit_event")
        )
    with pg.write() as conn:
        conn.execute(fill, {"start": "2034-03-10T11:30:00", "n": 400})
        rows = audit_log.unsealed(conn, 1000)
        seals = [
            {"record": r.id, "at": r.recorded_at, "seq": 3001 + i, "hash": "0" * 64}
            for i, r in enumerate(rows)
        ]
        explained = conn.execute(
            sa.text("EXPLAIN (ANALYZE, FORMAT JSON) " + audit_log.SEAL_BATCH.text),
            audit_log.seal_batch_parameters(seals),
        ).scalar_one()
        conn.rollback()
    nodes = list(_plan_nodes(explained[0]["Plan"]))
    assert len(seals) == 400
    # the batch is read once (outer loop or hash), never once for each record of the month
    (batch,) = [n for n in nodes if n["Node Type"] == "Function Scan"]
    assert batch["Actual Loops"] == 1, nodes
    assert all(n.get("Rows Removed by Join Filter", 0) == 0 for n in nodes), nodes
    assert explained[0]["Plan"]["Plans"][0]["Actual Rows"] == 400


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)
