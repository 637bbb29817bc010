"""Failover: the primary PostgreSQL dies under writes and reads, its synchronous standby is
promoted, and PLL carries on without losing or doubling an acknowledged change (issue 21).

Run as an operator runs it (docs/operations.md, "Failover"): two clusters of the test's own
(:mod:`tests.integration.pg_clusters`), ``pll serve`` and ``pll worker`` as processes of
their own on the multi-host URL ``postgresql://primary,standby/pll?target_session_attrs=
read-write``, writers changing entries with ``If-Match`` and readers reading lists. The
primary's postmaster is SIGKILLed (with its processes: the machine is gone), the standby is
promoted with ``pg_ctl promote``, and neither PLL process is restarted.

A writer repeats a change that got 503 or no answer with the same ``If-Match``; a 412 then
means its earlier try was made, which it confirms by reading the entry. Afterwards, on the
new primary: every change acknowledged before the kill is there, with its audit record and
its event; no change was made twice (each entry's history has each change once, versions
without gaps); the subscription's dispatcher went on from its place and delivered every
acknowledged version; and ``pll audit verify`` finds the trail intact.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pll.auth.tokens import issue
from pll.services.subscriptions import SECRET_EXTENSION
from tests.conftest import serving
from tests.integration.builders import patient, statement
from tests.integration.pg_clusters import (
    Cluster,
    available,
    multi_host_url,
    pg_clusters,
)
from tests.integration.processes import PLL, clean_env, free_port

pytestmark = pytest.mark.slow

#: Two entries on each of two patients' lists, one writer each: writers of one list move
#: its version between each other's changes, as clinicians do.
PATIENTS = 2
WRITERS = 4
#: Changes each writer has acknowledged before the kill, and after it.
BEFORE = 4
AFTER = 3
READERS = 2
#: How long the test waits for anything before it fails instead of hanging (seconds).
PATIENCE = 90.0


@dataclass
class Ack:
    entry: str
    marker: str
    entry_version: int
    list_version: int
    #: the request that was acknowledged was sent after the primary was killed
    after_kill: bool
    at: float


@dataclass
class Run:
    """What the writers and readers saw, and when the primary was killed."""

    base: str
    headers: dict[str, str]
    stop: threading.Event = field(default_factory=threading.Event)
    killed_at: float | None = None
    acks: list[Ack] = field(default_factory=list)
    #: changes that were made but whose answer was lost (found by reading after a 412)
    made_unanswered: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    #: what a writer or reader met that it should never meet (it stops there)
    failures: list[str] = field(default_factory=list)
    reads: list[tuple[int, bool]] = field(default_factory=list)  # (status, after the kill)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acknowledged(self, entry: str, *, after_kill: bool) -> int:
        with self.lock:
            return sum(1 for a in self.acks if a.entry == entry and a.after_kill == after_kill)


def _wait_for(done: Any, what: str, run: Run | None = None, seconds: float = PATIENCE) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if run is not None and run.failures:
            raise AssertionError(f"while waiting for {what}: {run.failures}")
        if done():
            return
        time.sleep(0.05)
    raise AssertionError(f"not done in {seconds:.0f} s: {what}")


@pytest.fixture
def clusters() -> Iterator[tuple[Cluster, Cluster]]:
    if not available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL 15's programs are required in CI (initdb, pg_basebackup)")
        pytest.skip("PostgreSQL 15's programs are not installed")
    with pg_clusters() as pg:
        primary = pg.make_primary()
        standby = pg.add_standby(primary, sync=True)
        primary.create_database("pll")
        yield primary, standby


class Processes:
    """``pll serve`` and ``pll worker``, each with its output in a file of its own."""

    def __init__(self, data: Path, env: dict[str, str]) -> None:
        self.data, self.env = data, env
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        log = self.data / f"{args[0]}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen([PLL, *args], env=self.env, stdout=out, stderr=out)
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(
            f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.data.glob("*.log"))
        )

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_a_failover_loses_and_doubles_no_acknowledged_change(
    clusters: tuple[Cluster, Cluster], tmp_path: Path, record_property: Any
) -> None:
    primary, standby = clusters
    url = multi_host_url([primary, standby], "pll")
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env(
        data,
        PLL_DATABASE_URL=url,
        PLL_DEV_AUTH="1",
        PLL_PUBLIC_URL=base,
        PLL_BACKGROUND="external",  # the worker below is the one an operator runs
        PLL_SEAL_INTERVAL="1",
        PLL_STATS_INTERVAL="1",
    )
    deliveries: list[tuple[str, str]] = []  # (event id, List/<id>/_history/<version>)

    async def hook(request: Request) -> Response:
        bundle = orjson.loads(await request.body())
        focus = bundle["entry"][1]["fullUrl"].split("/fhir/", 1)[1]
        deliveries.append((bundle["id"], focus))
        return Response(status_code=200)

    procs = Processes(data, env)
    receiver = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    with serving(receiver) as hook_base:
        try:
            server = procs.spawn("serve", "--port", str(port), "--workers", "1")
            _wait_for(lambda: _healthy(base, server, procs), "pll serve answers")
            procs.spawn("worker")
            headers = {
                "Authorization": f"Bearer {issue(data, 'gp')}",
                "X-PLL-Access-Basis": "HPBEHANDLINGSRELASJON",
            }
            lists, entries = _setup(base, headers, f"{hook_base}/hook")
            run = Run(base, headers)
            threads = [
                threading.Thread(target=_write, args=(run, entry, pid), name=f"writer-{i}")
                for i, (entry, pid) in enumerate(entries.items())
            ] + [
                threading.Thread(target=_read, args=(run, lists), name=f"reader-{i}")
                for i in range(READERS)
            ]
            for thread in threads:
                thread.start()
            try:
                _wait_for(
                    lambda: all(run.acknowledged(e, after_kill=False) >= BEFORE for e in entries),
                    f"{BEFORE} changes by each writer before the kill",
                    run,
                )
                with run.lock:
                    before = list(run.acks)
                    run.killed_at = time.monotonic()
                primary.kill()
                standby.promote()
                promoted = time.monotonic() - run.killed_at
                _wait_for(
                    lambda: all(run.acknowledged(e, after_kill=True) >= AFTER for e in entries),
                    f"{AFTER} changes by each writer after the failover",
                    run,
                )
            finally:
                run.stop.set()
                for thread in threads:
                    thread.join(timeout=PATIENCE)
            resumed = min(a.at for a in run.acks if a.after_kill) - run.killed_at
            record_property("promoted_after_s", round(promoted, 2))
            record_property("first_write_after_s", round(resumed, 2))

            # the dispatcher carried on from its place: every acknowledged version delivered
            acked_versions = {(lists[entries[a.entry]], a.list_version) for a in run.acks}
            _wait_for(
                lambda: acked_versions <= {_version(focus) for _, focus in list(deliveries)},
                "the subscription has every acknowledged change",
            )
            # and every consumer's place reaches the end of the outbox
            _wait_for(lambda: _consumers_at_head(standby), "every consumer at the outbox head")

            _check_entries(run, before)
            _check_store(standby, lists, acked_versions)
            _check_deliveries(deliveries)
            assert run.failures == []
            assert all(status in (200, 503) for status, _ in run.reads), run.reads
            assert any(status == 200 for status, after in run.reads if after)
            verify = subprocess.run(
                [PLL, "audit", "verify"], env=env, capture_output=True, check=False, timeout=120
            )
            assert verify.returncode == 0, verify.stdout + verify.stderr
            assert b"audit trail intact" in verify.stdout
        except BaseException:
            print(procs.logs())  # noqa: T201 - shown with the failure
            raise
        finally:
            procs.stop()


def _healthy(base: str, server: subprocess.Popen[bytes], procs: Processes) -> bool:
    assert server.poll() is None, procs.logs()
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _setup(base: str, headers: dict[str, str], hook: str) -> tuple[dict[str, str], dict[str, str]]:
    """The patients' lists (patient -> list id), each with a subscription to ``hook``, and
    the writers' entries (entry id -> patient)."""
    lists: dict[str, str] = {}
    entries: dict[str, str] = {}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for _ in range(PATIENTS):
            pid = client.post("/fhir/Patient", json=patient()).json()["id"]
            made = client.post(
                "/fhir/List",
                json={
                    "resourceType": "List",
                    "status": "current",
                    "mode": "working",
                    "subject": {"reference": f"Patient/{pid}"},
                },
            )
            made.raise_for_status()
            lists[pid] = made.json()["id"]
            client.post(
                "/fhir/Subscription",
                json={
                    "resourceType": "Subscription",
                    "status": "requested",
                    "reason": "failover test",
                    "criteria": f"List?patient={pid}",
                    "channel": {"type": "rest-hook", "endpoint": hook},
                    "extension": [{"url": SECRET_EXTENSION, "valueString": "s" * 40}],
                },
            ).raise_for_status()
        for i in range(WRITERS):
            pid = list(lists)[i % PATIENTS]
            body = statement(f"Patient/{pid}", f"Legemiddel {i}", "N02BE01")
            made = client.post("/fhir/MedicationStatement", json=body)
            made.raise_for_status()
            entries[made.json()["id"]] = pid
    return lists, entries


def _write(run: Run, entry: str, pid: str) -> None:
    """Change ``entry`` again and again, each change marked; a change that got 503 or no
    answer is sent again with the same If-Match until it is answered."""
    with httpx.Client(base_url=run.base, headers=run.headers, timeout=10) as client:
        current = client.get(f"/fhir/MedicationStatement/{entry}").json()
        version = int(current["meta"]["versionId"])
        n = 0
        while not run.stop.is_set():
            n += 1
            marker = f"{entry[:8]}-{n}"
            body = {k: v for k, v in current.items() if k != "meta"}
            body["note"] = [{"text": marker}]
            while not run.stop.is_set():
                sent_after_kill = run.killed_at is not None
                try:
                    answer = client.put(
                        f"/fhir/MedicationStatement/{entry}",
                        json=body,
                        headers={"If-Match": f'W/"{version}"'},
                    )
                except httpx.HTTPError:
                    time.sleep(0.05)
                    continue  # no answer: it may or may not have been made; send it again
                with run.lock:
                    run.statuses.append(answer.status_code)
                if answer.status_code == 503:
                    time.sleep(0.05)
                    continue
                if answer.status_code == 412:
                    # the version moved: by this writer's own earlier try, whose answer was
                    # lost (nobody else changes this entry) - the entry must hold the change
                    found = _read_entry(client, entry, run)
                    if found is None:
                        continue
                    if found.get("note") != [{"text": marker}]:
                        run.failures.append(f"412 for {marker}, not made: {found}")
                        return
                    with run.lock:
                        run.made_unanswered.append(marker)
                    current, version = found, int(found["meta"]["versionId"])
                    break
                if answer.status_code != 200:
                    run.failures.append(f"{answer.status_code} for {marker}: {answer.text}")
                    return
                current = answer.json()
                version = int(current["meta"]["versionId"])
                with run.lock:
                    run.acks.append(
                        Ack(
                            entry,
                            marker,
                            version,
                            int(answer.headers["X-PLL-List-Version"]),
                            sent_after_kill,
                            time.monotonic(),
                        )
                    )
                break


def _read_entry(client: httpx.Client, entry: str, run: Run) -> dict[str, Any] | None:
    try:
        answer = client.get(f"/fhir/MedicationStatement/{entry}")
    except httpx.HTTPError:
        return None
    with run.lock:
        run.statuses.append(answer.status_code)
    if answer.status_code != 200:
        return None
    found: dict[str, Any] = answer.json()
    return found


def _read(run: Run, lists: dict[str, str]) -> None:
    """Read the lists, as health workers do, throughout."""
    with httpx.Client(base_url=run.base, headers=run.headers, timeout=10) as client:
        while not run.stop.is_set():
            for list_id in lists.values():
                after_kill = run.killed_at is not None
                try:
                    status = client.get(f"/fhir/List/{list_id}").status_code
                except httpx.HTTPError:
                    status = 0
                with run.lock:
                    run.reads.append((status, after_kill))
            time.sleep(0.02)


def _version(focus: str) -> tuple[str, int]:
    _, list_id, _, version = focus.split("/")
    return list_id, int(version)


def _check_entries(run: Run, before: list[Ack]) -> None:
    """Each entry's history, read through PLL from the new primary: every acknowledged
    change is its version, no change is there twice, the versions have no gaps."""
    with httpx.Client(base_url=run.base, headers=run.headers, timeout=30) as client:
        for entry in {a.entry for a in run.acks}:
            history = client.get(f"/fhir/MedicationStatement/{entry}/_history").json()
            versions = {
                int(e["resource"]["meta"]["versionId"]): (e["resource"].get("note") or [{}])[0].get(
                    "text"
                )
                for e in history["entry"]
            }
            assert sorted(versions) == list(range(1, max(versions) + 1)), versions
            markers = [m for m in versions.values() if m is not None]
            assert len(markers) == len(set(markers)), f"a change made twice: {versions}"
            for ack in (a for a in run.acks if a.entry == entry):
                assert versions.get(ack.entry_version) == ack.marker, (ack, versions)
    assert before, "no change was acknowledged before the kill"
    assert all(a.marker in {b.marker for b in run.acks} for a in before)


def _check_store(new_primary: Cluster, lists: dict[str, str], acked: set[tuple[str, int]]) -> None:
    """On the new primary: one audit record and one event for every version of each list,
    so for every acknowledged change."""
    for pid, list_id in lists.items():
        version = new_primary.query(
            "SELECT version FROM pll WHERE id = %s", (list_id,), database="pll"
        )[0][0]
        events = [
            v
            for (v,) in new_primary.query(
                "SELECT list_version FROM outbox WHERE list_id = %s ORDER BY list_version",
                (list_id,),
                database="pll",
            )
        ]
        assert events == list(range(1, version + 1)), (list_id, events)
        logged = new_primary.query(
            "SELECT count(*) FROM audit_event WHERE patient_id = %s AND resource_type = 'List' "
            "AND action IN ('create', 'update') AND outcome = '0'",
            (pid,),
            database="pll",
        )[0][0]
        assert logged == version, (pid, logged, version)
        assert {v for lid, v in acked if lid == list_id} <= set(events)


def _consumers_at_head(new_primary: Cluster) -> bool:
    rows = new_primary.query(
        "SELECT c.name, (c.position_tx, c.position) >= (o.tx, o.id) FROM consumer c, "
        "(SELECT tx, id FROM outbox ORDER BY tx DESC, id DESC LIMIT 1) o",
        database="pll",
    )
    return bool(rows) and all(at_head for _, at_head in rows)


def _check_deliveries(deliveries: list[tuple[str, str]]) -> None:
    """At least once, deduplicated by event id: one event per list version."""
    by_event: dict[str, set[str]] = {}
    for event_id, focus in deliveries:
        by_event.setdefault(event_id, set()).add(focus)
    assert all(len(f) == 1 for f in by_event.values()), by_event
    focuses = [next(iter(f)) for f in by_event.values()]
    assert len(focuses) == len(set(focuses)), "two events for one list version"
