"""PLL benchmark: the real server under wrk, side by side with pgbench running the server's SQL.

    .venv/bin/python bench/run_bench.py                       # 100,000 patients, 32 clients, 20 s
    .venv/bin/python bench/run_bench.py --patients 200 --seconds 3    # smoke run, about a minute

See bench/README.md for what is measured and how faithful the pgbench side is.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import click
import psycopg
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pll.services.lists import PLLService
from pll.store.db import Database
from pllbench import capture, dbsetup, idle, load
from pllbench.cpu import wait_quiet as _wait_quiet
from pllbench.drivers import Measured, PgConn, Server, run_pgbench, run_wrk

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


def _git() -> dict[str, Any]:
    def run(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args],
                cwd=BENCH.parent,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    return {
        "commit": run("rev-parse", "HEAD"),
        "dirty_src": bool(run("status", "--porcelain", "src")),
    }


def _count(url: str, table: str) -> int:
    with psycopg.connect(dbsetup.libpq_url(url)) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # table names are ours
        return int(row[0]) if row else 0


def _max_id(url: str, table: str) -> int:
    with psycopg.connect(dbsetup.libpq_url(url)) as conn:
        row = conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()
        return int(row[0]) if row else 0


def _transactions(url: str, table: str, after_id: int) -> int:
    """How many transactions wrote the rows after ``after_id`` (a group commit's batch is
    one: its rows share their ``xmin``)."""
    with psycopg.connect(dbsetup.libpq_url(url)) as conn:
        row = conn.execute(
            f"SELECT count(DISTINCT xmin::text) FROM {table} WHERE id > %s", (after_id,)
        ).fetchone()
        return int(row[0]) if row else 0


def _prepare_database(
    pll: Path, url: str, patients: int, reuse: bool, batch_size: int, processes: int, seed: int
) -> dict[str, Any]:
    if reuse:
        created = dbsetup.create_database_if_missing(url)
    else:
        dbsetup.recreate_database(url)
        created = True
    console.print(
        f"[bold]database[/] {dbsetup.conn_parts(url)['dbname']}: "
        f"{'created' if created else 'reused'}; migrating"
    )
    db = Database(url)
    try:
        db.upgrade()
    finally:
        db.dispose()
    dbsetup.create_helpers(url)
    before = dbsetup.patient_count(url)
    info: dict[str, Any] = {"already_loaded": before}
    # pll import generate loads what is missing (it records its batches), builds the
    # indexes after a load into empty tables, and runs VACUUM (ANALYZE)
    console.print(
        f"pll import generate --patients {patients:,} --batch {batch_size} "
        f"--processes {processes} --seed {seed}"
    )
    data_dir = Path(tempfile.gettempdir()) / "pll-bench-import"
    info["load_seconds"] = round(
        load.import_patients(pll, url, patients, seed, batch_size, processes, data_dir), 1
    )
    info["numbered_now"] = load.record_numbers(url, patients)
    info["patients_in_database"] = dbsetup.patient_count(url)
    return info


def _write_pool_file(path: Path, url: str) -> int:
    rows = dbsetup.write_pool_rows(url)
    with path.open("w") as f:
        for entry_id, version, resource in rows:
            before, after = capture.put_template(resource)
            dose = capture.current_dose(resource)
            f.write(f"{entry_id}\t{version}\t{dose}\t{before}\t{after}\n")
    return len(rows)


def _settle(url: str, limit: float = 15) -> None:
    """Wait until no other session of the database is busy: when wrk stops, the server still
    finishes the requests that were in flight, and the write pool must see their versions."""
    deadline = time.monotonic() + limit
    quiet = 0
    with psycopg.connect(dbsetup.libpq_url(url), autocommit=True) as conn:
        while time.monotonic() < deadline and quiet < 3:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state <> 'idle'"
            ).fetchone()
            quiet = quiet + 1 if row and row[0] == 0 else 0
            time.sleep(0.1)


def _quiet(limit: int) -> dict[str, Any] | None:
    if not limit:
        return None
    quiet, busy = _wait_quiet(limit)
    if not quiet:
        console.print(f"[yellow]the machine is still busy ({busy} cores); measuring anyway[/]")
    return {"quiet": quiet, "busy_cores": busy}


def _row(m: Measured) -> dict[str, Any]:
    out = asdict(m)
    for k in ("rate", "p50_ms", "p99_ms", "mean_ms"):
        if out[k] is not None:
            out[k] = round(out[k], 3)
    return out


def _sealing(sealings: list[dict[str, float]]) -> dict[str, float]:
    """The sealings of one run added up: every audit record its measurements wrote."""
    records = sum(s["records"] for s in sealings)
    seconds = round(sum(s["seconds"] for s in sealings), 2)
    return {
        "records": records,
        "seconds": seconds,
        "records_per_second": round(records / seconds) if seconds else 0,
        "runs": len(sealings),
    }


def _fmt(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


@dataclass
class Run:
    """What one benchmark run needs, decided once from the options."""

    url: str
    patients: int
    concurrency: int
    seconds: int
    warm: int
    wrk_threads: int
    pgbench_threads: int
    wait_quiet: int
    run_dir: Path
    pg: PgConn
    idle_wait: float = 300.0
    #: every sealing of the audit records measurements left (pllbench.idle)
    sealings: list[dict[str, float]] = field(default_factory=lambda: [])


def _idle(run: Run, server: Server, kind: str, side: str) -> dict[str, Any]:
    """Wait for the server's background work to be idle before a measurement (sealing what
    waits); says how long it waited."""
    waited = idle.wait_idle(server, run.url, run.idle_wait)
    if waited["sealed"]:
        run.sealings.append(waited["sealed"])
    console.print(idle.describe(kind, side, waited))
    return waited


def _measure(
    run: Run,
    kind: str,
    server: Server,
    token: str,
    files: dict[str, Path],
    script: capture.Script,
    per_client: int,
    rescript: Callable[[int], capture.Script] | None = None,
) -> dict[str, Any]:
    """One workload: the server under wrk, then PostgreSQL alone under pgbench.

    ``rescript(k)``: the read's pgbench script for group commit batches of ``k`` rows, ``k``
    being the mean batch the server wrote in its measurement (rows / committing
    transactions), so pgbench commits as often per read as the server did."""
    if kind == "read":
        lua, table, data = "read.lua", "audit_event", files["patients"]
    else:
        lua, table, data = "write.lua", "outbox", files["pool"]
    wrk_args = [str(data), token, str(run.wrk_threads)]
    c, t = run.concurrency, run.wrk_threads

    # the server, under wrk
    if run.warm:
        if kind == "write":
            _write_pool_file(data, run.url)
        console.print(f"{kind}: server warm-up {run.warm}s")
        run_wrk(server, lua, wrk_args, run.warm, c, t, None)
        _settle(run.url)
    if kind == "write":
        _write_pool_file(data, run.url)  # the versions as they are now
    background = _idle(run, server, kind, "server")
    dbsetup.checkpoint(run.url)
    before = _quiet(run.wait_quiet)
    rows = _count(run.url, table)
    first_id = _max_id(run.url, table)
    console.print(f"{kind}: server {run.seconds}s: wrk -t{t} -c{c}")
    srv = run_wrk(server, lua, wrk_args, run.seconds, c, t, run.run_dir / f"wrk-{kind}.txt")
    _settle(run.url)
    written = _count(run.url, table) - rows
    srv.detail["rows_written"] = {table: written}
    srv.detail["machine_before"] = before
    srv.detail["background"] = background
    # Every request must have written its row (an audit row per read, an outbox event per
    # change); a 200 to a PUT that changed nothing writes none and would flatter the server.
    srv.detail["requests_without_row"] = max(0, srv.count - written)
    path = run.run_dir / f"{kind}.sql"
    if rescript is not None:
        batches = _transactions(run.url, table, first_id)
        k = max(1, round(written / batches)) if batches else 1
        srv.detail["audit_batches"] = {"rows": written, "batches": batches, "pgbench_batch": k}
        console.print(f"{kind}: the server wrote {written:,} audit rows in {batches:,} batches")
        script = rescript(k)
        path.write_text(script.text)
        (run.run_dir / f"{kind}.defines").write_text(
            "".join(f"{key}={v}\n" for key, v in script.defines.items())
        )

    # PostgreSQL alone, under pgbench with the server's SQL
    defines = dict(
        script.defines,
        npatients=str(run.patients),
        nclients=str(c),
        per_client=str(per_client),
    )
    j = run.pgbench_threads
    if run.warm:
        console.print(f"{kind}: pgbench warm-up {run.warm}s")
        run_pgbench(run.pg, path, defines, run.warm, c, j, None)
    background = _idle(run, server, kind, "pgbench")
    dbsetup.checkpoint(run.url)
    before = _quiet(run.wait_quiet)
    rows = _count(run.url, table)
    console.print(f"{kind}: pgbench {run.seconds}s: -M prepared -c{c} -j{j}")
    with server.paused():  # PostgreSQL alone: the server's background work waits
        pgb = run_pgbench(run.pg, path, defines, run.seconds, c, j, run.run_dir / f"pgbench-{kind}")
    pgb.detail["rows_written"] = {table: _count(run.url, table) - rows}
    pgb.detail["machine_before"] = before
    pgb.detail["background"] = background
    return {
        "server": _row(srv),
        "pgbench": _row(pgb),
        "ratio": round(srv.rate / pgb.rate, 3) if pgb.rate else None,
    }


def _print_waits(kind: str, result: dict[str, Any]) -> None:
    """What PostgreSQL's active sessions waited for, on average, in each measurement."""
    for side in ("server", "pgbench"):
        waited = result[side]["detail"].get("postgres_waits", {}).get("average_sessions")
        if waited:
            shown = ", ".join(f"{name} {n:.2f}" for name, n in waited.items())
            console.print(f"{kind}: PostgreSQL sessions by state during {side}: {shown}")


def _report(results: dict[str, Any], patients: int, concurrency: int, seconds: int) -> list[str]:
    """Print the result tables; returns the runs other programs disturbed."""
    title = f"PLL benchmark: {patients:,} patients, {concurrency} clients, {seconds}s each"
    table = Table(title=title)
    columns = ["workload", "server req/s", "p50 ms", "p99 ms", "errors", "pgbench tps"]
    columns += ["lat avg ms", "p50 ms", "p99 ms", "errors", "server/pgbench"]
    for col in columns:
        table.add_column(col, justify="right")
    for kind, r in results.items():
        s, p = r["server"], r["pgbench"]
        table.add_row(
            kind,
            _fmt(s["rate"], 0),
            _fmt(s["p50_ms"]),
            _fmt(s["p99_ms"]),
            str(s["errors"]),
            _fmt(p["rate"], 0),
            _fmt(p["mean_ms"]),
            _fmt(p["p50_ms"]),
            _fmt(p["p99_ms"]),
            str(p["errors"]),
            _fmt(r["ratio"]),
        )
    console.print(table)
    for kind, r in results.items():
        split = r["server"]["detail"].get("connections_per_worker")
        if split:
            shares = "/".join(str(n) for n in split)
            console.print(f"{kind}: connections per server worker {shares} (1 s into the run)")
        parts = r["server"]["detail"].get("server_cpu_parts")
        rate = r["server"]["rate"]
        if parts and rate:
            each = ", ".join(
                f"{name} {cores:.2f} ({cores / rate * 1000:.2f} ms)"
                for name, cores in parts.items()
            )
            console.print(f"{kind}: server cores by part (CPU a request): {each}")
        _print_waits(kind, r)
    cpu = Table(title=f"CPU in use during each measurement (cores, of {os.cpu_count()})")
    for col in ("run", "server", "load generator", "postgres", "other", "whole machine"):
        cpu.add_column(col, justify="right")
    noisy = []
    for kind, r in results.items():
        for side, label in (("server", "wrk"), ("pgbench", "pgbench")):
            c = r[side]["cpu"]
            other = c.get("other", 0.0)
            if other > 0.2:
                noisy.append(f"{kind} {side}")
            cpu.add_row(
                f"{kind} {side}",
                _fmt(c.get("server")) if side == "server" else "–",
                f"{_fmt(c.get('driver'))} ({label})",
                _fmt(c.get("postgres")),
                _fmt(other),
                _fmt(c.get("machine")),
            )
    console.print(cpu)
    for kind, r in results.items():
        missing = r["server"]["detail"]["requests_without_row"]
        if missing:
            console.print(
                f"[red]{kind}: {missing} requests answered without writing their row "
                "(a PUT that changed nothing?): the server numbers are not valid[/]"
            )
    if noisy:
        console.print(
            f"[yellow]warning: other programs used CPU during {', '.join(noisy)} "
            "(see 'other'); those numbers are not clean[/]"
        )
    return noisy


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--patients", default=100_000, show_default=True, type=click.IntRange(2))
@click.option(
    "--concurrency",
    default=32,
    show_default=True,
    type=click.IntRange(1, 90),
    help="HTTP connections (wrk -c) and pgbench clients (-c)",
)
@click.option(
    "--seconds", default=20, show_default=True, type=click.IntRange(1), help="per workload"
)
@click.option(
    "--warmup",
    default=None,
    type=click.IntRange(0),
    help="seconds of warm-up before each measurement [default: min(5, --seconds)]",
)
@click.option(
    "--reuse",
    is_flag=True,
    help="keep the database; load only patients that are missing (resumes a stopped load)",
)
@click.option("--database-url", default=dbsetup.DEFAULT_URL, show_default=True)
@click.option("--workloads", default="read,write", show_default=True)
@click.option("--server-workers", default=2, show_default=True, type=click.IntRange(1))
@click.option("--wrk-threads", default=1, show_default=True, type=click.IntRange(1))
@click.option("--pgbench-threads", default=2, show_default=True, type=click.IntRange(1))
@click.option(
    "--write-pool",
    default=5000,
    show_default=True,
    type=click.IntRange(1),
    help="entries the write workload changes (one per list)",
)
@click.option(
    "--batch-size",
    default=2000,
    show_default=True,
    type=click.IntRange(1),
    help="patients per loading transaction (pll import generate --batch)",
)
@click.option("--load-processes", default=2, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=2026, show_default=True, type=int)
@click.option("--load-only", is_flag=True, help="create/load the database, then stop")
@click.option(
    "--wait-quiet",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="before each measurement, wait up to this many seconds for the machine to be idle",
)
@click.option(
    "--idle-wait",
    default=300,
    show_default=True,
    type=click.FloatRange(0),
    help="before each measurement, wait up to this many seconds for the server's background "
    "work to be idle (audit records sealed, statistics counted)",
)
@click.option("--results-dir", default=str(BENCH / "results"), show_default=True, type=click.Path())
@click.option(
    "--read-path",
    default="one-statement",
    show_default=True,
    type=click.Choice(["group-commit", "one-statement"]),
    help="how the server logs a read (PLL_AUDIT_GROUP_COMMIT); pgbench runs the same SQL",
)
def main(
    patients: int,
    concurrency: int,
    seconds: int,
    warmup: int | None,
    reuse: bool,
    database_url: str,
    workloads: str,
    server_workers: int,
    wrk_threads: int,
    pgbench_threads: int,
    write_pool: int,
    batch_size: int,
    load_processes: int,
    seed: int,
    load_only: bool,
    wait_quiet: int,
    idle_wait: float,
    results_dir: str,
    read_path: str,
) -> None:
    """Load N patients, then measure the server (wrk) and pgbench with the server's own SQL."""
    for tool in ("wrk", "pgbench"):
        if shutil.which(tool) is None:
            raise click.ClickException(f"`{tool}` is not installed (apt-get install -y {tool})")
    kinds = [w.strip() for w in workloads.split(",") if w.strip()]
    if not kinds or not set(kinds) <= {"read", "write"}:
        raise click.ClickException("--workloads takes read and/or write")
    url = database_url
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = Path(results_dir)
    run = Run(
        url=url,
        patients=patients,
        concurrency=concurrency,
        seconds=seconds,
        warm=min(5, seconds) if warmup is None else warmup,
        wrk_threads=wrk_threads,
        pgbench_threads=pgbench_threads,
        wait_quiet=wait_quiet,
        run_dir=out_dir / stamp,
        pg=PgConn(**dbsetup.conn_parts(url)),
        idle_wait=idle_wait,
    )
    pll = _pll_command()
    started = time.perf_counter()

    # 1. the database and its data
    load_info = _prepare_database(pll, url, patients, reuse, batch_size, load_processes, seed)
    console.print(f"database ready: {load_info}")
    if load_only:
        return
    run.run_dir.mkdir(parents=True, exist_ok=True)

    # 2. the server's SQL for the two requests, as pgbench scripts
    db = Database(url, pool_size=1)
    try:
        reads, writes, ids = capture.capture(
            db,
            PLLService(db, load.BENCH_KEY),
            load.gp_access(),
            group_commit=read_path == "group-commit",
        )
    finally:
        db.dispose()
    scripts = {
        "read": capture.to_pgbench("read", reads, ids),
        "write": capture.to_pgbench("write", writes, ids),
    }
    for name, script in scripts.items():
        (run.run_dir / f"{name}.sql").write_text(script.text)
        # the captured values pgbench gets with -D, for reruns (bench/auth_costs.py)
        (run.run_dir / f"{name}.defines").write_text(
            "".join(f"{k}={v}\n" for k, v in script.defines.items())
        )
    pool_size = dbsetup.build_write_pool(url, patients, min(write_pool, patients - 1), seed)
    per_client = pool_size // concurrency
    if "write" in kinds and per_client < 1:
        raise click.ClickException(f"the write pool ({pool_size}) is smaller than --concurrency")
    console.print(
        f"captured {len(reads)} statements for a read and {len(writes)} for a write "
        f"(scripts in {run.run_dir}); write pool {pool_size} entries"
    )

    # 3. the server and the measurements
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pll-bench-") as tmp:
        tmpdir = Path(tmp)
        server = Server(pll, url, tmpdir / "data", server_workers, run.run_dir / "server.log")
        server.env["PLL_AUDIT_GROUP_COMMIT"] = "1" if read_path == "group-commit" else "0"
        console.print(f"starting `pll serve --port {server.port} --workers {server_workers}`")
        server.start()
        try:
            token = server.token()
            files = {"patients": tmpdir / "patients.txt", "pool": tmpdir / "pool.tsv"}
            files["patients"].write_text("\n".join(dbsetup.patient_ids(url, patients)) + "\n")
            for kind in kinds:
                rescript = None
                if kind == "read" and read_path == "group-commit":
                    rescript = partial(capture.to_pgbench, "read", reads, ids)
                results[kind] = _measure(
                    run, kind, server, token, files, scripts[kind], per_client, rescript
                )
        finally:
            server.stop()
        # the audit chain's cost, apart: what the server's sealer does about once a second
        run.sealings.append(server.seal())
        sealing = _sealing(run.sealings)
        console.print(
            f"sealing the audit records the runs wrote: {sealing['records']:,} in "
            f"{sealing['seconds']} s ({sealing['records_per_second']:,}/s, one process)"
        )

    # 4. the report
    noisy = _report(results, patients, concurrency, seconds)
    report = {
        "timestamp": stamp,
        "options": {
            "patients": patients,
            "concurrency": concurrency,
            "seconds": seconds,
            "warmup": run.warm,
            "reuse": reuse,
            "server_workers": server_workers,
            "wrk_threads": wrk_threads,
            "pgbench_threads": pgbench_threads,
            "write_pool": pool_size,
            "batch_size": batch_size,
            "load_processes": load_processes,
            "seed": seed,
            "wait_quiet": wait_quiet,
            "idle_wait": idle_wait,
        },
        "database": {
            **load_info,
            "url": dbsetup.libpq_url(url).split("@")[-1],
            "postgres": dbsetup.server_version(url),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "git": _git(),
        "captured_sql": {"read": capture.describe(reads), "write": capture.describe(writes)},
        "results": results,
        "audit_sealing": sealing,
        "noisy_runs": noisy,
        "files": str(run.run_dir),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    out_file = out_dir / f"{stamp}.json"
    out_file.write_text(json.dumps(report, indent=2, default=str) + "\n")
    console.print(f"results: {out_file}")
    bad = [
        k
        for k, r in results.items()
        if r["server"]["errors"]
        or r["pgbench"]["errors"]
        or r["server"]["detail"]["requests_without_row"]
    ]
    if bad:
        console.print(f"[red]errors in: {', '.join(bad)}[/]")
        sys.exit(1)


if __name__ == "__main__":
    main()
