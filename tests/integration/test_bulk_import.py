"""``pll import generate`` and ``pll import lists`` (issue 20): the rows a bulk import writes
are the rows the service writes, a stopped import continues without duplicates or gaps, a
bad file is named and nothing of it is written.

Compared row by row over every table. Normalised, and only these: the serial ids the
database gives events (``outbox.id``), any column the database fills itself (``outbox.tx``),
and ``bulk_import`` (the import's own record). Ids and times are equal because both sides
draw them from the same fixed sources. A generated load seals its audit records as it writes
them: the service's side is sealed by the sealer before the comparison, so the chain is
compared too.
"""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from pll.auth.audit import AuditKey
from pll.events.readcopy import ReadCopy
from pll.services.audit import AuditTrail
from pll.services.bulk_import import generate, generate_job, missing
from pll.services.bulk_lists import import_lists, lists_job
from pll.services.lists import PLLService
from pll.services.sfm import SfmService
from pll.services.stats import Statistics
from pll.services.synthetic import gp_access, person, plans, synthetic_fnrs, write_patient
from pll.store.db import Database
from pll.store.schema import audit_event, metadata
from tests.conftest import empty_tables

ROOT = Path(__file__).resolve().parents[2]
PLL = str(Path(sys.executable).parent / "pll")
REFERENCE = ROOT / "tests/fixtures/sfm/getMedication-response-e-multidose.json"
REFERENCE_FNR = "25039296929"  # the patient's (17056600574 is the doctor's)
KEY = AuditKey(b"bulk-import-test-key-not-a-secret")
AT = datetime(2026, 11, 2, 10, 30, tzinfo=UTC)
#: the columns the database fills itself: normalised away
FILLED = {("outbox", "id"), ("outbox", "tx")}


def counter(start: int = 1) -> Callable[[], str]:
    """Ids the same on every run: the k-th id drawn is the same uuid."""
    state = [start]

    def ids() -> str:
        state[0] += 1
        return str(uuid.UUID(int=state[0]))

    return ids


def rows(
    db: Database, also: frozenset[tuple[str, str]] = frozenset()
) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but ``bulk_import``, without the columns the database fills
    (and ``also``)."""
    out = {}
    with db.read() as conn:
        for table in metadata.sorted_tables:
            if table.name == "bulk_import":
                continue
            kept = [c for c in table.c if (table.name, c.name) not in FILLED | also]
            found = conn.execute(sa.select(*kept)).all()
            out[table.name] = sorted((tuple(r) for r in found), key=repr)
    return out


@pytest.fixture
def db(database: Database) -> Iterator[Database]:
    empty_tables(database)
    yield database
    empty_tables(database)


def _audit_ids_from(db: Database, first: int) -> None:
    """Have the database give the next audit record the id ``first`` (PostgreSQL; SQLite
    gives the next after the largest, 1 in an empty log)."""
    if not db.is_sqlite:
        with db.write() as conn:
            conn.execute(
                sa.text("SELECT setval(pg_get_serial_sequence('audit_event', 'id'), :v, false)"),
                {"v": first},
            )


def test_generated_patients_have_the_rows_the_service_writes(db: Database) -> None:
    """... and the audit chain the sealer makes of the service's records: a generated load
    seals its records as it writes them, with the ids, positions and hashes the sealer
    would have given them."""
    report = generate(db, KEY, 5, seed=3, batch=2, ids=counter(), clock=lambda: AT)
    assert report.loaded == 5
    bulk = rows(db)
    assert len(bulk["patient"]) == 5
    assert len(bulk["audit_event"]) == 10  # registering, and creating the list
    assert [r[-2] for r in sorted(bulk["audit_event"])] == list(range(1, 11))  # chain_seq
    first = min(r[0] for r in bulk["audit_event"])
    empty_tables(db)

    service = PLLService(db, KEY, clock=lambda: AT, ids=counter())
    fnrs = synthetic_fnrs(5)
    _audit_ids_from(db, first)
    with db.write() as conn:
        for n in range(1, 6):
            p = person(n, fnrs[n - 1], 3)
            write_patient(service, conn, gp_access(), p, plans(3)[p.plan])
    assert AuditTrail(db, KEY, lambda: AT).seal() == 10
    written = rows(db)
    assert set(bulk) == set(written)
    for table in written:
        assert bulk[table] == written[table], table


def test_generated_audit_records_verify_sealed(db: Database) -> None:
    """The MACs of stamped audit records are the patient's own, and the load seals them
    into the chain after what was sealed before it (records waiting for the sealer when it
    began are sealed after the load's): the log verifies, and the sealer has nothing left
    to do but what waited."""
    trail = AuditTrail(db, KEY, lambda: datetime.now(UTC))
    service = PLLService(db, KEY)
    fnrs = synthetic_fnrs(100)
    for n, sealed in ((99, True), (100, False)):  # two records each
        with db.write() as conn:
            write_patient(service, conn, gp_access(), person(n, fnrs[n - 1], 4), plans(4)[0])
        if sealed:
            assert trail.seal() == 2
    generate(db, KEY, 3, seed=4)
    assert trail.unsealed()[0] == 2  # the load's six are sealed
    assert trail.seal() == 2
    result = trail.verify()
    assert result.ok, result.problems
    assert (result.records, result.unsealed) == (10, 0)


def test_generated_events_reach_the_outbox_in_order(db: Database) -> None:
    generate(db, KEY, 4, seed=5)
    with db.read() as conn:
        events = conn.execute(sa.text("SELECT id, payload FROM outbox ORDER BY id")).all()
        lists = {r[0] for r in conn.execute(sa.text("SELECT id FROM pll"))}
    assert len(events) == 4
    assert {orjson.loads(e.payload)["list"].removeprefix("List/") for e in events} == lists


def test_consumers_see_the_generated_lists(db: Database, tmp_path: Path) -> None:
    """The statistics and the read copy take the imported lists' events as any others."""
    generate(db, KEY, 4, seed=6)
    later = lambda: datetime.now(UTC) + timedelta(minutes=5)  # noqa: E731  past the settling
    assert Statistics(db, later).catch_up() == 4
    with db.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM stats_list")).scalar_one() == 4
    copy_db = Database(f"sqlite:///{tmp_path / 'copy.sqlite3'}")
    try:
        copy = ReadCopy(db, copy_db, later)
        copy.setup()
        while copy.step():
            pass
        assert copy.lag().lists == 4
        assert copy.differences() == []
    finally:
        copy_db.dispose()


def test_missing_runs_of_numbers() -> None:
    assert missing(10, [], 4) == [(1, 4), (5, 8), (9, 10)]
    assert missing(10, ["1-4", "9-10"], 4) == [(5, 8)]
    assert missing(10, ["3-4"], 3) == [(1, 2), (5, 7), (8, 10)]
    assert missing(3, ["1-3"], 2) == []


def _pll(db: Database, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PLL_DATABASE_URL"] = db.url
    env["PLL_DATA_DIR"] = str(tmp_path / "data")
    env["PLL_AUDIT_KEY"] = KEY.secret.hex()
    return subprocess.Popen(
        [PLL, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _done(db: Database, job: str) -> list[str]:
    # a snapshot: on SQLite a plain BEGIN, which never waits for the load's write lock (a
    # read takes it, BEGIN IMMEDIATE, and lost the race to a fast load batch after batch)
    with db.snapshot() as conn:
        return [
            r[0]
            for r in conn.execute(
                sa.text("SELECT item FROM bulk_import WHERE job = :j"), {"j": job}
            )
        ]


@pytest.mark.parametrize("processes", [1, 2])
def test_a_killed_generate_continues_without_duplicates_or_gaps(
    db: Database, tmp_path: Path, processes: int
) -> None:
    """Killed (SIGKILL) after some batches; with two processes, the loading processes die
    with the command, so none commits a batch the next run counts as missing. Each batch
    seals its audit records as it writes them, so a batch killed in any step, its sealing
    too, rolls back whole: the chain the two runs leave verifies,
    leaves the sealer nothing to do, and is the chain the sealer makes of the same records."""
    if processes > 1 and db.is_sqlite:
        pytest.skip("SQLite loads with one process")
    if processes == 1 and not db.is_sqlite:
        # each run first writes the 256 plans through the service, twice here: half a
        # minute of the suite; two processes on PostgreSQL do all one process does and more
        pytest.skip("PostgreSQL is tested with two loading processes")
    # On PostgreSQL the kill comes while a batch waits in its seal step (the test holds the
    # chain's head), so 15 small batches do: each run captures through the service only the
    # plans its batches use, most of the test's time. On SQLite the load is stopped where it
    # is once a batch is seen; it must not have ended by then, so its batches are more and
    # larger.
    patients, batch = (1500, 50) if db.is_sqlite else (150, 10)
    args = (
        *("import", "generate", "--patients", str(patients), "--batch", str(batch)),
        *("--seed", "9"),
        *("--processes", str(processes)),
    )
    first = _pll(db, tmp_path, *args)
    deadline = time.monotonic() + 240
    while not _done(db, generate_job(9)) and time.monotonic() < deadline:
        assert first.poll() is None, first.communicate()
        time.sleep(0.05)
    with _in_the_seal_step(db, first):
        first.send_signal(signal.SIGKILL)
        first.communicate()
    assert first.returncode == -signal.SIGKILL
    time.sleep(1)  # a loading process ends with the command; its open batch rolls back
    partial = len(_done(db, generate_job(9)))
    assert 0 < partial < patients // batch  # stopped in the middle
    again = _pll(db, tmp_path, *args)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert f"{partial * batch:,} were there already" in out
    with db.read() as conn:
        fnrs = [r[0] for r in conn.execute(sa.text("SELECT identifier_value FROM patient"))]
        lists = conn.execute(sa.text("SELECT count(*), count(DISTINCT patient_id) FROM pll")).one()
        events = conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one()
    assert sorted(fnrs) == sorted(synthetic_fnrs(patients))
    assert tuple(lists) == (patients, patients)
    assert events == patients
    if not db.is_sqlite:  # the keys dropped for the load are all back
        with db.read() as conn:
            keys = conn.execute(
                sa.text("SELECT count(*) FROM pg_constraint WHERE conname = 'patient_pkey'")
            ).scalar_one()
        assert keys == 1
        assert _done(db, "deferred") == []
    trail = AuditTrail(db, KEY, lambda: datetime.now(UTC))  # as `pll audit verify`, `seal`
    result = trail.verify()
    assert result.ok, result.problems
    assert (result.records, result.unsealed) == (2 * patients, 0)
    assert trail.seal() == 0
    assert _sealed_again(db, tmp_path) == _chain(db)


@contextmanager
def _in_the_seal_step(db: Database, load: subprocess.Popen[str]) -> Iterator[None]:
    """On PostgreSQL: the block runs while the load's batch waits in its sealing step, its
    other rows written (the test holds the chain's head). SQLite has no such step: the load
    (the command itself there) is stopped where it is (SIGSTOP), so no batch commits after
    the test has looked."""
    if db.is_sqlite:
        assert load.poll() is None, "the load ended before the test could stop it"
        load.send_signal(signal.SIGSTOP)
        yield
        return
    with db.engine.connect() as holder, holder.begin():
        holder.execute(sa.text("SELECT seq FROM audit_chain FOR UPDATE"))
        waiting = sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE '%audit_chain%FOR UPDATE%'"
        )
        deadline = time.monotonic() + 60
        # asked on another connection: a transaction sees one snapshot of the activity
        while not _scalar(db, waiting):
            assert load.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.02)
        yield


def _scalar(db: Database, query: sa.TextClause) -> Any:
    with db.read() as conn:
        return conn.execute(query).scalar_one()


def _chain(db: Database) -> list[tuple[Any, ...]]:
    with db.read() as conn:
        query = sa.select(audit_event.c.id, audit_event.c.chain_seq, audit_event.c.chain_hash)
        return [tuple(r) for r in conn.execute(query.order_by(audit_event.c.id))]


def _sealed_again(db: Database, tmp_path: Path) -> list[tuple[Any, ...]]:
    """The chain the sealer makes of ``db``'s audit records, copied unsealed, with their
    ids, into a database of their own."""
    with db.read() as conn:
        records = [r._asdict() for r in conn.execute(sa.select(audit_event))]
    other = Database(f"sqlite:///{tmp_path / 'resealed.sqlite3'}")
    try:
        other.upgrade()
        with other.write() as conn:
            conn.execute(
                sa.insert(audit_event),
                [{**r, "chain_seq": None, "chain_hash": None} for r in records],
            )
        assert AuditTrail(other, KEY, lambda: datetime.now(UTC)).seal() == len(records)
        return _chain(other)
    finally:
        other.dispose()


# -- lists ----------------------------------------------------------------------------------


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@functools.cache
def _reference() -> str:
    """The reference response as strict JSON: it has a trailing comma, which sends a file
    through the pure-Python JSON5 reader, seconds a file (docs/bulk-import.md)."""
    from pll.fhir.sfm.lenient_json import parse_lenient

    return orjson.dumps(parse_lenient(REFERENCE.read_text(encoding="utf-8"))[0]).decode()


def _variant(fnr: str, ids_of: str | None = None) -> str:
    """The reference response for another patient: their fødselsnummer, and every id the
    sender gave made new (an import keeps the sender's ids, and two lists share none) — or
    the ids of ``ids_of``'s variant."""
    text = _reference().replace(REFERENCE_FNR, fnr)
    salt = ids_of or fnr
    return _UUID.sub(lambda m: str(uuid.uuid5(uuid.NAMESPACE_OID, salt + m[0])), text)


def fixed_clock() -> datetime:
    return AT


def ids_by_file(name: str) -> Callable[[], str]:
    """The ids a file's import gives new things: the same on every run, whichever process
    imports the file (module-level, so a spawned process can be given it)."""
    return counter(zlib.crc32(name.encode()) * 1000)


def _folder(tmp_path: Path, count: int) -> Path:
    folder = tmp_path / "lists"
    folder.mkdir()
    for i, fnr in enumerate(synthetic_fnrs(count)):
        (folder / f"{i}.json").write_text(_variant(fnr), encoding="utf-8")
    return folder


def test_a_folder_has_the_rows_single_imports_write(db: Database, tmp_path: Path) -> None:
    """... and the chain the sealer makes of them: the import seals the trail at its end."""
    folder = _folder(tmp_path, 2)
    report = import_lists(db, KEY, folder, ids_for=ids_by_file, clock=fixed_clock)
    assert (report.imported, report.bad) == (2, [])
    assert report.sealed > 0
    assert AuditTrail(db, KEY, fixed_clock).unsealed()[0] == 0
    bulk = rows(db)
    empty_tables(db)

    service = PLLService(db, KEY, clock=fixed_clock)
    sfm = SfmService(service)
    from pll.fhir.sfm.lenient_json import parse_lenient

    for i, fnr in enumerate(synthetic_fnrs(2)):
        service.ids = ids_by_file(f"{i}.json")
        sfm.import_document(parse_lenient(_variant(fnr))[0])
    assert AuditTrail(db, KEY, fixed_clock).seal() == report.sealed
    written = rows(db)
    for table in written:
        assert bulk[table] == written[table], table


#: where the audit records of files imported side by side stand in the log and the chain
_ORDER = frozenset(
    {("audit_event", "id"), ("audit_event", "chain_seq"), ("audit_event", "chain_hash")}
    | {("audit_chain", "hash")}
)


def test_two_processes_import_the_rows_one_does(db: Database, tmp_path: Path) -> None:
    """`pll import lists --processes 2`: the same rows as one process, but for the order
    of the audit records (which file's come first), and a chain that verifies."""
    if db.is_sqlite:
        pytest.skip("SQLite imports with one process")
    folder = _folder(tmp_path, 4)
    one = import_lists(db, KEY, folder, ids_for=ids_by_file, clock=fixed_clock)
    alone = rows(db, _ORDER)
    empty_tables(db)
    two = import_lists(db, KEY, folder, processes=2, ids_for=ids_by_file, clock=fixed_clock)
    assert (two.imported, two.bad, two.sealed) == (4, [], one.sealed)
    shared = rows(db, _ORDER)
    for table in alone:
        assert shared[table] == alone[table], table
    result = AuditTrail(db, KEY, fixed_clock).verify()
    assert result.ok, result.problems
    assert (result.records, result.unsealed) == (one.sealed, 0)


def test_a_bad_file_is_named_skipped_and_nothing_of_it_written(
    db: Database, tmp_path: Path
) -> None:
    folder = tmp_path / "lists"
    folder.mkdir()
    good, refused = synthetic_fnrs(2)
    (folder / "a-good.json").write_text(_variant(good), encoding="utf-8")
    (folder / "b-broken.json").write_text('{"resourceType":\n "Parameters",\n [', encoding="utf-8")
    # a valid document refused midway, after its patient is registered: its prescriptions
    # have the ids of the good file's, which PLL holds by then
    (folder / "c-refused.json").write_text(_variant(refused, ids_of=good), encoding="utf-8")
    (folder / "d.xml").write_text("<Bundle/>", encoding="utf-8")
    run = _pll(db, tmp_path, "import", "lists", str(folder))
    out, err = run.communicate(timeout=300)
    assert run.returncode == 1, err
    assert "skipped b-broken.json: " in err
    assert "line 3" in err
    assert "skipped c-refused.json: MedicationRequest/" in err
    assert "is already in PLL" in err
    assert "skipped d.xml: " in err
    assert "1 lists imported" in out
    with db.read() as conn:
        found = {r[0] for r in conn.execute(sa.text("SELECT identifier_value FROM patient"))}
    assert found == {good}
    assert _done(db, lists_job(folder)) == ["a-good.json"]
    # run again: only the skipped files are tried, the good one is not imported twice
    again = _pll(db, tmp_path, "import", "lists", str(folder))
    out, err = again.communicate(timeout=300)
    assert again.returncode == 1
    assert "0 lists imported" in out
    assert "1 were imported before" in out
    with db.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM pll")).scalar_one() == 1


def test_a_second_run_of_the_same_import_is_refused(db: Database, tmp_path: Path) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite: one writer at a time; a second run's batch fails on the keys")
    from pll.store.bulk import only_run

    with only_run(db.engine, generate_job(11)):
        run = _pll(db, tmp_path, "import", "generate", "--patients", "5", "--seed", "11")
        _, err = run.communicate(timeout=120)
    assert run.returncode == 1
    assert "another import of generate:seed=11 is running" in err
    with db.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM patient")).scalar_one() == 0


def test_indexes_are_dropped_only_while_the_tables_are_empty(db: Database) -> None:
    first = generate(db, KEY, 2, seed=12)
    more = generate(db, KEY, 4, seed=12)
    assert more.loaded == 2
    assert more.deferred == []  # a database that holds rows keeps its indexes
    if db.is_sqlite:
        assert first.deferred == []
        return
    assert "patient_pkey" in first.deferred
    assert "ix_entry_list_status" in first.deferred
    assert "ix_audit_unsealed" in first.deferred
    with db.read() as conn:
        names = set(conn.execute(sa.text("SELECT indexname FROM pg_indexes")).scalars())
        invalid = conn.execute(
            sa.text("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid")
        ).all()
        # the audit trail's indexes are built on every partition again, not on the
        # partitioned table only (which would leave them invalid, and unused)
        per_month = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'ix_audit_unsealed'::regclass"
            )
        ).scalar_one()
    assert {"patient_pkey", "ix_entry_list_status", "uq_patient_identifier"} <= names
    assert invalid == []
    assert per_month >= 5  # this month's, three ahead, the default partition


def test_recording_sees_inserts_and_names_anything_else(db: Database) -> None:
    from pll.store.bulk import recording
    from pll.store.schema import bulk_import

    with db.write() as conn, recording(conn) as seen:
        conn.execute(
            sa.insert(bulk_import), {"job": "t", "item": "1", "detail": None, "done_at": AT}
        )
        conn.execute(sa.update(bulk_import).values(detail="x"))
    assert [(r.table.name, r.values["item"]) for r in seen.rows] == [("bulk_import", "1")]
    assert len(seen.others) == 1
    assert seen.others[0].startswith("UPDATE")


def test_a_load_that_fails_leaves_no_table_without_its_keys(db: Database) -> None:
    """The keys dropped for a load into empty tables are built again when the load fails
    (here: the database refuses the lists), and nothing half of a batch is left."""
    if db.is_sqlite:
        pytest.skip("SQLite: no keys are dropped for a load")
    with db.write() as conn:
        conn.execute(
            sa.text(
                "CREATE FUNCTION refuse_lists() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'lists refused for the test'; END $$"
            )
        )
        conn.execute(
            sa.text(
                "CREATE TRIGGER refuse_lists BEFORE INSERT ON pll "
                "FOR EACH ROW EXECUTE FUNCTION refuse_lists()"
            )
        )
    try:
        with pytest.raises(Exception, match="lists refused for the test"):
            generate(db, KEY, 5, seed=13)
        with db.read() as conn:
            names = set(conn.execute(sa.text("SELECT indexname FROM pg_indexes")).scalars())
            patients = conn.execute(sa.text("SELECT count(*) FROM patient")).scalar_one()
        assert {"patient_pkey", "uq_patient_identifier", "ix_entry_list_status"} <= names
        assert _done(db, "deferred") == []
        assert patients == 0
    finally:
        with db.write() as conn:
            conn.execute(sa.text("DROP TRIGGER refuse_lists ON pll"))
            conn.execute(sa.text("DROP FUNCTION refuse_lists()"))


def test_a_database_whose_load_was_killed_is_not_served(db: Database, tmp_path: Path) -> None:
    """Killed while the keys were dropped: `pll worker` (and `pll serve`, the same check)
    refuses the database with what to do, until the import has been run to its end."""
    if db.is_sqlite:
        pytest.skip("SQLite: no keys are dropped for a load")
    from pll.store import bulk

    with db.write() as conn:
        bulk.mark_done(
            conn, "deferred", ["1 index ix_test_left"], "CREATE INDEX ix_test_left ON patient (id)"
        )
    try:
        run = _pll(db, tmp_path, "worker")
        _, err = run.communicate(timeout=120)
        assert run.returncode == 1
        assert "run the same import command once more" in err
    finally:
        with db.write() as conn:
            conn.execute(sa.text("DELETE FROM bulk_import WHERE job = 'deferred'"))
