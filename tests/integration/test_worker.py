"""``pll worker`` and ``PLL_BACKGROUND`` (issue 20), with real processes on real databases: the
sealer, the statistics consumer and the dispatcher run out of the request workers on
PostgreSQL, in one child of ``pll serve`` that dies with it; as before inside ``pll serve`` on
SQLite; several workers at once count each event once and keep the chain whole; a worker
told to stop finishes and exits 0."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pll.auth.tokens import issue
from pll.services.subscriptions import SECRET_EXTENSION
from pll.stats import indicators as ind
from pll.store.db import Database
from pll.store.schema import audit_event, consumer, outbox, stats_count
from tests.conftest import _drop_postgres_database, _postgres_database, serving
from tests.integration.builders import new_list, ok, patient
from tests.integration.processes import (
    PLL,
    Served,
    alive,
    children,
    clean_env,
    pll_serve,
    wait_for,
)

FAST = {"PLL_SEAL_INTERVAL": "0.3", "PLL_STATS_INTERVAL": "0.3"}


def workers_of(pid: int) -> list[int]:
    return [child for child, cmd in children(pid) if " -m pll worker" in cmd]


def gp(served: Served) -> httpx.Client:
    headers = {
        "Authorization": f"Bearer {issue(served.data, 'gp')}",
        "Content-Type": "application/fhir+json",
        "X-PLL-Access-Basis": "HPBEHANDLINGSRELASJON",
    }
    return httpx.Client(base_url=served.base, headers=headers, timeout=30)


def make_lists(client: httpx.Client, n: int) -> list[str]:
    """``n`` patients with a list, each list read once (an audit record to seal)."""
    pids = []
    for _ in range(n):
        pid = ok(client.post("/fhir/Patient", json=patient()), 201)["id"]
        lst = new_list(client, pid)
        ok(client.get(f"/fhir/List/{lst['id']}"))
        pids.append(pid)
    return pids


def backlog(url: str) -> tuple[int, int, int]:
    """(events not counted by the statistics, audit records not sealed, lists counted)."""
    db = Database(url)
    try:
        with db.read() as conn:
            head = conn.execute(sa.select(sa.func.coalesce(sa.func.max(outbox.c.id), 0)))
            newest = int(head.scalar_one())
            place = conn.execute(
                sa.select(consumer.c.position).where(consumer.c.name == "statistics")
            ).scalar()
            unsealed = conn.execute(
                sa.select(sa.func.count()).where(audit_event.c.chain_seq.is_(None))
            ).scalar_one()
            lists = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(stats_count.c.value), 0)).where(
                    stats_count.c.measure == ind.NEW_LISTS, stats_count.c.grain == "week"
                )
            ).scalar_one()
    finally:
        db.dispose()
    return newest - int(place or 0), int(unsealed), int(lists)


def test_on_postgresql_one_worker_beside_the_request_workers_counts_and_seals(
    tmp_path: Path,
) -> None:
    with pll_serve(tmp_path, "postgresql", workers=2, **FAST) as served:
        wait_for(lambda: len(workers_of(served.pid)) == 1, 20, "a worker child")
        (child,) = workers_of(served.pid)
        # the request workers run none of it: with the child held, nothing is sealed or
        # counted however long we wait
        os.kill(child, signal.SIGSTOP)
        try:
            with gp(served) as client:
                make_lists(client, 3)
            time.sleep(2)
            behind, unsealed, _ = backlog(served.url)
            assert behind >= 3
            assert unsealed >= 6
        finally:
            os.kill(child, signal.SIGCONT)
        wait_for(lambda: backlog(served.url)[:2] == (0, 0), 20, "counted and sealed")
        assert backlog(served.url)[2] == 3
        # one child, not one per request worker
        assert workers_of(served.pid) == [child]
        # /metrics shows the statistics consumer's lag and the sealer's backlog, both nil
        metrics = httpx.get(f"{served.base}/metrics").text
        assert 'pll_outbox_lag_events{consumer="statistics"} 0.0' in metrics
        assert "pll_audit_unsealed_seconds 0.0" in metrics
    assert not alive(child), "pll serve stopped, its worker with it"


def test_killing_pll_serve_takes_its_workers_with_it(tmp_path: Path) -> None:
    """The pll worker and the request workers (pll.api.serve_workers) alike."""
    with pll_serve(tmp_path, "postgresql", workers=2) as served:
        wait_for(lambda: len(workers_of(served.pid)) == 1, 20, "a worker child")
        everyone = [pid for pid, _ in children(served.pid)]
        assert len(everyone) == 3
        os.kill(served.pid, signal.SIGKILL)
        wait_for(lambda: not any(alive(pid) for pid in everyone), 15, "the orphans to stop")


def test_a_worker_that_dies_is_started_again(tmp_path: Path) -> None:
    with pll_serve(tmp_path, "postgresql", workers=1, **FAST) as served:
        wait_for(lambda: len(workers_of(served.pid)) == 1, 20, "a worker child")
        (first,) = workers_of(served.pid)
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: workers_of(served.pid) not in ([], [first]), 20, "another worker")
        with gp(served) as client:
            make_lists(client, 1)
        wait_for(lambda: backlog(served.url)[:2] == (0, 0), 20, "counted and sealed")


def test_on_sqlite_pll_serve_does_the_work_itself_as_before(tmp_path: Path) -> None:
    with pll_serve(tmp_path, "sqlite", workers=1, **FAST) as served:
        with gp(served) as client:
            make_lists(client, 2)
        wait_for(lambda: backlog(served.url)[:2] == (0, 0), 20, "counted and sealed")
        assert backlog(served.url)[2] == 2
        assert workers_of(served.pid) == []


def test_with_external_no_worker_runs_and_metrics_say_so(tmp_path: Path) -> None:
    with pll_serve(tmp_path, "postgresql", workers=1, PLL_BACKGROUND="external", **FAST) as s:
        with gp(s) as client:
            make_lists(client, 2)
        time.sleep(1.5)
        assert workers_of(s.pid) == []
        behind, unsealed, _ = backlog(s.url)
        assert behind >= 2
        assert unsealed >= 4
        metrics = httpx.get(f"{s.base}/metrics").text
        lag = next(
            line for line in metrics.splitlines() if line.startswith("pll_audit_unsealed_seconds")
        )
        assert float(lag.split()[1]) >= 1.0, lag
        assert 'pll_outbox_lag_events{consumer="statistics"} 0.0' not in metrics
        status = subprocess.run(
            [PLL, "events", "status"],
            check=True,
            env=clean_env(s.data, PLL_DATABASE_URL=s.url, PLL_BACKGROUND="external"),
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        assert "audit records not yet sealed: 0," not in status, status
        assert "audit records not yet sealed: " in status, status
        assert "PLL_BACKGROUND=external" in status, status
        assert "statistics" in status, status


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["worker"]])
def test_an_unknown_background_mode_is_refused_clearly(tmp_path: Path, command: list[str]) -> None:
    env = clean_env(tmp_path, PLL_DEV_AUTH="1", PLL_BACKGROUND="threads")
    done = subprocess.run(
        [PLL, *command], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "PLL_BACKGROUND must be inline, process or external, not 'threads'" in done.stderr
    assert not (tmp_path / "pll.sqlite3").exists()  # refused before anything was made


@contextmanager
def postgres() -> Iterator[str]:
    name = f"pll_worker_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = _postgres_database(name)
    try:
        yield url
    finally:
        _drop_postgres_database(name)


#: each running worker's first line ("pll worker <pid>: <what it runs>"), by its pid
started: dict[int, str] = {}


@contextmanager
def pll_workers(data: Path, url: str, n: int, **env: str) -> Iterator[list[subprocess.Popen[str]]]:
    """``n`` ``pll worker`` processes on ``url``, each running (it has said what it runs: the
    line is in ``started``) when the block begins; stopped with SIGTERM at the end. Without
    the wait a test could stop a worker that had not yet started: on a loaded machine its
    start takes seconds, and it ends by SIGTERM's default action (found under -n 3)."""
    environment = clean_env(data, PLL_DATABASE_URL=url, **FAST) | env
    procs = [
        subprocess.Popen(
            [PLL, "worker"],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(n)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 120)
            assert ready, f"pll worker {proc.pid} said nothing in 120 s"
            line = proc.stdout.readline()  # its first line, or "" if it ended
            assert line.startswith("pll worker "), line + proc.stdout.read()
            started[proc.pid] = line
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_two_workers_at_once_count_each_event_once_deliver_each_and_keep_the_chain(
    tmp_path: Path,
) -> None:
    got: dict[str, set[str]] = {}
    lock = threading.Lock()

    async def hook(request: Request) -> Response:
        bundle = orjson.loads(await request.body())
        with lock:
            got.setdefault(request.path_params["pid"], set()).add(bundle["entry"][1]["fullUrl"])
        return Response(status_code=200)

    receiver = Starlette(routes=[Route("/hook/{pid}", hook, methods=["POST"])])
    with (
        serving(receiver) as hooks,
        pll_serve(tmp_path, "postgresql", workers=1, PLL_BACKGROUND="external") as served,
        pll_workers(served.data, served.url, 2) as workers,
        gp(served) as client,
    ):
        pids = []
        for _ in range(12):
            pid = ok(client.post("/fhir/Patient", json=patient()), 201)["id"]
            subscription = {
                "resourceType": "Subscription",
                "status": "requested",
                "reason": "two workers",
                "criteria": f"List?patient={pid}",
                "channel": {"type": "rest-hook", "endpoint": f"{hooks}/hook/{pid}"},
                "extension": [{"url": SECRET_EXTENSION, "valueString": "s" * 40}],
            }
            ok(client.post("/fhir/Subscription", json=subscription), 201)
            pids.append(pid)
        time.sleep(1.5)  # the dispatchers pick up the new subscriptions
        for pid in pids:  # while both workers run
            lst = new_list(client, pid)
            ok(client.get(f"/fhir/List/{lst['id']}"))
        wait_for(lambda: backlog(served.url)[:2] == (0, 0), 30, "counted and sealed")
        assert backlog(served.url)[2] == 12  # each list counted once, not once per worker
        wait_for(lambda: all(got.get(pid) for pid in pids), 30, "each list delivered")
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        outputs = [proc.communicate(timeout=30)[0] for proc in workers]
        assert [proc.returncode for proc in workers] == [0, 0], outputs
        assert all("stopped" in out for out in outputs), outputs
        verify = subprocess.run(
            [PLL, "audit", "verify"],
            check=False,
            env=clean_env(served.data, PLL_DATABASE_URL=served.url),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "audit trail intact" in verify.stdout


def test_sigterm_stops_a_worker_cleanly(tmp_path: Path) -> None:
    with postgres() as url, pll_workers(tmp_path, url, 1) as (proc,):
        assert "sealer, statistics, dispatcher" in started[proc.pid], started
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "stopped" in out
