"""Read throughput with 0, 1 and 2 read replicas serving (issue 21).

    .venv/bin/python bench/replica_bench.py                          # 20,000 patients, 20 s each
    .venv/bin/python bench/replica_bench.py --patients 2000 --seconds 10    # a small run

The bench makes its own PostgreSQL 15 primary (initdb on a free loopback port, in a folder
of its own, on disk unless ``--where`` says otherwise), loads N synthetic patients into it
(``pll import generate``), then adds two hot standbys with ``pg_basebackup -R``
(:mod:`tests.integration.replica_cluster`, the tests' cluster code). For each setting it
starts ``pll serve`` on the primary with ``PLL_READ_DATABASE_URL`` naming 0, 1 or 2 of the
standbys and drives ``GET /fhir/List?patient=<random>&_include=List:item`` with wrk
(``bench/lua/read.lua``, as ``run_bench.py`` does). Both standbys run (and replay the
primary's WAL) in every setting; only the number serving reads changes. Everything is
stopped and removed at the end, also on failure; the main cluster on 5432 is not used.

Reported per setting: requests per second, p50/p99 latency, errors, the share of reads a
replica served (transactions counted on the standbys, ``pg_stat_database.xact_commit``,
against the requests), the audit records written on the primary (one per read), and CPU
in cores: the server's processes, and each PostgreSQL server of the set (its postmaster's
processes, sampled from /proc).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import httpx
import psycopg
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/integration's clusters

from tests.integration.replica_cluster import Node, ReplicaCluster, replica_cluster

from pll.store.db import Database
from pllbench import dbsetup, load
from pllbench.cpu import _stat
from pllbench.drivers import Server, run_wrk

BENCH = Path(__file__).resolve().parent
console = Console(width=None if sys.stdout.isatty() else 150)


def _pll_command() -> Path:
    here = Path(sys.executable).parent / "pll"
    if here.exists():
        return here
    found = shutil.which("pll")
    if not found:
        raise click.ClickException("the `pll` command was not found (run with .venv/bin/python)")
    return Path(found)


def _postmaster(node: Node) -> int:
    return int((node.directory / "postmaster.pid").read_text().split("\n", 1)[0])


class NodeCpu:
    """CPU seconds of each PostgreSQL server's processes (its postmaster and children),
    sampled from /proc in a thread, as cores busy over the measurement."""

    def __init__(self, nodes: dict[str, Node], interval: float = 0.25) -> None:
        self.masters = {_postmaster(node): name for name, node in nodes.items()}
        self.interval = interval
        self._base: dict[int, float] = {}
        self._last: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self.result: dict[str, float] = {}

    def _sample(self, first: bool) -> None:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            found = _stat(pid)
            if found is None:
                continue
            _, parent, cpu = found
            name = self.masters.get(pid) or self.masters.get(parent)
            if name is None:
                continue
            if pid not in self._base:
                self._base[pid] = cpu if first else 0.0
            self._last[pid] = (name, cpu)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample(False)

    def __enter__(self) -> NodeCpu:
        self._t0 = time.perf_counter()
        self._sample(True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(False)
        wall = time.perf_counter() - self._t0
        used = dict.fromkeys(self.masters.values(), 0.0)
        for pid, (name, cpu) in self._last.items():
            used[name] += max(0.0, cpu - self._base.get(pid, 0.0))
        self.result = {name: round(seconds / wall, 3) for name, seconds in used.items()}


def _xacts(node: Node) -> int:
    row = node.sql("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    return int(row[0]) if row and row[0] is not None else 0


def _audit_rows(url: str) -> int:
    with psycopg.connect(dbsetup.libpq_url(url)) as conn:
        row = conn.execute("SELECT count(*) FROM audit_event").fetchone()
        return int(row[0]) if row else 0


def _serving(server: Server, n: int, timeout: float = 60) -> None:
    """Wait until the server's /metrics shows ``n`` replicas serving (loopback may scrape)."""
    deadline = time.monotonic() + timeout
    while True:
        text = httpx.get(server.base + "/metrics", timeout=10).text
        serving = sum(
            1
            for line in text.splitlines()
            if line.startswith("pll_read_replica_serving{") and line.endswith(" 1.0")
        )
        if serving == n:
            return
        if time.monotonic() > deadline:
            raise click.ClickException(f"{n} replica(s) not serving within {timeout}s")
        time.sleep(0.2)


def _load(cluster: ReplicaCluster, pll: Path, patients: int, seed: int, processes: int) -> float:
    url = cluster.primary.url
    db = Database(url)
    try:
        db.upgrade()
    finally:
        db.dispose()
    dbsetup.create_helpers(url)
    data_dir = Path(tempfile.mkdtemp(prefix="pll-replica-bench-import-"))
    try:
        seconds = load.import_patients(pll, url, patients, seed, 1000, processes, data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    load.record_numbers(url, patients)
    dbsetup.vacuum_analyze(url)
    dbsetup.checkpoint(url)
    return seconds


def _measure(
    cluster: ReplicaCluster,
    pll: Path,
    serving: int,
    ids: Path,
    tmp: Path,
    *,
    seconds: int,
    warmup: int,
    connections: int,
    threads: int,
    workers: int,
) -> dict[str, Any]:
    url = cluster.primary.url
    used = cluster.replicas[:serving]
    server = Server(pll, url, tmp / "data", workers, tmp / f"server-{serving}.log")
    server.env["PLL_READ_DATABASE_URL"] = " ".join(node.url for node in used)
    # Counted from before the server starts to after it stops: a backend reports its
    # statistics when it ends, at the latest, so nothing is left out.
    before = {n.port: _xacts(n) for n in cluster.replicas}
    rows = _audit_rows(url)
    server.start()
    try:
        token = server.token()
        args = [str(ids), token, str(threads)]
        if used:
            _serving(server, serving)
        warm = (
            run_wrk(server, "read.lua", args, warmup, connections, threads, None)
            if warmup
            else None
        )
        nodes = {"primary": cluster.primary} | {
            f"replica{i}": n for i, n in enumerate(cluster.replicas, start=1)
        }
        with NodeCpu(nodes) as cpu:
            measured = run_wrk(server, "read.lua", args, seconds, connections, threads, None)
    finally:
        server.stop()
    requests = measured.count + (warm.count if warm else 0)
    replica_xacts = sum(_xacts(n) - before[n.port] for n in cluster.replicas)
    written = _audit_rows(url) - rows
    return {
        "replicas_serving": serving,
        "rate": round(measured.rate, 1),
        "p50_ms": round(measured.p50_ms or 0, 2),
        "p99_ms": round(measured.p99_ms or 0, 2),
        "requests": measured.count,
        "errors": measured.errors + (warm.errors if warm else 0),
        # warm-up and measurement together, as the counts below cover both
        "requests_with_warmup": requests,
        "audit_rows_on_primary": written,
        # one per replica-served read, and the lag checker's few queries
        "replica_transactions": replica_xacts,
        "served_by_replicas": round(min(1.0, replica_xacts / requests), 3) if requests else 0.0,
        "cpu_cores": {**measured.cpu, "nodes": cpu.result},
        # CPU time per request, which other work on the machine disturbs far less than the
        # rate: the server's processes, and each PostgreSQL server of the set
        "cpu_ms_per_request": {
            name: round(cores * 1000 / measured.rate, 3) if measured.rate else None
            for name, cores in {"server": measured.cpu["server"], **cpu.result}.items()
        },
    }


@click.command()
@click.option("--patients", default=20_000, show_default=True, type=click.IntRange(10))
@click.option("--seconds", default=20, show_default=True, type=click.IntRange(1))
@click.option("--warmup", default=3, show_default=True, type=click.IntRange(0))
@click.option("--connections", default=32, show_default=True, type=click.IntRange(1))
@click.option("--wrk-threads", default=2, show_default=True, type=click.IntRange(1))
@click.option("--server-workers", default=2, show_default=True, type=click.IntRange(1))
@click.option("--settings", "counts", default="0,1,2", show_default=True, help="replicas serving")
@click.option("--load-processes", default=2, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=2026, show_default=True, type=int)
@click.option(
    "--where",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="folder for the PostgreSQL servers' data (default: the temporary folder, on disk)",
)
@click.option("--results-dir", default=str(BENCH / "results"), show_default=True, type=click.Path())
def main(
    patients: int,
    seconds: int,
    warmup: int,
    connections: int,
    wrk_threads: int,
    server_workers: int,
    counts: str,
    load_processes: int,
    seed: int,
    where: Path | None,
    results_dir: str,
) -> None:
    """Measure list reads with 0, 1 and 2 read replicas serving."""
    if shutil.which("wrk") is None:
        raise click.ClickException("`wrk` is not installed (apt-get install -y wrk)")
    settings = [int(c) for c in counts.split(",") if c.strip()]
    if not settings or not set(settings) <= {0, 1, 2}:
        raise click.ClickException("--settings takes 0, 1 and/or 2")
    pll = _pll_command()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    started = time.perf_counter()
    results = []
    with (
        replica_cluster(replicas=0, where=where or Path(tempfile.gettempdir())) as cluster,
        tempfile.TemporaryDirectory(prefix="pll-replica-bench-") as tmpdir,
    ):
        tmp = Path(tmpdir)
        console.print(f"primary on port {cluster.primary.port}: loading {patients:,} patients")
        load_seconds = _load(cluster, pll, patients, seed, load_processes)
        for _ in range(max(settings)):
            node = cluster.add_replica()
            cluster.caught_up(node)
            console.print(f"replica on port {node.port} caught up")
        ids = tmp / "patients.txt"
        ids.write_text("\n".join(dbsetup.patient_ids(cluster.primary.url, patients)) + "\n")
        for serving in settings:
            console.print(f"{serving} replica(s) serving: wrk -c{connections} {seconds}s")
            results.append(
                _measure(
                    cluster,
                    pll,
                    serving,
                    ids,
                    tmp,
                    seconds=seconds,
                    warmup=warmup,
                    connections=connections,
                    threads=wrk_threads,
                    workers=server_workers,
                )
            )
    table = Table(title=f"List reads, {patients:,} patients, {connections} connections")
    columns = ("replicas", "req/s", "p50 ms", "p99 ms", "errors", "by replicas")
    for column in (*columns, "CPU ms/request", "cores busy (others)"):
        table.add_column(column, justify="right")
    for r in results:
        cpu = r["cpu_cores"]
        per = " ".join(f"{k} {v}" for k, v in r["cpu_ms_per_request"].items())
        table.add_row(
            str(r["replicas_serving"]),
            f"{r['rate']:,.0f}",
            f"{r['p50_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
            str(r["errors"]),
            f"{r['served_by_replicas']:.0%}",
            per,
            f"{cpu['machine']} ({cpu['other']})",
        )
    console.print(table)
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "timestamp": stamp,
        "bench": "replica_bench",
        "options": {
            "patients": patients,
            "seconds": seconds,
            "warmup": warmup,
            "connections": connections,
            "wrk_threads": wrk_threads,
            "server_workers": server_workers,
            "seed": seed,
        },
        "load_seconds": round(load_seconds, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "results": results,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    path = out / f"replicas-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"results: {path}")
    if any(r["errors"] or r["audit_rows_on_primary"] < r["requests_with_warmup"] for r in results):
        console.print("[red]errors, or reads without their audit record[/]")
        sys.exit(1)


if __name__ == "__main__":
    main()
