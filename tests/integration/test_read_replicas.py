"""Reads from replicas (issue 21): list reads served by real asynchronous streaming replicas.

A throwaway primary with two asynchronous hot standbys (:mod:`tests.integration.pg_clusters`)
and the real server over HTTP. Stopping replay on a replica (``pg_wal_replay_pause()``)
freezes its copy, so the version a read answers with shows which server answered it: the
replica serves the reads it should, a client that names the version it last wrote
(``X-PLL-Min-Version``, ``If-None-Match``) is never shown an older one, access is decided
on the primary's facts, a replica past ``PLL_READ_MAX_LAG`` or down is skipped (never a
5xx), and the audit records of replica-served reads are on the primary and verify with
``pll audit verify``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import psycopg
import pytest
import sqlalchemy as sa

from pll.api.app import create_app
from pll.auth.audit import AuditKey
from pll.fhir.sfm.document import list_message_id
from pll.services.lists import PLLService
from pll.store.db import Database
from pll.store.replicas import ReplicaSet
from tests.conftest import LiveServer, server_settings, serving
from tests.integration.builders import block_consent, new_patient_with_list, ok, reactions
from tests.integration.pg_clusters import (
    PG_BIN,
    Cluster,
    available,
    multi_host_url,
    pg_clusters,
)
from tests.integration.test_sfm import get_medication

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not available() and os.environ.get("CI") != "true",
        reason=f"PostgreSQL 15's binaries are not in {PG_BIN}",
    ),
]

PLL = str(Path(sys.executable).parent / "pll")
GP_HPR = "9144889"


class Servers(NamedTuple):
    """A primary and its asynchronous standbys, with PLL's database (``pll``)."""

    primary: Cluster
    replicas: tuple[Cluster, Cluster]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Servers]:
    with pg_clusters() as pg:
        primary_cluster = pg.make_primary()
        primary_cluster.create_database("pll")
        replicas = (
            pg.add_standby(primary_cluster, "replica1", sync=False),
            pg.add_standby(primary_cluster, "replica2", sync=False),
        )
        db = Database(primary_cluster.url("pll"))
        db.upgrade()
        db.dispose()
        yield Servers(primary_cluster, replicas)


@pytest.fixture(scope="module")
def primary(cluster: Servers, data_dir: Path) -> Iterator[LiveServer]:
    """The PLL service on the primary (the tests' servers share it)."""
    db = Database(cluster.primary.url("pll"))
    yield LiveServer("", data_dir, db, PLLService(db, AuditKey.load(data_dir)))
    db.dispose()


class Served:
    """A server reading from some of the replicas; ``replicas`` is its replica set."""

    def __init__(self, base: str, app: Any, primary: LiveServer) -> None:
        self.base = base
        self.replicas: ReplicaSet = app.state.reads.replicas
        self.primary = primary

    def client(self, persona: str = "gp", pid: str | None = None) -> httpx.Client:
        live = LiveServer(self.base, self.primary.data_dir, self.primary.db, self.primary.service)
        live.tokens = self.primary.tokens
        return live.client(persona, pid)

    def until(self, what: str, done: Callable[[], bool], timeout: float = 60) -> None:
        """Wait for the replica checker to see ``done`` (it checks several times a second)."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                states = [(r.name, r.serving, r.lag, r.problem) for r in self.replicas.replicas]
                raise AssertionError(f"{what}: not within {timeout} s; replicas: {states}")
            time.sleep(0.02)

    def serving(self, n: int) -> None:
        self.until(
            f"{n} replica(s) serving",
            lambda: sum(r.serving for r in self.replicas.replicas) == n,
        )


@pytest.fixture
def serve(primary: LiveServer) -> Iterator[Callable[..., Served]]:
    """``serve(nodes, max_lag)``: a server on the primary reading from ``nodes``."""
    stack: list[Any] = []

    def start(nodes: list[Cluster], max_lag: float = 60.0) -> Served:
        settings = server_settings(
            primary.data_dir,
            primary.db,
            read_database_urls=tuple(n.url("pll") for n in nodes),
            read_max_lag=max_lag,
        )
        app = create_app(settings, primary.service)
        context = serving(app)
        base = context.__enter__()
        stack.append(context)
        return Served(base, app, primary)

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


@pytest.fixture
def paused(cluster: Servers) -> Iterator[Callable[[Cluster], None]]:
    """``paused(node)`` stops replay on a replica until the test ends."""
    nodes: list[Cluster] = []

    def pause(node: Cluster) -> None:
        node.pause_replay()
        nodes.append(node)

    yield pause
    for node in nodes:
        if node.running:
            node.resume_replay()


def _version(response: httpx.Response) -> int:
    """The list version a read answered with (its ETag; a search set's List's versionId)."""
    assert response.status_code == 200, response.text
    if "ETag" not in response.headers:
        return int(response.json()["entry"][0]["resource"]["meta"]["versionId"])
    return int(response.headers["ETag"].removeprefix('W/"').removesuffix('"'))


def _read(client: httpx.Client, pid: str, **headers: str) -> httpx.Response:
    return client.get(
        "/fhir/List", params={"patient": pid, "_include": "List:item"}, headers=headers
    )


def _confirm(client: httpx.Client, list_id: str, version: int) -> int:
    """Confirm the list (a new version); returns the version written."""
    r = client.post(f"/fhir/List/{list_id}/$confirm", headers={"If-Match": f'W/"{version}"'})
    return int(ok(r)["meta"]["versionId"])


def _list_reads(primary: LiveServer, patient_id: str) -> int:
    with primary.db.read() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM audit_event WHERE patient_id = :p "
                    "AND action = 'read' AND resource_type = 'List' AND outcome = '0'"
                ),
                {"p": patient_id},
            ).scalar_one()
        )


def _metrics(client: httpx.Client) -> str:
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    return r.text


def _pll(primary: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "PLL_DATABASE_URL": primary.db.url,
        "PLL_DATA_DIR": str(primary.data_dir),
        "COLUMNS": "200",
    }
    env.pop("PLL_AUDIT_KEY", None)
    env.pop("PLL_READ_DATABASE_URL", None)
    return subprocess.run(
        [PLL, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_a_paused_replica_serves_its_copy_and_a_client_naming_its_write_gets_the_primary(
    cluster: Servers,
    primary: LiveServer,
    serve: Callable[..., Served],
    paused: Callable[[Cluster], None],
) -> None:
    replica = cluster.replicas[0]
    server = serve([replica])
    with server.client() as gp:
        pid, list_id = new_patient_with_list(gp)
        replica.caught_up()
        server.serving(1)
        paused(replica)
        written = _confirm(gp, list_id, 1)
        assert written == 2
        reads_before = _list_reads(primary, pid)
        served_before = server.replicas.counts.replica

        # the replica's copy: replay stopped before the write, so only it can answer 1
        assert _version(_read(gp, pid)) == 1
        assert _version(gp.get(f"/fhir/List/{list_id}")) == 1
        assert _version(gp.get("/fhir/List", params={"_id": list_id})) == 1
        # read-your-writes: the version the client wrote, by either header
        assert _version(_read(gp, pid, **{"X-PLL-Min-Version": str(written)})) == 2
        assert _version(_read(gp, pid, **{"If-None-Match": f'W/"{written}"'})) == 2
        r = gp.get(f"/fhir/List/{list_id}", headers={"X-PLL-Min-Version": "2"})
        assert _version(r) == 2
        assert r.json()["meta"]["versionId"] == "2"
        # a version the client already had older than the replica's copy: the replica serves
        assert _version(_read(gp, pid, **{"X-PLL-Min-Version": "1"})) == 1

        # a header that is no version is the client's error, and changes nothing
        bad = _read(gp, pid, **{"X-PLL-Min-Version": "latest"})
        assert bad.status_code == 400
        assert "X-PLL-Min-Version must be a list version number" in bad.text
        assert _read(gp, pid, **{"If-None-Match": '"abc"'}).status_code == 400

    assert server.replicas.counts.replica - served_before == 4
    assert server.replicas.counts.behind >= 3
    # every answered read has its record on the primary, sealed like any other
    assert _list_reads(primary, pid) - reads_before == 7
    assert primary.service.trail.seal() > 0
    verified = _pll(primary, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "audit trail intact" in verified.stdout


def test_a_block_set_on_the_primary_holds_while_the_replica_has_not_seen_it(
    cluster: Servers,
    primary: LiveServer,
    serve: Callable[..., Served],
    paused: Callable[[Cluster], None],
) -> None:
    """Access is decided on the primary's facts: the replica's stale copy knows no block."""
    replica = cluster.replicas[0]
    server = serve([replica])
    with server.client() as gp:
        pid, _ = new_patient_with_list(gp)
        fnr = ok(gp.get(f"/fhir/Patient/{pid}"))["identifier"][0]["value"]
        replica.caught_up()
        server.serving(1)
        assert _version(_read(gp, pid)) == 1
        served = server.replicas.counts.replica
        assert served >= 1
        paused(replica)
        with server.client("patient", fnr) as me:
            ok(me.post("/fhir/Consent", json=block_consent(GP_HPR, pid, "Kari Fastlege")), 201)
        refused = _read(gp, pid)
        assert refused.status_code == 403, refused.text
        # the replica was asked, and the primary refused what it found
        assert server.replicas.counts.replica == served + 1


def test_a_replica_past_the_lag_limit_is_skipped_and_serves_again_once_caught_up(
    cluster: Servers, serve: Callable[..., Served]
) -> None:
    replica = cluster.replicas[0]
    name = f"127.0.0.1:{replica.port}/pll"
    server = serve([replica], max_lag=1.0)
    with server.client() as gp:
        pid, list_id = new_patient_with_list(gp)
        replica.caught_up()
        server.serving(1)
        replica.pause_replay()
        try:
            _confirm(gp, list_id, 1)
            server.serving(0)
            assert "behind" in str(server.replicas.replicas[0].problem)
            # no header, yet the primary's version: the lagging replica is out of reads
            assert _version(_read(gp, pid)) == 2
            assert f'pll_read_replica_serving{{replica="{name}"}} 0.0' in _metrics(gp)
        finally:
            replica.resume_replay()
        server.serving(1)
        served = server.replicas.counts.replica
        assert _version(_read(gp, pid)) == 2
        assert server.replicas.counts.replica == served + 1
        scraped = _metrics(gp)
    assert f'pll_read_replica_serving{{replica="{name}"}} 1.0' in scraped
    assert 'pll_replica_reads_total{served="replica"}' in scraped
    assert 'pll_replica_reads_total{served="no_replica"}' in scraped


def test_reads_are_spread_over_the_replicas_serving(
    cluster: Servers,
    serve: Callable[..., Served],
    paused: Callable[[Cluster], None],
) -> None:
    first, second = cluster.replicas
    server = serve([first, second])
    with server.client() as gp:
        pid, list_id = new_patient_with_list(gp)
        first.caught_up()
        server.serving(2)
        paused(first)
        _confirm(gp, list_id, 1)
        second.caught_up()
        # the first replica holds version 1, the second version 2: they take turns
        seen = [_version(_read(gp, pid)) for _ in range(6)]
    assert sorted(seen) == [1, 1, 1, 2, 2, 2]


def test_get_medication_is_the_primarys_with_a_cave_the_replica_has_not_seen(
    cluster: Servers,
    primary: LiveServer,
    serve: Callable[..., Served],
    paused: Callable[[Cluster], None],
) -> None:
    """The SFM document holds reactions (CAVE), which change without a list version: it is
    written on the primary, so a reaction recorded while the replica lags is in it. The read
    kept for a later ``$sendMedication`` records the version shown."""
    replica = cluster.replicas[0]
    server = serve([replica])
    with server.client() as gp:
        pid, list_id = new_patient_with_list(gp)
        fnr = ok(gp.get(f"/fhir/Patient/{pid}"))["identifier"][0]["value"]
        replica.caught_up()
        server.serving(1)
        counts = server.replicas.counts
        served = counts.replica
        paused(replica)
        reactions(gp, pid, "J01CA", 1)  # no new list version
        first = get_medication(gp, fnr)
        assert first.status_code == 200, first.text
        assert list_message_id(list_id, 1) in first.text
        assert "J01CA" in first.text
        _confirm(gp, list_id, 1)
        second = get_medication(gp, fnr)
        assert second.status_code == 200, second.text
        assert counts.replica == served  # neither came from the replica
    assert list_message_id(list_id, 2) in second.text
    with primary.db.read() as conn:
        kept = conn.execute(
            sa.text("SELECT list_version FROM sfm_read WHERE patient_id = :p ORDER BY read_at"),
            {"p": pid},
        ).scalars()
        assert list(kept) == [1, 2]


def test_reads_go_to_the_primary_when_the_replica_is_down(
    cluster: Servers, serve: Callable[..., Served]
) -> None:
    replica = cluster.replicas[1]
    server = serve([replica])
    with server.client() as gp:
        pid, list_id = new_patient_with_list(gp)
        fnr = ok(gp.get(f"/fhir/Patient/{pid}"))["identifier"][0]["value"]
        replica.caught_up()
        server.serving(1)
        assert _version(_read(gp, pid)) == 1
        replica.stop("immediate")
        try:
            # at once, before any check has noticed, and after
            assert _version(_read(gp, pid)) == 1
            assert _version(gp.get(f"/fhir/List/{list_id}")) == 1
            ok(get_medication(gp, fnr))
            server.serving(0)
            assert _confirm(gp, list_id, 1) == 2
            assert _version(_read(gp, pid)) == 2
            ok(get_medication(gp, fnr))
        finally:
            replica.start()
        server.serving(1)


def test_after_a_failover_a_replica_that_replayed_what_the_new_primary_lacks_never_serves() -> None:
    """An asynchronous replica can replay a commit the old primary wrote but the synchronous
    standby never flushed (its acknowledgement was still waiting when the primary died). Once
    the standby is promoted, that replica holds a row the primary lacks, and its lag soon
    reads 0 again: it is kept out of reads by its timeline, while a replica that streams from
    the new primary serves. A role that cannot see the replica's WAL receiver is told why."""
    with pg_clusters() as pg:
        old = pg.make_primary()
        standby = pg.add_standby(old, "standby", sync=True)
        replica = pg.add_standby(old, "replica", sync=False)
        old.query("CREATE TABLE t (n int)")
        old.query("CREATE ROLE plain LOGIN")
        replica.caught_up()
        waiting = psycopg.connect(old.url(), autocommit=True)
        replicas = ReplicaSet(multi_host_url([old, standby], "postgres"), [replica.url()], 60.0)
        try:
            replicas.check()
            assert replicas.replicas[0].serving, replicas.replicas[0].problem

            # the standby stops confirming: the next commit waits, but the replica replays it
            standby.kill()
            threading.Thread(target=_insert_one, args=(waiting,), daemon=True).start()
            deadline = time.monotonic() + 30
            while replica.query("SELECT count(*) FROM t") != [(1,)]:
                assert time.monotonic() < deadline, "the replica never replayed the commit"
                time.sleep(0.05)
            old.kill()
            replicas.check()  # no server is the primary: no replica can be judged
            assert not replicas.replicas[0].serving
            assert replicas.replicas[0].problem == "the primary is unknown"
            standby.start()
            standby.promote()
            assert standby.query("SELECT count(*) FROM t") == [(0,)]
            standby.query("INSERT INTO t SELECT generate_series(1, 20000)")  # its WAL moves on
            follower = pg.add_standby(standby, "follower", sync=False)
            follower.caught_up()

            replicas.check()  # its connection to the old primary is gone: it makes a new one
            diverged = replicas.replicas[0]
            assert not diverged.serving
            assert diverged.problem == "on timeline 1, the primary is on timeline 2"

            after = ReplicaSet(standby.url(), [follower.url(), replica.url()], 60.0)
            try:
                after.check()
                assert [r.serving for r in after.replicas] == [True, False]
                assert after.replicas[1].problem == (
                    "not seen streaming, the primary is on timeline 2"
                )
            finally:
                after.stop()
            hidden = ReplicaSet(
                standby.url(), [follower.url().replace("postgres@", "plain@")], 60.0
            )
            try:
                hidden.check()
                assert not hidden.replicas[0].serving
                assert "grant pg_monitor" in str(hidden.replicas[0].problem)
            finally:
                hidden.stop()
        finally:
            replicas.stop()
            waiting.close()


def _insert_one(conn: psycopg.Connection[Any]) -> None:
    """A commit that waits for a standby that never confirms, until its server dies."""
    with contextlib.suppress(psycopg.Error):
        conn.execute("INSERT INTO t VALUES (1)")
