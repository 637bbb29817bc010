"""The failover scene of ``test_failover.py`` and ``bench/failover_bench.py`` (issue 21).

PLL as an operator runs it (docs/operations.md, "Failover"): ``pll serve`` and ``pll worker``
as processes of their own on a multi-host URL, a rest-hook subscription per patient on a
receiver of the scene's own; writers that change entries under ``If-Match`` and readers that
read lists (:class:`Load`); the primary killed and its standby promoted (:func:`fail_over`);
and what is found afterwards (:func:`compare`, :func:`store_problems`, …).

A writer owns one entry, so the entry's version moves only by its own changes: a change
that got 503 or no answer is sent again with the same ``If-Match``, and a 412 then means its
earlier try was made, which it confirms by reading the entry (``made_unanswered``). Each
change carries a marker of its own in ``note``, so the entry's history shows whether a
change was made twice.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pll.auth.tokens import issue
from pll.services.subscriptions import SECRET_EXTENSION
from tests.conftest import serving
from tests.integration.builders import patient, statement
from tests.integration.pg_clusters import Cluster
from tests.integration.processes import PLL, clean_env, free_port

#: How long anything may take before the scene gives up instead of hanging (seconds).
PATIENCE = 90.0


def wait_for(
    done: Callable[[], bool], what: str, load: Load | None = None, seconds: float = PATIENCE
) -> None:
    """Wait until ``done()``; fail at once when a writer or reader of ``load`` has failed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if load is not None and load.failures:
            raise AssertionError(f"while waiting for {what}: {load.failures}")
        if done():
            return
        time.sleep(0.05)
    raise AssertionError(f"not done in {seconds:.0f} s: {what}")


@dataclass
class Pll:
    """``pll serve`` and ``pll worker`` on ``url``, with patients, lists, subscriptions and
    the writers' entries made (:func:`running_pll`)."""

    base: str
    env: dict[str, str]
    data: Path
    headers: dict[str, str] = field(default_factory=dict)
    #: patient -> list id; entry id -> patient
    lists: dict[str, str] = field(default_factory=dict)
    entries: dict[str, str] = field(default_factory=dict)
    #: what the subscriptions received: (event id, ``List/<id>/_history/<version>``)
    deliveries: list[tuple[str, str]] = field(default_factory=list)

    def logs(self) -> str:
        return "\n".join(
            f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.data.glob("*.log"))
        )

    def delivered(self) -> set[tuple[str, int]]:
        """(list id, version) of every notification received."""
        return {_version(focus) for _, focus in list(self.deliveries)}

    def audit_verify(self) -> subprocess.CompletedProcess[bytes]:
        """``pll audit verify`` against the database, as an operator runs it."""
        return subprocess.run(
            [PLL, "audit", "verify"], env=self.env, capture_output=True, check=False, timeout=120
        )


@contextmanager
def running_pll(tmp: Path, url: str, *, patients: int, writers: int) -> Iterator[Pll]:
    """PLL on ``url`` (``PLL_DATABASE_URL``), stopped when the block ends."""
    data = tmp / "data"
    data.mkdir(exist_ok=True)
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
    pll = Pll(base, env, data)

    async def hook(request: Request) -> Response:
        bundle = orjson.loads(await request.body())
        pll.deliveries.append((bundle["id"], bundle["entry"][1]["fullUrl"].split("/fhir/")[1]))
        return Response(status_code=200)

    procs: list[subprocess.Popen[bytes]] = []

    def spawn(*args: str) -> subprocess.Popen[bytes]:
        with (data / f"{args[0]}.log").open("ab") as out:
            proc = subprocess.Popen([PLL, *args], env=env, stdout=out, stderr=out)
        procs.append(proc)
        return proc

    receiver = Starlette(routes=[Route("/h", hook, methods=["POST"])])
    with serving(receiver) as hook_base:
        try:
            server = spawn("serve", "--port", str(port), "--workers", "1")
            spawn("worker")
            wait_for(lambda: _healthy(base, server, pll), "pll serve answers")
            pll.headers = {
                "Authorization": f"Bearer {issue(data, 'gp')}",
                "X-PLL-Access-Basis": "HPBEHANDLINGSRELASJON",
            }
            _make(pll, f"{hook_base}/h", patients, writers)
            yield pll
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _healthy(base: str, server: subprocess.Popen[bytes], pll: Pll) -> bool:
    assert server.poll() is None, pll.logs()
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _make(pll: Pll, hook: str, patients: int, writers: int) -> None:
    with httpx.Client(base_url=pll.base, headers=pll.headers, timeout=30) as client:
        for _ in range(patients):
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
            pll.lists[pid] = made.json()["id"]
            client.post(
                "/fhir/Subscription",
                json={
                    "resourceType": "Subscription",
                    "status": "requested",
                    "reason": "failover",
                    "criteria": f"List?patient={pid}",
                    "channel": {"type": "rest-hook", "endpoint": hook},
                    "extension": [{"url": SECRET_EXTENSION, "valueString": "s" * 40}],
                },
            ).raise_for_status()
        # writers of one list move its version between each other's changes, as clinicians do
        for i in range(writers):
            pid = list(pll.lists)[i % patients]
            made = client.post(
                "/fhir/MedicationStatement",
                json=statement(f"Patient/{pid}", f"Legemiddel {i}", "N02BE01"),
            )
            made.raise_for_status()
            pll.entries[made.json()["id"]] = pid


@dataclass
class Ack:
    """An acknowledged change (200): its entry, marker, and the versions it made."""

    entry: str
    marker: str
    entry_version: int
    list_version: int
    #: the request was sent after the primary was killed
    after_kill: bool
    at: float


@dataclass
class Load:
    """A writer per entry and ``readers`` readers of the lists, on threads, until stopped."""

    pll: Pll
    readers: int = 2
    #: makes markers unique across loads on the same entries
    tag: str = "a"
    killed_at: float | None = None
    acks: list[Ack] = field(default_factory=list)
    #: changes that were made but whose answer was lost (found by reading after a 412)
    made_unanswered: list[str] = field(default_factory=list)
    #: the status of every answer a writer had, and every read (status, after the kill)
    statuses: list[int] = field(default_factory=list)
    reads: list[tuple[int, bool]] = field(default_factory=list)
    #: what a writer or reader met that it should never meet (it stops there)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._write, args=(entry,), daemon=True)
            for entry in self.pll.entries
        ] + [threading.Thread(target=self._read, daemon=True) for _ in range(self.readers)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=PATIENCE)

    def acknowledged(self, *, after_kill: bool) -> dict[str, int]:
        """Per entry, how many changes were acknowledged (sent after the kill, or not)."""
        with self._lock:
            counts = dict.fromkeys(self.pll.entries, 0)
            for ack in self.acks:
                if ack.after_kill == after_kill:
                    counts[ack.entry] += 1
            return counts

    def wait_each(self, least: int, *, after_kill: bool) -> None:
        """Wait until every writer has ``least`` changes acknowledged."""
        wait_for(
            lambda: min(self.acknowledged(after_kill=after_kill).values()) >= least,
            f"{least} changes by each writer " + ("after the kill" if after_kill else "before"),
            self,
        )

    def mark_kill(self) -> float:
        with self._lock:
            self.killed_at = time.monotonic()
            return self.killed_at

    def first_write_after_kill(self) -> float:
        """Seconds from the kill to the first acknowledged change sent after it."""
        assert self.killed_at is not None
        return min(a.at for a in self.acks if a.after_kill) - self.killed_at

    def _write(self, entry: str) -> None:
        with httpx.Client(base_url=self.pll.base, headers=self.pll.headers, timeout=10) as client:
            current = None
            while current is None and not self._stop.is_set():
                current = self._get(client, entry)
            n = 0
            while current is not None and not self._stop.is_set():
                n += 1
                current = self._change(client, entry, current, f"{entry[:8]}-{self.tag}{n}")

    def _change(
        self, client: httpx.Client, entry: str, current: dict[str, Any], marker: str
    ) -> dict[str, Any] | None:
        """Make one change, sending it again until it is answered; the entry as it then is
        (None when stopped or failed)."""
        version = int(current["meta"]["versionId"])
        body = {k: v for k, v in current.items() if k != "meta"} | {"note": [{"text": marker}]}
        while not self._stop.is_set():
            after_kill = self.killed_at is not None
            try:
                answer = client.put(
                    f"/fhir/MedicationStatement/{entry}",
                    json=body,
                    headers={"If-Match": f'W/"{version}"'},
                )
            except httpx.HTTPError:
                time.sleep(0.05)
                continue  # no answer: it may or may not have been made; send it again
            with self._lock:
                self.statuses.append(answer.status_code)
            if answer.status_code == 503:
                time.sleep(0.05)
                continue
            if answer.status_code == 412:
                # the version moved: by this writer's own earlier try, whose answer was
                # lost (nobody else changes this entry), so the entry must hold the change
                found = self._get(client, entry)
                if found is None:
                    continue
                if found.get("note") != [{"text": marker}]:
                    self.failures.append(f"412 for {marker}, which was not made: {found}")
                    return None
                with self._lock:
                    self.made_unanswered.append(marker)
                return found
            if answer.status_code != 200:
                self.failures.append(f"{answer.status_code} for {marker}: {answer.text}")
                return None
            made: dict[str, Any] = answer.json()
            ack = Ack(
                entry,
                marker,
                int(made["meta"]["versionId"]),
                int(answer.headers["X-PLL-List-Version"]),
                after_kill,
                time.monotonic(),
            )
            with self._lock:
                self.acks.append(ack)
            return made
        return None

    def _get(self, client: httpx.Client, entry: str) -> dict[str, Any] | None:
        try:
            answer = client.get(f"/fhir/MedicationStatement/{entry}")
        except httpx.HTTPError:
            time.sleep(0.05)
            return None
        with self._lock:
            self.statuses.append(answer.status_code)
        if answer.status_code == 503:
            time.sleep(0.05)
            return None
        if answer.status_code != 200:
            self.failures.append(f"{answer.status_code} reading {entry}: {answer.text}")
            self._stop.set()
            return None
        found: dict[str, Any] = answer.json()
        return found

    def _read(self) -> None:
        with httpx.Client(base_url=self.pll.base, headers=self.pll.headers, timeout=10) as client:
            while not self._stop.is_set():
                for list_id in self.pll.lists.values():
                    after_kill = self.killed_at is not None
                    try:
                        status = client.get(f"/fhir/List/{list_id}").status_code
                    except httpx.HTTPError:
                        status = 0
                    with self._lock:
                        self.reads.append((status, after_kill))
                time.sleep(0.02)


@dataclass(frozen=True)
class Failover:
    #: seconds from the kill until ``pg_ctl promote`` returned
    promoted_after: float


def fail_over(primary: Cluster, standby: Cluster, load: Load) -> Failover:
    """SIGKILL the primary (the postmaster and its processes) and promote the standby.

    The kill is marked once the postmaster and the processes it had are killed: a backend
    outlives its postmaster until it is killed itself, and a change sent in those
    milliseconds can still be acknowledged by the old primary (and its synchronous standby);
    counted as sent after the kill, it made the time to resume look shorter than the
    promotion."""
    primary.kill()
    killed_at = load.mark_kill()
    standby.promote()
    return Failover(time.monotonic() - killed_at)


@dataclass(frozen=True)
class Comparison:
    """The acknowledged changes against the entries' histories as PLL serves them."""

    acknowledged: int
    #: acknowledged changes found as the entry version their answer named
    found: int
    #: markers found in more than one version of an entry (a change made twice)
    made_twice: list[str]
    #: entries whose version numbers have gaps
    gaps: list[str]


def compare(pll: Pll, acks: list[Ack]) -> Comparison:
    histories = {}
    with httpx.Client(base_url=pll.base, headers=pll.headers, timeout=30) as client:
        for entry in pll.entries:
            bundle = client.get(f"/fhir/MedicationStatement/{entry}/_history").json()
            histories[entry] = [
                (int(e["resource"]["meta"]["versionId"]), (e["resource"].get("note") or [{}])[0])
                for e in bundle["entry"]
            ]
    found = sum(1 for a in acks if (a.entry_version, {"text": a.marker}) in histories[a.entry])
    twice = []
    gaps = []
    for entry, versions in histories.items():
        markers = [note.get("text") for _, note in versions if note.get("text")]
        twice += sorted({m for m in markers if markers.count(m) > 1})
        numbers = sorted(v for v, _ in versions)
        if numbers != list(range(1, len(numbers) + 1)):
            gaps.append(entry)
    return Comparison(len(acks), found, twice, gaps)


def store_problems(new_primary: Cluster, pll: Pll, acks: list[Ack]) -> list[str]:
    """On ``new_primary``, read directly: one event and one audit record of a success for
    every version of each list (so for every acknowledged change); what is not so."""
    problems = []
    for pid, list_id in pll.lists.items():
        (version,) = new_primary.query(
            "SELECT version FROM pll WHERE id = %s", (list_id,), database="pll"
        )[0]
        events = [
            v
            for (v,) in new_primary.query(
                "SELECT list_version FROM outbox WHERE list_id = %s ORDER BY list_version",
                (list_id,),
                database="pll",
            )
        ]
        if events != list(range(1, version + 1)):
            problems.append(f"List/{list_id} at version {version} has the events {events}")
        (logged,) = new_primary.query(
            "SELECT count(*) FROM audit_event WHERE patient_id = %s AND resource_type = 'List' "
            "AND action IN ('create', 'update') AND outcome = '0'",
            (pid,),
            database="pll",
        )[0]
        if logged != version:
            problems.append(f"List/{list_id} at version {version} has {logged} audit records")
    acked = {(pll.lists[pll.entries[a.entry]], a.list_version) for a in acks}
    rows = new_primary.query("SELECT list_id, list_version FROM outbox", database="pll")
    versions = {(lid, v) for lid, v in rows}
    problems += [f"no event for List/{lid} version {v}" for lid, v in sorted(acked - versions)]
    return problems


def consumers_at_head(new_primary: Cluster) -> bool:
    """Every consumer's place (the subscriptions', the statistics') is at the outbox's end."""
    rows = new_primary.query(
        "SELECT c.name, (c.position_tx, c.position) >= (o.tx, o.id) FROM consumer c, "
        "(SELECT tx, id FROM outbox ORDER BY tx DESC, id DESC LIMIT 1) o",
        database="pll",
    )
    return bool(rows) and all(at_head for _, at_head in rows)


def events_twice(deliveries: list[tuple[str, str]]) -> list[str]:
    """List versions notified under two event ids (at least once is expected, deduplicated
    by event id; two events for one version would be one change made twice)."""
    by_version: dict[str, set[str]] = {}
    for event_id, focus in deliveries:
        by_version.setdefault(focus, set()).add(event_id)
    return sorted(focus for focus, ids in by_version.items() if len(ids) > 1)


def _version(focus: str) -> tuple[str, int]:
    _, list_id, _, version = focus.split("/")
    return list_id, int(version)
