"""What the hot read costs the server, in CPU, and what it asks of PostgreSQL (issue 20).

    .venv/bin/python bench/read_cpu.py --database-url postgresql://postgres@127.0.0.1:5432/pll_bench
    .venv/bin/python bench/read_cpu.py --read-path one-statement --profile 25

On a machine shared with other work, wall-clock rates say little; CPU time spent by this
process does. In one process, on uvloop as ``pll serve`` runs, ``--clients`` concurrent tasks
send ``GET /fhir/List?patient=<random>&_include=List:item`` straight into the ASGI app
(``create_app``, the real routes, authentication with a cached ``pll token``, the real
database): no socket and no HTTP parsing, so the figure is the application's own CPU per
read (uvicorn's httptools parsing and the socket add ~30-60 µs, not counted). Reported:
CPU µs per read (``time.process_time``), the wall time (noisy), and from PostgreSQL the
transactions that wrote the audit rows (one per read, or one per batch with group commit;
rows sharing an ``xmin``). ``--profile N`` prints cProfile's top N functions by own time.

Run under ``valgrind --tool=callgrind --instr-atstart=no`` with ``--callgrind``, it counts
the instructions of the measured reads alone (it switches counting on and off around them
with ``callgrind_control``) and reports them per read: a figure other work on the machine
does not disturb (``read_instructions.py`` does the same for the whole server over HTTP).

``--pgbench-batches 1,4,16`` measures PostgreSQL's side instead: pgbench (``--clients``
clients, ``--pgbench-seconds``) runs the read as ``run_bench.py`` scripts it — the one
statement, then the group commit's lookup with one INSERT of ``k`` rows every ``k`` reads for
each ``k`` — and the CPU of pgbench's own backends is summed from ``/proc``, so other work on
the machine is not counted: PostgreSQL's CPU per read, and tps.
Needs a database loaded by ``run_bench.py`` (``--reuse`` keeps one; ``--load-only`` makes one).
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import os
import pstats
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click
import psycopg
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pll.api.app import create_app
from pll.auth.tokens import issue
from pll.config import Settings
from pll.services.lists import PLLService
from pll.store.audit_batch import GroupCommit
from pll.store.db import Database
from pllbench import capture, dbsetup, load

TICK = os.sysconf("SC_CLK_TCK")


async def _get(app: Any, path: str, query: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _drive(app: Any, patients: list[str], token: str, n: int, clients: int) -> list[int]:
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"authorization", f"Bearer {token}".encode()),
        (b"x-pll-access-basis", b"HPBEHANDLINGSRELASJON"),
    ]
    statuses: list[int] = []
    rng = random.Random(20)
    left = n

    async def client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            query = f"patient={rng.choice(patients)}&_include=List:item".encode()
            statuses.append(await _get(app, "/fhir/List", query, headers))

    await asyncio.gather(*(client() for _ in range(clients)))
    return statuses


def _callgrind(*actions: str) -> int | None:
    """Ask the callgrind running this process to do ``actions`` (``callgrind_control``);
    with ``--dump=…``, the instructions counted since the last ``--zero``, from ``-e``."""
    counted = None
    for action in actions:
        if action.startswith("--dump"):
            out = subprocess.run(
                ["callgrind_control", "-e", str(os.getpid())],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            # "Totals: Ir" then a line per thread: "Th 1  97,797,461"
            threads = re.findall(r"^\s*Th\s+\d+\s+([\d,]+)", out, re.M)
            if not threads:
                raise click.ClickException(f"not under callgrind? callgrind_control said: {out}")
            counted = sum(int(n.replace(",", "")) for n in threads)
        subprocess.run(
            ["callgrind_control", action, str(os.getpid())], check=True, capture_output=True
        )
    return counted


def _writers(url: str, after_id: int) -> tuple[int, int]:
    with psycopg.connect(dbsetup.libpq_url(url)) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT xmin::text) FROM audit_event WHERE id > %s",
            (after_id,),
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


def _max_id(url: str) -> int:
    with psycopg.connect(dbsetup.libpq_url(url)) as conn:
        row = conn.execute("SELECT coalesce(max(id), 0) FROM audit_event").fetchone()
        return int(row[0]) if row else 0


def _backend_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def _pgbench(url: str, script: capture.Script, patients: int, clients: int, seconds: int) -> str:
    """Run ``script`` under pgbench; PostgreSQL CPU per transaction of its backends only."""
    path = Path(tempfile.mkdtemp(prefix="pll-read-cpu-")) / "read.sql"
    path.write_text(script.text)
    pg = dbsetup.conn_parts(url)
    cmd = ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", "2", "-T", str(seconds)]
    cmd += ["-f", str(path), "-D", f"npatients={patients}"]
    for name, value in script.defines.items():
        cmd += ["-D", f"{name}={value}"]
    cmd += ["-h", pg["host"], "-p", str(pg["port"]), "-U", pg["user"], pg["dbname"]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    spent: dict[int, tuple[float, float]] = {}
    with psycopg.connect(dbsetup.libpq_url(url), autocommit=True) as conn:
        while proc.poll() is None:
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' "
                "AND datname = current_database()"
            ):
                now = _backend_cpu(pid)
                if now is not None:
                    spent[pid] = (spent.get(pid, (now, now))[0], now)
            time.sleep(0.2)
    out = proc.stdout.read() if proc.stdout else ""
    tps = re.search(r"tps = ([\d.]+)", out)
    done = re.search(r"number of transactions actually processed: (\d+)", out)
    if tps is None or done is None:
        raise click.ClickException(f"pgbench failed:\n{out}")
    cpu = sum(last - first for first, last in spent.values())
    # CPU a backend used before its first sample is not counted: a slight underestimate
    return f"tps {float(tps[1]):,.0f}, PostgreSQL CPU {cpu / int(done[1]) * 1e6:.0f} µs per read"


def _pg_side(url: str, batches: list[int], patients: int, clients: int, seconds: int) -> None:
    db = Database(url, pool_size=1)
    try:
        service = PLLService(db, load.BENCH_KEY)
        with psycopg.connect(dbsetup.libpq_url(url)) as conn:
            row = conn.execute("SELECT patient_id, list_id FROM bench_patient WHERE n = 1")
            pid, lid = row.fetchone() or ("", "")
        ids = {"patient": pid, "list": lid, "entry": ""}
        for group in (False, True):
            reads = capture.read_statements(
                service, load.gp_access(), pid, lid, service.clock(), group_commit=group
            )
            for k in batches if group else [1]:
                script = capture.to_pgbench("read", reads, ids, batch=k)
                name = f"group commit, k = {k}" if group else "one statement"
                click.echo(f"{name}: {_pgbench(url, script, patients, clients, seconds)}")
    finally:
        db.dispose()


@click.command()
@click.option("--database-url", default=dbsetup.DEFAULT_URL, show_default=True)
@click.option("--patients", default=3000, show_default=True, type=click.IntRange(1))
@click.option("--reads", default=20000, show_default=True, type=click.IntRange(1))
@click.option("--clients", default=16, show_default=True, type=click.IntRange(1))
@click.option(
    "--read-path",
    default="group-commit",
    show_default=True,
    type=click.Choice(["group-commit", "one-statement"]),
)
@click.option("--profile", default=0, show_default=True, type=click.IntRange(0))
@click.option("--gc-freeze", is_flag=True, help="gc.freeze() after warming up, as pll serve does")
@click.option("--callgrind", is_flag=True, help="under callgrind: count the measured reads")
@click.option("--pgbench-batches", default="", help="PostgreSQL's side instead, e.g. 1,4,16")
@click.option("--pgbench-seconds", default=10, show_default=True, type=click.IntRange(1))
def main(
    database_url: str,
    patients: int,
    reads: int,
    clients: int,
    read_path: str,
    profile: int,
    gc_freeze: bool,
    callgrind: bool,
    pgbench_batches: str,
    pgbench_seconds: int,
) -> None:
    """CPU per read in-process (see the module's docstring)."""
    if pgbench_batches:
        batches = [int(k) for k in pgbench_batches.split(",")]
        _pg_side(database_url, batches, patients, clients, pgbench_seconds)
        return
    data = Path(tempfile.mkdtemp(prefix="pll-read-cpu-"))
    settings = Settings(
        data_dir=data,
        database_url=database_url,
        dev_auth=True,
        seal_interval=0,
        stats_interval=0,
        dispatch=False,
        group_commit=GroupCommit() if read_path == "group-commit" else None,
    )
    app = create_app(settings)
    token = issue(data, "gp")
    ids = dbsetup.patient_ids(database_url, patients)

    async def run() -> dict[str, Any]:
        await _drive(app, ids, token, min(2000, reads), clients)  # warm: pools, caches
        if gc_freeze:
            gc.collect()
            gc.freeze()
        first = _max_id(database_url)
        collections = sum(s["collections"] for s in gc.get_stats())
        # CPU time, not wall time: on a shared machine, being descheduled is not our cost
        profiler = cProfile.Profile(time.process_time) if profile else None
        if callgrind:
            _callgrind("--instr=on", "--zero")
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        statuses = await _drive(app, ids, token, reads, clients)
        if profiler is not None:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        instructions = _callgrind("--dump=reads", "--instr=off") if callgrind else None
        collections = sum(s["collections"] for s in gc.get_stats()) - collections
        await app.state.reads.close()
        rows, writers = _writers(database_url, first)
        if profiler is not None:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(profile)
        return {
            "read_path": read_path,
            "reads": len(statuses),
            "not_200": sum(1 for s in statuses if s != 200),
            "cpu_us_per_read": round(cpu / len(statuses) * 1e6, 1),
            "wall_reads_per_s": round(len(statuses) / wall),
            "audit_rows": rows,
            "writing_transactions": writers,
            "rows_per_commit": round(rows / writers, 2) if writers else None,
            "gc_collections": collections,
            "profiled": bool(profile),
            **(
                {"instructions_per_read": round(instructions / len(statuses))}
                if instructions is not None
                else {}
            ),
        }

    result = uvloop.run(run())
    click.echo(result)


if __name__ == "__main__":
    main()
