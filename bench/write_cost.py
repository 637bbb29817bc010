"""What one write costs the server: CPU and statements per ``PUT MedicationStatement``.

    .venv/bin/python bench/write_cost.py                          # SQLite and PostgreSQL
    .venv/bin/python bench/write_cost.py --backends postgresql --writes 2000 --profile 30
    .venv/bin/python bench/write_cost.py --backends sqlite --patients 50 --writes 200  # smoke

For each backend a fresh database (a temporary SQLite file; a throwaway ``pll_bench_write_…``
PostgreSQL database beside ``--postgres-url``, dropped afterwards) gets ``--patients``
synthetic patients through the service (``pllbench.load``, as ``run_bench.py`` loads them),
then ``--writes`` PUTs go through **the real ASGI application** (``create_app``: its
middleware, authentication with a cached Bearer token, validation, the service, the response
with its ETag), called in-process with an ASGI scope as uvicorn would build it, one at a
time. Each PUT changes the first dose of one entry per patient (1 ↔ 1.5, as the benchmark's
write workload does) with ``If-Match`` naming the version of the previous answer's ETag; every
answer must be 200.

Reported per write: CPU (``time.process_time()`` over all writes, after ``--warmup`` writes:
the process's CPU in all its threads, including this driver's few microseconds per request),
wall time, the statements the server sent to the database (``before_cursor_execute``; an
executemany counts once, as psycopg sends it in one pipeline), the round trips they took
(a statement waits for its answer; a run of statements in psycopg's pipeline mode,
``pll.store.pipeline``, is one; ``BEGIN``/``COMMIT``, which psycopg sends itself, are not
counted) and the transactions. With
``--profile N`` a second pass of the writes runs under cProfile and its top N functions by
cumulative and by own time are printed. ``--show-sql`` prints the statements of one write.
CPU on a shared 2-core machine is far less noisy than wall time but not free of it: compare
runs made close together.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import orjson
from sqlalchemy import event, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pll.api import http
from pll.api.app import create_app
from pll.auth.tokens import issue
from pll.config import Settings
from pll.services.lists import PLLService
from pll.services.synthetic import gp_access, person, plans, synthetic_fnrs, write_patient
from pll.store.db import Database
from pllbench import dbsetup
from pllbench.capture import current_dose, next_dose, put_body
from pllbench.load import BENCH_KEY

SEED = 20


@dataclass
class Target:
    entry_id: str
    version: int
    dose: str
    resource: str


@dataclass
class Counter:
    statements: int = 0
    #: statements that wait for their answer, plus one per run of pipelined statements
    #: (pll.store.pipeline), which go in one round trip
    round_trips: int = 0
    piped: bool = False
    sql: list[str] = field(default_factory=list)
    keep: bool = False

    def __call__(self, conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        self.statements += 1
        pgconn = getattr(cursor.connection, "pgconn", None)  # psycopg; None on SQLite
        piped = bool(pgconn is not None and pgconn.pipeline_status)
        if not (piped and self.piped):
            self.round_trips += 1
        self.piped = piped
        if self.keep:
            self.sql.append(
                ("(pipelined) " if piped else "") + re.sub(r"\s+", " ", statement).strip()
            )


def _load(db: Database, patients: int) -> None:
    """``patients`` synthetic patients through the service's write path (what the API and
    ``pll import generate`` write), numbered in ``bench_patient`` as the benchmark does."""
    with db.engine.begin() as conn:
        conn.execute(text(dbsetup.HELPER_DDL))
    service = PLLService(db, BENCH_KEY)
    access = gp_access()
    fnrs = synthetic_fnrs(patients)
    every = plans(SEED)
    for first in range(1, patients + 1, 100):
        with db.write() as conn:
            for n in range(first, min(first + 99, patients) + 1):
                p = person(n, fnrs[n - 1], SEED)
                pid, list_id = write_patient(service, conn, access, p, every[p.plan])
                conn.execute(
                    text("INSERT INTO bench_patient (n, patient_id, list_id) VALUES (:n, :p, :l)"),
                    {"n": n, "p": pid, "l": list_id},
                )


def _targets(db: Database) -> list[Target]:
    """One active entry per patient, as the benchmark's write pool picks it."""
    with db.read() as conn:
        rows = conn.execute(
            text(
                "SELECT e.id, e.version, v.resource, e.list_id FROM entry e "
                "JOIN entry_version v ON v.entry_id = e.id AND v.version = e.version "
                "JOIN bench_patient p ON p.list_id = e.list_id "
                "WHERE e.status = 'active' AND v.resource NOT LIKE '%maxDosePerPeriod%' "
                "ORDER BY p.n, e.id"
            )
        ).all()
    out: dict[str, Target] = {}
    for eid, version, resource, list_id in rows:
        out.setdefault(list_id, Target(eid, version, current_dose(resource), resource))
    return list(out.values())


class Driver:
    """Sends requests to an ASGI application in-process, the way uvicorn calls it."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.auth = f"Bearer {token}".encode()

    async def put(self, target: Target) -> tuple[int, dict[str, str], bytes]:
        dose = next_dose(target.dose)
        body = orjson.dumps(put_body(target.resource, float(dose)))
        path = f"/fhir/MedicationStatement/{target.entry_id}"
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "PUT",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"host", b"127.0.0.1:8000"),
                (b"authorization", self.auth),
                (b"content-type", b"application/fhir+json"),
                (b"accept", b"application/fhir+json"),
                (b"if-match", f'W/"{target.version}"'.encode()),
                (b"x-pll-access-basis", b"HPBEHANDLINGSRELASJON"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 0
        headers: dict[str, str] = {}
        chunks: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers.update((k.decode(), v.decode()) for k, v in message["headers"])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        answer = b"".join(chunks)
        if status != 200:
            raise RuntimeError(f"PUT {path} answered {status}: {answer[:400]!r}")
        target.version = int(headers["etag"].removeprefix('W/"').removesuffix('"'))
        target.dose = dose
        target.resource = answer.decode()
        return status, headers, answer


async def _writes(driver: Driver, targets: list[Target], n: int, start: int) -> None:
    for i in range(start, start + n):
        await driver.put(targets[i % len(targets)])


async def _profiled(
    driver: Driver, targets: list[Target], n: int, start: int, top: int
) -> dict[str, str]:
    """The writes again under cProfile: the event loop's part (routing, middleware) and the
    worker threads' part (authentication, the handler: validation, service, response), which
    run one at a time here, merged into one table."""
    # thread CPU, not wall time: waiting for the database is not what we look for here
    loop_prof = cProfile.Profile(time.thread_time)
    thread_prof = cProfile.Profile(time.thread_time)
    original = http.run_in_threadpool

    async def profiled(func: Any, *args: Any) -> Any:
        return await original(thread_prof.runcall, func, *args)

    http.run_in_threadpool = profiled  # type: ignore[assignment]
    try:
        loop_prof.enable()
        await _writes(driver, targets, n, start)
        loop_prof.disable()
    finally:
        http.run_in_threadpool = original  # type: ignore[assignment]
    out: dict[str, str] = {}
    for order in ("cumulative", "tottime"):
        buf = io.StringIO()
        stats = pstats.Stats(loop_prof, stream=buf)
        stats.add(thread_prof)
        stats.sort_stats(order).print_stats(top)
        out[f"profile_{order}"] = buf.getvalue()
    return out


def _callgrind(state: str) -> None:
    """Switch valgrind's instrumentation of this process on or off (``callgrind_control``),
    so that only the measured writes are counted, and wait until it has taken effect."""
    subprocess.run(
        ["callgrind_control", "--instr=" + state, str(os.getpid())],
        check=True,
        capture_output=True,
    )


def measure(
    backend: str,
    url: str,
    patients: int,
    writes: int,
    warmup: int,
    profile: int,
    show_sql: bool,
    callgrind: bool = False,
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="pll-write-cost-"))
    with dbsetup.fresh_database(backend, tmp, url, "write") as db:
        t0 = time.perf_counter()
        _load(db, patients)
        load_s = time.perf_counter() - t0
        targets = _targets(db)
        data = tmp / "data"
        data.mkdir()
        settings = Settings(
            data_dir=data,
            database_url=str(db.engine.url.render_as_string(hide_password=False)),
            dev_auth=True,
            seal_interval=0,
            stats_interval=0,
            dispatch=False,
        )
        service = PLLService(db, settings.audit_key())
        app = create_app(settings, service)
        driver = Driver(app, issue(data, "gp"))
        counter = Counter()
        event.listen(db.engine, "before_cursor_execute", counter)
        transactions = [0]

        def begun(conn: Any) -> None:
            transactions[0] += 1

        event.listen(db.engine, "begin", begun)

        async def run() -> dict[str, Any]:
            await _writes(driver, targets, warmup, 0)
            if show_sql:
                counter.keep = True
                await _writes(driver, targets, 1, warmup)
                counter.keep = False
                for i, sql in enumerate(counter.sql):
                    print(f"  [{i}] {sql[:220]}")
            counter.statements = counter.round_trips = 0
            transactions[0] = 0
            if callgrind:
                _callgrind("on")
            times0, cpu0, wall0 = os.times(), time.process_time(), time.perf_counter()
            await _writes(driver, targets, writes, warmup + 1)
            cpu = time.process_time() - cpu0
            wall = time.perf_counter() - wall0
            times = os.times()
            if callgrind:
                _callgrind("off")
            result = {
                "backend": backend,
                "patients": patients,
                "writes": writes,
                "load_s": round(load_s, 1),
                "cpu_ms_per_write": round(cpu / writes * 1000, 3),
                # the same CPU, split: in the process's own code, in the kernel for it
                # (sockets, waking threads)
                "user_ms_per_write": round((times.user - times0.user) / writes * 1000, 3),
                "sys_ms_per_write": round((times.system - times0.system) / writes * 1000, 3),
                "wall_ms_per_write": round(wall / writes * 1000, 3),
                "statements_per_write": round(counter.statements / writes, 2),
                # SQLite runs in-process: its "round trips" are calls into the library
                "round_trips_per_write": round(counter.round_trips / writes, 2),
                "transactions_per_write": round(transactions[0] / writes, 2),
            }
            if profile:
                result.update(
                    await _profiled(driver, targets, writes, warmup + 1 + writes, profile)
                )
            return result

        return asyncio.run(run())


@click.command()
@click.option("--backends", default="sqlite,postgresql", show_default=True)
@click.option(
    "--postgres-url",
    default="postgresql://postgres@127.0.0.1:5432/postgres",
    show_default=True,
    help="a server to create the throwaway database on",
)
@click.option("--patients", default=300, show_default=True)
@click.option("--writes", default=2000, show_default=True)
@click.option("--warmup", default=200, show_default=True)
@click.option("--profile", default=0, show_default=True, help="print the top N of cProfile")
@click.option("--show-sql", is_flag=True, help="print the statements of one write")
@click.option(
    "--callgrind",
    is_flag=True,
    help="run under valgrind --tool=callgrind --instr-atstart=no: instrument only the writes",
)
def main(
    backends: str,
    postgres_url: str,
    patients: int,
    writes: int,
    warmup: int,
    profile: int,
    show_sql: bool,
    callgrind: bool,
) -> None:
    for backend in backends.split(","):
        result = measure(
            backend, postgres_url, patients, writes, warmup, profile, show_sql, callgrind
        )
        for key in ("profile_cumulative", "profile_tottime"):
            if key in result:
                print(result.pop(key))
        print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
