"""A DPoP proof is accepted once by the whole server, not once per worker process (issue 15),
and the server holds proofs to its configured public origin.

``pll serve --workers 2`` runs as a user runs it, on SQLite and on PostgreSQL; the same proof
is sent many times, on connections of their own and at the same moment, so that both workers
take some: exactly one is accepted, and the POST creates exactly one entry.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from prometheus_client.multiprocess import MultiProcessCollector

from pll.api import serve_workers
from pll.auth.dpop import make_proof
from pll.auth.tokens import dpop_key, issue
from pll.cli import main
from pll.store.db import Database
from pll.store.schema import entry
from tests.integration.builders import DRUGS, new_patient_with_list, ok, statement
from tests.integration.processes import PLL, Served, clean_env, free_port, pll_serve

BASIS = {"X-PLL-Access-Basis": "HPBEHANDLINGSRELASJON"}
ATTEMPTS = 16


@pytest.fixture(params=["sqlite", "postgresql"])
def two_workers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """``pll serve --workers 2`` on its own database, with its public origin configured
    (development tokens on for `pll token`'s tokens; the origin is configured all the same)."""
    with pll_serve(tmp_path, request.param, public_url=True, PLL_STATS_INTERVAL="0") as served:
        yield served


def _per_worker(folder: Path, method: str, route: str) -> dict[str, float]:
    """How many ``method route`` requests each worker answered, from its metrics file."""
    out = {}
    for path in sorted(folder.glob("counter_*.db")):
        total = 0.0
        for family in MultiProcessCollector.merge([str(path)]):  # type: ignore[no-untyped-call]
            for s in family.samples:
                if (
                    s.name == "pll_http_requests_total"
                    and s.labels.get("route") == route
                    and s.labels.get("method") == method
                ):
                    total += s.value
        out[path.stem.removeprefix("counter_")] = total
    return out


def _at_once(count: int, send: Callable[[], httpx.Response]) -> list[int]:
    """The statuses of ``count`` calls of ``send`` made at the same moment from threads."""
    start = threading.Barrier(count)
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt() -> None:
        start.wait()
        status = send().status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=attempt) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def _replay(
    send: Callable[[], httpx.Response], served: Served, method: str, route: str
) -> list[int]:
    """Send the same request at once from several threads (each on a connection of its
    own), and again until both workers have taken some; the statuses."""
    statuses: list[int] = []
    for _ in range(10):
        statuses += _at_once(ATTEMPTS, send)
        counts = _per_worker(served.metrics, method, route)
        if len([c for c in counts.values() if c > 0]) == 2:
            return statuses
    pytest.fail(f"one worker took every request: {counts}")


@pytest.mark.slow
def test_a_replayed_proof_is_accepted_once_across_workers(two_workers: Served) -> None:
    served = two_workers
    gp = httpx.Client(
        base_url=served.base,
        headers={"Authorization": f"Bearer {issue(served.data, 'gp')}", **BASIS},
        timeout=30,
    )
    with gp:
        pid, list_id = new_patient_with_list(gp)
    key_file = served.data / "client-dpop.pem"
    token = issue(served.data, "gp", dpop_key_file=key_file)
    key = dpop_key(key_file)

    # a write: the proof for one POST, sent again and again
    url = f"{served.base}/fhir/MedicationStatement"
    proof = make_proof(key, method="POST", url=url, access_token=token)
    body = statement(f"Patient/{pid}", *DRUGS[0])
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof, **BASIS}
    statuses = _replay(
        lambda: httpx.post(url, json=body, headers=headers, timeout=30),
        served,
        "POST",
        "/fhir/MedicationStatement",
    )
    assert statuses.count(201) == 1, statuses
    assert set(statuses) == {201, 401}, statuses
    db = Database(served.url)
    try:
        with db.read() as conn:
            entries = conn.execute(sa.select(sa.func.count()).select_from(entry)).scalar_one()
    finally:
        db.dispose()
    assert entries == 1

    # the hot read, answered on the event loop: the same
    url = f"{served.base}/fhir/List/{list_id}"
    proof = make_proof(key, method="GET", url=url, access_token=token)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof, **BASIS}
    statuses = _replay(
        lambda: httpx.get(url, headers=headers, timeout=30), served, "GET", "/fhir/List/{id}"
    )
    assert statuses.count(200) == 1, statuses
    assert set(statuses) == {200, 401}, statuses

    # a replay is told why, and a fresh proof for the same request passes
    r = httpx.get(url, headers=headers, timeout=30)
    assert r.status_code == 401
    assert "used before" in r.text
    assert 'error="invalid_dpop_proof"' in r.headers["WWW-Authenticate"]
    fresh = make_proof(key, method="GET", url=url, access_token=token)
    ok(httpx.get(url, headers={**headers, "DPoP": fresh}, timeout=30))

    # a proof made for another origin is refused, whatever Host header comes with it
    path = f"/fhir/List/{list_id}"
    elsewhere = make_proof(key, method="GET", url=f"https://evil.example{path}", access_token=token)
    r = httpx.get(
        served.base + path,
        headers={**headers, "DPoP": elsewhere, "Host": "evil.example"},
        timeout=30,
    )
    assert r.status_code == 401
    assert "but the request went to" in r.text


def test_serve_refuses_to_start_without_a_public_url_outside_development_mode(
    tmp_path: Path,
) -> None:
    env = clean_env(
        tmp_path / "data",
        PLL_DEV_AUTH="0",
        PLL_ISSUER="https://helseid-sts.test.nhn.no",
        PLL_JWKS=str(tmp_path / "jwks.json"),
    )
    port = str(free_port())
    for command in (["serve", "--port", port], ["readcopy", "run", "--port", port]):
        r = subprocess.run(
            [PLL, *command], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert r.returncode != 0
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert lines[0].startswith("Error: PLL_PUBLIC_URL is not set"), r.stderr
    # it stopped before touching anything
    assert not (tmp_path / "data" / "pll.sqlite3").exists()


def test_development_mode_serves_without_a_public_url_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[object] = []

    def serve_here(*args: object) -> bool:
        started.append(args)
        return True

    monkeypatch.setattr(serve_workers, "serve_here", serve_here)
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PLL_")}
    env |= {"PLL_DATA_DIR": str(tmp_path / "data"), "PLL_DEV_AUTH": "1"}
    result = CliRunner().invoke(main, ["serve", "--port", str(free_port())], env=env)
    assert result.exit_code == 0, result.output
    assert started
    warning = [line for line in result.stderr.splitlines() if "PLL_PUBLIC_URL" in line]
    assert warning == [
        "PLL_PUBLIC_URL is not set: DPoP proofs are held to each request's Host header, as "
        "only development mode allows."
    ]
