"""Crash test: SIGKILL the server, the dispatcher and the read copy in the middle of a stream
of writes. After restarts, every acknowledged change has reached its subscriber and the read
copy at least once, none is lost, and the copy equals the store.

Run as a user runs PLL: ``pll serve`` (on the embedded database it dispatches itself; with
PostgreSQL beside ``pll events run``) and ``pll readcopy run`` as processes of their own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
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
from pll.events.readcopy import ReadCopy
from pll.services.subscriptions import SECRET_EXTENSION
from pll.store.db import Database
from tests.conftest import _drop_postgres_database, _postgres_database, serving
from tests.integration.builders import patient, statement

PLL = str(Path(sys.executable).parent / "pll")
WRITES = 60
PATIENTS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Processes:
    def __init__(self, env: dict[str, str], port: int, separate_dispatcher: bool) -> None:
        self.env, self.port, self.separate = env, port, separate_dispatcher
        self.server: subprocess.Popen[bytes] | None = None
        self.events: subprocess.Popen[bytes] | None = None
        self.copy: subprocess.Popen[bytes] | None = None

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        # each process's output goes to a file of its own, for a failure to show
        log = Path(self.env["PLL_DATA_DIR"]) / f"{args[0]}-{time.monotonic_ns()}.log"
        with log.open("wb") as out:
            return subprocess.Popen([PLL, *args], env=self.env, stdout=out, stderr=out)

    def start_server(self) -> None:
        self.server = self._spawn("serve", "--port", str(self.port))
        if self.separate:
            self.events = self._spawn("events", "run")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        logs = sorted(Path(self.env["PLL_DATA_DIR"]).glob("serve-*.log"))
        raise RuntimeError(f"pll serve did not start: {logs[-1].read_text()[-2000:]}")

    def kill_server(self) -> None:
        for proc in (self.server, self.events):
            if proc is not None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)

    def start_copy(self) -> None:
        self.copy = self._spawn("readcopy", "run")

    def kill_copy(self) -> None:
        if self.copy is not None:
            self.copy.send_signal(signal.SIGKILL)
            self.copy.wait(timeout=10)

    def stop(self) -> None:
        for proc in (self.server, self.events, self.copy):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()


@pytest.fixture(params=["sqlite", "postgresql"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path, bool]]:
    data = tmp_path / "data"
    data.mkdir()
    if request.param == "sqlite":
        yield f"sqlite:///{data / 'pll.sqlite3'}", data, False
        return
    name = f"pll_crash_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = _postgres_database(name)
    yield url, data, True
    _drop_postgres_database(name)


def test_nothing_acknowledged_is_lost_when_processes_are_killed(
    setup: tuple[str, Path, bool],
) -> None:
    url, data, separate = setup
    copy_url = f"sqlite:///{data / 'readcopy.sqlite3'}"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLL_")} | {
        "PLL_DATA_DIR": str(data),
        "PLL_DATABASE_URL": url,
        "PLL_READCOPY_URL": copy_url,
        "PLL_DEV_AUTH": "1",
        "PLL_DISPATCH": "0" if separate else "1",
        "PLL_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    got: dict[str, set[str]] = {}
    lock = threading.Lock()

    async def hook(request: Request) -> Response:
        bundle = orjson.loads(await request.body())
        with lock:
            got.setdefault(request.path_params["pid"], set()).add(
                bundle["entry"][1]["fullUrl"].split("/fhir/", 1)[1]
            )
        return Response(status_code=200)

    procs = Processes(env, port, separate)
    receiver = Starlette(routes=[Route("/hook/{pid}", hook, methods=["POST"])])
    with serving(receiver) as hook_base:
        try:
            procs.start_server()
            procs.start_copy()
            token = issue(data, "gp")
            headers = {
                "Authorization": f"Bearer {token}",
                "X-PLL-Access-Basis": "HPBEHANDLINGSRELASJON",
            }
            base = f"http://127.0.0.1:{port}"
            pids = _patients(base, headers, hook_base)
            acknowledged = _write_while_killing(base, headers, pids, procs)
            _wait_for(lambda: all(a in got.get(pid, set()) for pid, a in acknowledged), 90)
            store, copy_db = Database(url), Database(copy_url)
            copy = ReadCopy(store, copy_db, lambda: datetime.now(UTC))
            _wait_for(lambda: copy.differences() == [], 90)
            store.dispose()
            copy_db.dispose()
        finally:
            procs.stop()
    assert len(acknowledged) >= WRITES // 2
    missing = [a for pid, a in acknowledged if a not in got.get(pid, set())]
    assert missing == []


def _patients(base: str, headers: dict[str, str], hook_base: str) -> list[str]:
    pids = []
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for _ in range(PATIENTS):
            pid = client.post("/fhir/Patient", json=patient()).json()["id"]
            client.post(
                "/fhir/List",
                json={
                    "resourceType": "List",
                    "status": "current",
                    "mode": "working",
                    "subject": {"reference": f"Patient/{pid}"},
                },
            ).raise_for_status()
            client.post(
                "/fhir/Subscription",
                json={
                    "resourceType": "Subscription",
                    "status": "requested",
                    "reason": "crash test",
                    "criteria": f"List?patient={pid}",
                    "channel": {"type": "rest-hook", "endpoint": f"{hook_base}/hook/{pid}"},
                    "extension": [{"url": SECRET_EXTENSION, "valueString": "s" * 40}],
                },
            ).raise_for_status()
            pids.append(pid)
    return pids


def _write_while_killing(
    base: str, headers: dict[str, str], pids: list[str], procs: Processes
) -> list[tuple[str, str]]:
    """Writes; the server (and dispatcher) die after a third, the read copy after two
    thirds. Returns each acknowledged change as (patient, List/<id>/_history/<version>)."""
    acknowledged: list[tuple[str, str]] = []
    for i in range(WRITES):
        if i == WRITES // 3:
            procs.kill_server()
            procs.start_server()
        if i == 2 * WRITES // 3:
            procs.kill_copy()
            procs.start_copy()
        pid = pids[i % len(pids)]
        body = statement(f"Patient/{pid}", f"Legemiddel {i}", "N02BE01")
        try:
            r = httpx.post(
                f"{base}/fhir/MedicationStatement", json=body, headers=headers, timeout=30
            )
        except httpx.HTTPError:
            continue  # not acknowledged: it may or may not have happened
        if r.status_code == 201:
            list_url = _list_of(base, headers, pid)
            acknowledged.append((pid, f"{list_url}/_history/{r.headers['X-PLL-List-Version']}"))
    return acknowledged


def _list_of(base: str, headers: dict[str, str], pid: str) -> str:
    found: dict[str, Any] = httpx.get(
        f"{base}/fhir/List", params={"patient": pid}, headers=headers, timeout=30
    ).json()
    return f"List/{found['entry'][0]['resource']['id']}"


def _wait_for(done: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.2)
    raise AssertionError("not caught up in time")
