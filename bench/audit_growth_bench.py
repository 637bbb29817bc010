"""The audit trail at 100,000,000 rows (issue 20): reads and audit inserts stay flat.

    .venv/bin/python bench/audit_growth_bench.py                        # 1M, 10M, 30M, 100M
    .venv/bin/python bench/audit_growth_bench.py --steps 1000000,10000000 --seconds 10
    .venv/bin/python bench/audit_growth_bench.py --steps 20000,50000 --seconds 2   # smoke

On a PostgreSQL database of its own (``pll_bench_audit``: dropped and made again unless
``--reuse``, dropped at the end unless ``--keep``), migrated by ``Database.upgrade()`` so the
trail is partitioned by month (migration 0023), with ``--patients`` patients and lists
seeded in SQL (``pllbench.seed``), the trail grows in steps to each of ``--steps`` rows:
``INSERT … SELECT generate_series`` in transactions of ``--chunk`` rows, each row a sealed
read record of the size PLL writes (the gp persona's actor JSON, list and patient ids of the
seeded patients, a 64-hex MAC and chain hash), recorded_at spread evenly over the 24 months
up to now (so the older months fill as the trail grows, ~4 million rows a month at 100M).
At each step, after ``ANALYZE`` and a ``CHECKPOINT``:

The months of the span get their partitions first, as the sealer would have made them.

- **read**: pgbench, ``--clients`` clients for ``--seconds`` (after a warm-up), running the
  hot read exactly as the server does (``pll.store.audited_read``: the list document and
  its audit row in one statement, taken with its parameters by ``pllbench.capture``);
- **insert**: pgbench, the same clients, one audit row a transaction (the record
  ``pll.store.audit_log.append`` writes for every other access), commit-bound;
- **bulk insert**: ``--bulk`` rows in one ``INSERT … SELECT`` into this month: the index work
  an insert costs, without the commit;
- **seal**: ``AuditTrail.seal()`` linking every record the step's measurements wrote
  (records/s): finds unsealed rows by the per-partition partial index;
- **access log**: ``audit_log.for_patient`` (a patient's "who looked at my list" page, which
  reads every partition) for 200 patients in-process, median and p99.

Before each chunk free disk space is checked (``--min-free-gb``, 25): below it the growth
stops and the step is measured at the size reached. Results: a table, and JSON in
``bench/results/audit-growth-<time>.json`` written after every step.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from pll.services.audit import AuditTrail
from pll.services.lists import PLLService
from pll.store import audit_log
from pll.store.audit_partitions import first_of_month
from pll.store.db import Database
from pllbench import capture, dbsetup, load, seed
from pllbench.drivers import PgConn, run_pgbench

HERE = Path(__file__).resolve().parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/pll_bench_audit"
#: Ids of the grown rows are their row numbers; rows the measurements write take ids from
#: the sequence, moved past every id the growth will use.
SEQUENCE_FLOOR = 1_000_000_000
MONTHS = 24

_GROW = """
INSERT INTO audit_event (id, recorded_at, actor, action, resource_type, resource_id,
                         patient_id, basis, outcome, flag, mac, chain_seq, chain_hash)
SELECT k,
       %(start)s::timestamp + ((k - 1) * %(gap_us)s) * interval '1 microsecond',
       replace(%(actor)s, %(hpr)s, (%(hpr_base)s + k %% 4000)::text),
       'read', 'List',
       'l' || lpad((1 + (k * 7919) %% %(patients)s)::text, 9, '0'),
       'p' || lpad((1 + (k * 7919) %% %(patients)s)::text, 9, '0'),
       %(basis)s, '0', NULL,
       md5(k::text) || md5((k + 1)::text),
       %(seq0)s + k - %(lo)s + 1,
       md5((k + 2)::text) || md5((k + 3)::text)
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS k
"""

_INSERT_ONE = """
INSERT INTO audit_event (recorded_at, actor, action, resource_type, resource_id, patient_id,
                         basis, outcome, flag, mac)
VALUES (now() AT TIME ZONE 'UTC', :actor, 'read', 'List',
        'l' || lpad(:n::text, 9, '0'), 'p' || lpad(:n::text, 9, '0'), :basis, '0', NULL,
        md5(random()::text) || md5(random()::text));
"""

_BULK = """
INSERT INTO audit_event (recorded_at, actor, action, resource_type, resource_id, patient_id,
                         basis, outcome, flag, mac)
SELECT now() AT TIME ZONE 'UTC', %(actor)s, 'read', 'List',
       'l' || lpad((1 + k %% %(patients)s)::text, 9, '0'),
       'p' || lpad((1 + k %% %(patients)s)::text, 9, '0'), %(basis)s, '0', NULL,
       md5(k::text) || md5((k + 7)::text)
FROM generate_series(1, %(rows)s) AS k
"""


def _free_gb() -> float:
    return shutil.disk_usage("/").free / 1e9


def _sql(url: str, sql: str, params: dict[str, Any] | None = None) -> Any:
    with psycopg.connect(dbsetup.libpq_url(url), autocommit=True) as conn:
        cur = conn.execute(sql, params)  # type: ignore[arg-type]
        return cur.fetchone() if cur.description else None


def _setup(url: str, patients: int, reuse: bool) -> None:
    if reuse and dbsetup.database_exists(url):
        return
    dbsetup.recreate_database(url)
    db = Database(url, pool_size=1)
    try:
        db.upgrade()
        seed.seed_register(db, patients)
        seed.seed_patients(db, 1, patients)
    finally:
        db.dispose()
    _sql(
        url,
        "CREATE TABLE bench_patient AS SELECT n, 'p' || lpad(n::text, 9, '0') AS patient_id, "
        "'l' || lpad(n::text, 9, '0') AS list_id FROM generate_series(1, %(p)s) AS n",
        {"p": patients},
    )
    _sql(url, "ALTER TABLE bench_patient ADD PRIMARY KEY (n)")
    _sql(url, "SELECT setval('audit_event_id_seq', %(v)s)", {"v": SEQUENCE_FLOOR})
    _sql(url, "ANALYZE")


def _grown(url: str) -> int:
    row = _sql(
        url, "SELECT COALESCE(max(id), 0) FROM audit_event WHERE id < %(f)s", {"f": SEQUENCE_FLOOR}
    )
    return int(row[0])


def _history(url: str, start: datetime, now: datetime) -> None:
    """The partitions of the two years behind us, as the sealer made them month by month
    (without them the grown rows would wait in the default partition)."""
    month = start
    while month <= now:
        _sql(url, "SELECT audit_event_add_partition(%(m)s)", {"m": month.replace(tzinfo=None)})
        month = first_of_month(month, 1)


def _grow(
    url: str,
    upto: int,
    target: int,
    *,
    chunk: int,
    start: datetime,
    gap_us: int,
    actor: str,
    hpr: str,
    basis: str,
    patients: int,
    min_free: float,
    workers: int = 2,
) -> tuple[int, float, bool]:
    """Rows ``upto+1 .. target``, sealed, their chain positions following the head's, in
    chunks shared by ``workers`` connections (each chunk its own transaction); returns the
    rows there now, the seconds taken and whether the growth stopped for want of disk."""
    started = time.perf_counter()
    head = _sql(url, "SELECT seq FROM audit_chain WHERE id = 1")
    seq0 = int(head[0]) if head else 0
    chunks = [(lo, min(lo + chunk - 1, target)) for lo in range(upto + 1, target + 1, chunk)]
    done: list[tuple[int, int]] = []
    stop = threading.Event()
    lock = threading.Lock()

    def work() -> None:
        with psycopg.connect(dbsetup.libpq_url(url), autocommit=True) as conn:
            while not stop.is_set():
                with lock:
                    if not chunks:
                        return
                    if _free_gb() < min_free:
                        stop.set()
                        return
                    lo, hi = chunks.pop(0)
                params = {
                    "start": start.replace(tzinfo=None),
                    "gap_us": gap_us,
                    "actor": actor,
                    "hpr": hpr,
                    "hpr_base": int(hpr) - int(hpr) % 10000,
                    "patients": patients,
                    "basis": basis,
                    "seq0": seq0 + lo - upto - 1,
                    "lo": lo,
                    "hi": hi,
                }
                conn.execute(_GROW, params)
                with lock:
                    done.append((lo, hi))
                    rate = sum(b - a + 1 for a, b in done) / (time.perf_counter() - started)
                print(f"  {hi:>12,}  {_free_gb():6.1f} GB free  {rate:,.0f} rows/s", flush=True)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # the rows made form one prefix of the planned ones only if no chunk was skipped
    reached = upto
    for lo, hi in sorted(done):
        if lo > reached + 1:
            break
        reached = max(reached, hi)
    if reached < max((hi for _, hi in done), default=upto):
        raise SystemExit("growth stopped with a gap: rerun with --reuse")
    _sql(
        url,
        "UPDATE audit_chain SET seq = %(s)s, hash = md5((%(k)s + 2)::text) || "
        "md5((%(k)s + 3)::text) WHERE id = 1",
        {"s": seq0 + reached - upto, "k": reached},
    )
    return reached, time.perf_counter() - started, stop.is_set()


def _read_script(url: str, out: Path) -> tuple[Path, dict[str, str], str, str]:
    """The server's hot read as a pgbench script; also the actor JSON and basis it writes."""
    db = Database(url, pool_size=1)
    try:
        service = PLLService(db, load.BENCH_KEY)
        access = load.gp_access()
        pid, lid = "p000000001", "l000000001"
        reads = [capture.read_statement(service, access, pid, service.clock())]
        script = capture.to_pgbench("read", reads, {"patient": pid, "list": lid, "entry": "-"})
        actor = service.trail.actor(access)
        basis = access.basis.value if access.basis else ""
    finally:
        db.dispose()
    path = out / "read.sql"
    path.write_text(script.text)
    return path, dict(script.defines), actor, basis


def _pgbench(
    url: str,
    pg: PgConn,
    script: Path,
    defines: dict[str, str],
    args: argparse.Namespace,
    log_dir: Path,
) -> dict[str, Any]:
    _sql(url, "CHECKPOINT")
    if args.warmup:
        run_pgbench(pg, script, defines, args.warmup, args.clients, 2, None)
    m = run_pgbench(pg, script, defines, args.seconds, args.clients, 2, log_dir)
    return {
        "tps": round(m.rate, 1),
        "transactions": m.count,
        "errors": m.errors,
        "p50_ms": m.p50_ms,
        "p99_ms": m.p99_ms,
        "mean_ms": m.mean_ms,
        "cpu": m.cpu,
        "other_processes": m.detail.get("other_processes"),
    }


def _bulk(url: str, rows: int, actor: str, basis: str, patients: int) -> dict[str, Any]:
    started = time.perf_counter()
    _sql(url, _BULK, {"actor": actor, "basis": basis, "patients": patients, "rows": rows})
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}


def _seal(url: str) -> dict[str, Any]:
    db = Database(url, pool_size=1)
    try:
        trail = AuditTrail(db, load.BENCH_KEY, lambda: datetime.now(UTC))
        started, cpu = time.perf_counter(), time.process_time()
        records = trail.seal()
        seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    finally:
        db.dispose()
    return {
        "records": records,
        "seconds": round(seconds, 2),
        "records_per_s": round(records / seconds) if seconds else None,
        "python_cpu_s": round(cpu_s, 2),
    }


def _access_log(url: str, patients: int, count: int = 200) -> dict[str, Any]:
    db = Database(url, pool_size=1)
    times = []
    try:
        with db.read() as conn:
            audit_log.for_patient(conn, "p000000002", 50, 0)  # warm the plan cache
            for i in range(count):
                pid = f"p{1 + (i * 104729) % patients:09d}"
                t = time.perf_counter()
                total, rows = audit_log.for_patient(conn, pid, 50, 0)
                times.append((time.perf_counter() - t) * 1000)
    finally:
        db.dispose()
    times.sort()
    return {
        "calls": count,
        "p50_ms": round(statistics.median(times), 2),
        "p99_ms": round(times[int(len(times) * 0.99) - 1], 2),
        "last_total": total,
        "last_page": len(rows),
    }


def _partitions(url: str) -> dict[str, Any]:
    row = _sql(
        url,
        "SELECT count(*), sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
        "WHERE inhparent = 'audit_event'::regclass",
    )
    return {"partitions": int(row[0]), "bytes": int(row[1] or 0)}


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}"


def _table(steps: list[dict[str, Any]]) -> str:
    head = (
        "| rows | partitions | size GB | read tps | read p50 ms | read p99 ms | insert tps "
        "| insert p99 ms | bulk rows/s | seal records/s | access log p50 / p99 ms | load |"
    )
    lines = [head, "|" + " --- |" * 12]
    for s in steps:
        r, i, b, z, a = s["read"], s["insert"], s["bulk"], s["seal"], s["access_log"]
        lines.append(
            f"| {s['rows']:,} | {s['partitions']} | {s['bytes'] / 1e9:.1f} | {_fmt(r['tps'])} "
            f"| {_fmt(r['p50_ms'], 2)} | {_fmt(r['p99_ms'], 2)} | {_fmt(i['tps'])} "
            f"| {_fmt(i['p99_ms'], 2)} | {_fmt(b['rows_per_s'])} | {_fmt(z['records_per_s'])} "
            f"| {a['p50_ms']:.1f} / {a['p99_ms']:.1f} | {s['loadavg'][0]:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--steps", default="1000000,10000000,30000000,100000000")
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--bulk", type=int, default=200_000)
    parser.add_argument("--min-free-gb", type=float, default=25.0)
    parser.add_argument("--reuse", action="store_true", help="grow an existing database")
    parser.add_argument("--keep", action="store_true", help="do not drop the database after")
    parser.add_argument("--results-dir", default=str(HERE / "results"))
    args = parser.parse_args()
    if shutil.which("pgbench") is None:
        raise SystemExit("pgbench is not installed (apt-get install -y postgresql-client)")
    steps = sorted(int(s) for s in args.steps.split(","))
    url = args.database_url
    if not dbsetup.conn_parts(url)["dbname"].startswith("pll_bench"):
        raise SystemExit("the database's name must start with pll_bench (it is dropped)")
    now = datetime.now(UTC)
    start = first_of_month(now, -(MONTHS - 1))
    gap_us = int((now - start) / timedelta(microseconds=1)) // steps[-1]
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    results_dir = Path(args.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    out_path = results_dir / f"audit-growth-{stamp}.json"
    pg = PgConn(**dbsetup.conn_parts(url))
    result: dict[str, Any] = {
        "started": now.isoformat(),
        "args": vars(args),
        "server_version": None,
        "span": [start.isoformat(), now.isoformat()],
        "steps": [],
    }
    t0 = time.perf_counter()
    _setup(url, args.patients, args.reuse)
    result["server_version"] = dbsetup.server_version(url)
    _history(url, start, now)
    print(f"database ready in {time.perf_counter() - t0:.0f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="audit-growth-") as tmp_name:
        tmp = Path(tmp_name)
        script, defines, actor, basis = _read_script(url, tmp)
        defines["npatients"] = str(args.patients)
        insert_script = tmp / "insert.sql"
        insert_script.write_text(f"\\set n random(1, {args.patients})\n" + _INSERT_ONE)
        insert_defines = {"actor": actor, "basis": basis}
        hpr = load.gp_access().actor.hpr or "9144889"
        rows = _grown(url)
        try:
            for target in steps:
                rows, grow_s, stopped = _grow(
                    url,
                    rows,
                    target,
                    chunk=args.chunk,
                    start=start,
                    gap_us=gap_us,
                    actor=actor,
                    hpr=hpr,
                    basis=basis,
                    patients=args.patients,
                    min_free=args.min_free_gb,
                )
                _sql(url, "ANALYZE audit_event")
                _seal(url)  # anything left by an earlier step
                step: dict[str, Any] = {"rows": rows, "grow_seconds": round(grow_s, 1)}
                step["loadavg"] = list(os.getloadavg())
                step["read"] = _pgbench(url, pg, script, defines, args, tmp / f"read-{rows}")
                step["insert"] = _pgbench(
                    url, pg, insert_script, insert_defines, args, tmp / f"insert-{rows}"
                )
                step["bulk"] = _bulk(url, args.bulk, actor, basis, args.patients)
                step["seal"] = _seal(url)
                step["access_log"] = _access_log(url, args.patients)
                step["loadavg_after"] = list(os.getloadavg())
                step.update(_partitions(url))
                step["free_gb"] = round(_free_gb(), 1)
                result["steps"].append(step)
                out_path.write_text(json.dumps(result, indent=2, default=str))
                print(_table(result["steps"]), flush=True)
                if stopped:
                    print(f"stopped growing at {rows:,} rows: under {args.min_free_gb} GB free")
                    result["stopped_for_disk"] = rows
                    break
        finally:
            result["seconds"] = round(time.perf_counter() - t0)
            out_path.write_text(json.dumps(result, indent=2, default=str))
            if not args.keep:
                _sql(dbsetup._admin_url(url), f'DROP DATABASE IF EXISTS "{pg.dbname}" WITH (FORCE)')
    print(f"results: {out_path}")


if __name__ == "__main__":
    main()
