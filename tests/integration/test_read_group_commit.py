"""Group commit of the reads' audit rows (issue 20; DESIGN §3 rule 5, §6).

Over real HTTP on both databases (SQLite keeps its own path) and with group commit on and
off: every read answered 200 has its audit row committed before the answer, many reads in
parallel. On PostgreSQL: the batcher writes concurrent rows in one INSERT, the rows are the
same records with the same MACs as the one-statement read's (the chain verifies), and a
batch that fails fails every read in it with a 503 and serves no document.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from pll.api.app import create_app
from pll.auth import audit
from pll.auth.access import Access, Basis
from pll.auth.tokens import PERSONAS
from pll.domain.model import Author, Role
from pll.services.reads import ListReads
from pll.store.audit_batch import (
    AuditBatcher,
    AuditNotWritten,
    AuditRow,
    BatchCounts,
    GroupCommit,
)
from pll.store.statement_pool import StatementPool
from tests.conftest import LiveServer, server_settings, serving
from tests.integration.builders import new_fnr, ok, patient

BASIS = "HPBEHANDLINGSRELASJON"
MODES = {"group-commit": GroupCommit(), "one-statement": None}


def _patients(server: LiveServer, n: int) -> list[str]:
    """``n`` patients, each with a PLL (made through the API)."""
    pids = []
    with server.client() as gp:
        for _ in range(n):
            pid = ok(gp.post("/fhir/Patient", json=patient(new_fnr())), 201)["id"]
            ok(
                gp.post(
                    "/fhir/List",
                    json={
                        "resourceType": "List",
                        "status": "current",
                        "mode": "working",
                        "subject": {"reference": f"Patient/{pid}"},
                    },
                ),
                201,
            )
            pids.append(pid)
    return pids


def _read_rows(server: LiveServer, pid: str) -> int:
    """Committed audit records of a List read of ``pid`` (seen from another connection)."""
    with server.db.read() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM audit_event WHERE patient_id = :p "
                    "AND action = 'read' AND resource_type = 'List'"
                ),
                {"p": pid},
            ).scalar_one()
        )


@contextmanager
def _app(server: LiveServer, group_commit: GroupCommit | None) -> Iterator[tuple[str, Any]]:
    settings = server_settings(server.data_dir, server.db, group_commit=group_commit)
    app = create_app(settings, server.service)
    with serving(app) as base:
        yield base, app


def _headers(server: LiveServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token('gp')}", "X-PLL-Access-Basis": BASIS}


@pytest.mark.parametrize("mode", MODES)
def test_every_answered_read_has_its_row_committed_before_the_answer(
    server: LiveServer, mode: str
) -> None:
    """16 clients read in parallel, each its own patient; the moment a 200 arrives, another
    connection already sees that read's record (one more than before the request)."""
    pids = _patients(server, 16)
    reads = 6
    with _app(server, MODES[mode]) as (base, app):

        def client(pid: str) -> list[tuple[int, int]]:
            seen = []
            with httpx.Client(base_url=base, headers=_headers(server), timeout=30) as c:
                for _ in range(reads):
                    r = c.get("/fhir/List", params={"patient": pid, "_include": "List:item"})
                    seen.append((r.status_code, _read_rows(server, pid)))
            return seen

        with ThreadPoolExecutor(len(pids)) as pool:
            results = list(pool.map(client, pids))
        counts = app.state.reads.fast.batch_counts if app.state.reads.fast else None
    for seen in results:
        assert [status for status, _ in seen] == [200] * reads
        assert [rows for _, rows in seen] == list(range(1, reads + 1))
    if server.db.is_sqlite or MODES[mode] is None:
        assert counts is None
    else:
        # a read alone in the process runs as the one statement; the others are batched
        assert counts.rows + counts.alone == 16 * reads
        assert counts.failed == 0
    # the records are whole: their MACs verify, and they seal into the chain
    server.seal()
    verified = server.service.trail.verify()
    assert verified.ok, verified.problems
    assert verified.unsealed == 0


@contextmanager
def _insert_fails_for(server: LiveServer, pid: str) -> Iterator[None]:
    """Make PostgreSQL refuse any audit record about ``pid`` (a database failure at the
    audit INSERT, after the document was read)."""
    name = f"fail_{uuid.uuid4().hex[:8]}"
    with server.db.write() as conn:
        conn.execute(
            sa.text(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.patient_id = '{pid}' THEN RAISE EXCEPTION 'disk full'; END IF; "
                "RETURN NEW; END $$"
            )
        )
        conn.execute(
            sa.text(
                f"CREATE TRIGGER {name} BEFORE INSERT ON audit_event "
                f"FOR EACH ROW EXECUTE FUNCTION {name}()"
            )
        )
    try:
        yield
    finally:
        with server.db.write() as conn:
            conn.execute(sa.text(f"DROP TRIGGER {name} ON audit_event"))
            conn.execute(sa.text(f"DROP FUNCTION {name}()"))


@pytest.mark.parametrize("mode", MODES)
def test_a_read_whose_record_fails_is_503_and_serves_nothing(server: LiveServer, mode: str) -> None:
    if server.db.is_sqlite:
        pytest.skip("SQLite reads and logs in one transaction of the service (unchanged)")
    victim, other = _patients(server, 2)
    with (
        _app(server, MODES[mode]) as (base, _),
        httpx.Client(base_url=base, headers=_headers(server), timeout=30) as c,
        _insert_fails_for(server, victim),
    ):
        r = c.get("/fhir/List", params={"patient": victim, "_include": "List:item"})
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        body = r.json()
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["code"] == "transient"
        assert "not answered" in body["issue"][0]["diagnostics"]
        assert victim not in r.text  # no document, not even its id
        # the other patient's read is answered, with its record
        assert c.get("/fhir/List", params={"patient": other}).status_code == 200
    assert _read_rows(server, victim) == 0
    assert _read_rows(server, other) == 1


# -- the batcher itself, on PostgreSQL ------------------------------------------------------


def _row(key: audit.AuditKey, pid: str, flag: str | None = None) -> AuditRow:
    """A read's record as the reader makes it, MAC included."""
    now = datetime.now(UTC)
    actor, list_id = '{"hpr":"9144889"}', str(uuid.uuid4())
    mac = key.mac(audit.canonical(now, actor, "read", "List", BASIS, "0", list_id, pid, flag))
    naive = now.replace(tzinfo=None)
    return AuditRow(naive, actor, "read", "List", list_id, pid, BASIS, "0", flag, mac)


def _dsn(server: LiveServer) -> str:
    return server.db.libpq_url()


def test_concurrent_rows_go_in_one_insert_and_a_failed_batch_fails_every_read_in_it(
    server: LiveServer,
) -> None:
    if server.db.is_sqlite:
        pytest.skip("the batcher is PostgreSQL's")
    victim, other = _patients(server, 2)
    key = server.service.trail.key

    async def run() -> tuple[list[Any], list[Any], list[Any], Any, Any]:
        pool = StatementPool(_dsn(server), 4)
        try:
            batcher = AuditBatcher(pool, GroupCommit(max_rows=8, max_wait=0.001))
            # 20 rows of one turn of the loop: batches of at most 8
            first = await asyncio.gather(*(batcher.write(_row(key, other)) for _ in range(20)))
            counts = dataclasses.replace(batcher.counts)
            with _insert_fails_for(server, victim):
                # one bad row in a batch: every read in that batch fails, none is written
                mixed = await asyncio.gather(
                    batcher.write(_row(key, other)),
                    batcher.write(_row(key, victim)),
                    batcher.write(_row(key, other, "emergency-override-of-block")),
                    return_exceptions=True,
                )
            # and the next batch is written again
            after = await asyncio.gather(*(batcher.write(_row(key, other)) for _ in range(3)))
            await batcher.close()
            return first, mixed, after, counts, batcher.counts
        finally:
            await pool.close()

    first, mixed, after, counts, final = asyncio.run(run())
    assert first == [None] * 20
    assert (counts.rows, counts.batches) == (20, 3)  # 8 + 8 + 4
    assert [type(r) for r in mixed] == [AuditNotWritten] * 3
    assert after == [None] * 3
    assert (final.rows, final.failed) == (23, 1)
    assert _read_rows(server, other) == 23
    assert _read_rows(server, victim) == 0
    server.seal()
    verified = server.service.trail.verify()
    assert verified.ok, verified.problems


def _gp() -> Access:
    p = PERSONAS["gp"]
    author = Author(name=p.name, role=Role.DOCTOR, hpr=p.hpr, org_id=p.org_id, org_name=p.org_name)
    return Access(author, Basis.TREATMENT, "pll-dev-client")


def test_a_lone_read_is_one_statement_and_concurrent_reads_are_batched(
    server: LiveServer,
) -> None:
    """The first of ten reads started together finds no other in flight and runs as the one
    statement; the nine others are looked up and their records committed in batches, each
    committed before its read returns. The answers are the same either way."""
    if server.db.is_sqlite:
        pytest.skip("SQLite keeps the service's path")
    (pid,) = _patients(server, 1)
    reads = ListReads(server.service, GroupCommit())

    async def run() -> tuple[list[list[Any]], BatchCounts | None]:
        try:
            stored = await asyncio.gather(
                *(reads.current(_gp(), patient_id=pid, document=True) for _ in range(10))
            )
            counts = reads.fast.batch_counts if reads.fast else None
            return [[s.body, s.version, s.updated, s.patient_id] for s in stored if s], counts
        finally:
            await reads.close()

    answers, counts = asyncio.run(run())
    assert counts is not None
    # (how many batches depends on when the lookups come back: see the batcher's own test)
    assert (counts.alone, counts.rows, counts.failed) == (1, 9, 0)
    assert len(answers) == 10
    assert all(a == answers[0] for a in answers)
    assert _read_rows(server, pid) == 10
    with server.db.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT actor, action, resource_type, resource_id, basis, outcome, flag "
                "FROM audit_event WHERE patient_id = :p AND action = 'read'"
            ),
            {"p": pid},
        ).all()
    assert len(set(rows)) == 1  # the one statement's record and the batch's say the same
    server.seal()
    assert server.service.trail.verify().ok


def test_group_commit_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from pll.config import group_commit_from_env

    monkeypatch.delenv("PLL_AUDIT_GROUP_COMMIT", raising=False)
    assert group_commit_from_env() is None  # off unless asked for (bench/README.md)
    monkeypatch.setenv("PLL_AUDIT_GROUP_COMMIT", "1")
    assert group_commit_from_env() == GroupCommit(max_rows=64, max_wait=0.001)
    monkeypatch.setenv("PLL_AUDIT_BATCH_ROWS", "16")
    monkeypatch.setenv("PLL_AUDIT_BATCH_WAIT_MS", "0.5")
    assert group_commit_from_env() == GroupCommit(max_rows=16, max_wait=0.0005)
    monkeypatch.setenv("PLL_AUDIT_GROUP_COMMIT", "0")
    assert group_commit_from_env() is None
    monkeypatch.setenv("PLL_AUDIT_GROUP_COMMIT", "1")
    monkeypatch.setenv("PLL_AUDIT_BATCH_ROWS", "0")
    with pytest.raises(ValueError, match="PLL_AUDIT_BATCH_ROWS"):
        group_commit_from_env()
