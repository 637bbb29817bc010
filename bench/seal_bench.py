"""Time the audit sealer over a backlog (issue 20): records written while no sealer ran.

    python bench/seal_bench.py --records 1000000
    python bench/seal_bench.py --records 20000 --database-url postgresql://…/pll_bench_seal_smoke

Makes ``pll_bench_seal`` (dropped first, and after unless ``--keep``), migrates it, writes
``--records`` unsealed audit records of the size a read leaves into this month's partition
with one ``INSERT … SELECT`` (their MACs are placeholders: sealing links whatever MAC a
record has, and this bench does not verify), runs ``ANALYZE`` as autovacuum would have, then
seals them all with :meth:`AuditTrail.seal` in this process and reports the wall time, the
records a second, and the CPU a record of this process and of its PostgreSQL backend (from
/proc; on a machine others use, the CPU is the figure that carries over). Run it with
another ``PYTHONPATH`` to time another version of the sealer on the same backlog.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pll.auth.audit import AuditKey
from pll.services.audit import AuditTrail
from pll.store.db import Database
from pllbench import dbsetup
from pllbench.cpu import _stat

_BACKLOG = text(
    """
    INSERT INTO audit_event (recorded_at, actor, action, resource_type, resource_id,
                             patient_id, basis, outcome, mac)
    SELECT CAST(:start AS timestamp) + interval '1 millisecond' * (g - :first),
           '{"hpr":"565501872","name":"Kari Lege","org":"974589095","role":"doctor"}',
           'read', 'List', md5(g::text) || md5(g::text), md5(g::text) || md5(g::text),
           'HPBEHANDLINGSRELASJON', '0', encode(sha256(g::text::bytea), 'hex')
    FROM generate_series(:first, :last) AS g
    """
)


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _utc_ms_ago(ms: int) -> datetime:
    """A record time ``ms`` milliseconds ago, as the trail keeps it (naive UTC). The backlog
    starts now: after the older records, past what the statistics know."""
    return (datetime.now(UTC) - timedelta(milliseconds=ms)).replace(tzinfo=None)


def _analyze(db: Database) -> None:
    with db.engine.connect() as plain:
        plain.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM (ANALYZE) audit_event")
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=5000, help="records a sealing transaction")
    ap.add_argument(
        "--analyzed",
        type=int,
        default=200_000,
        help="older records, sealed and analyzed before the backlog is written: the backlog "
        "is newer than the statistics, as every second's records are to the worker's sealer",
    )
    ap.add_argument(
        "--analyze-backlog",
        action="store_true",
        help="analyze after writing the backlog too (the statistics then know its times)",
    )
    ap.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/pll_bench_seal")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument("--results-dir", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()

    url = args.database_url
    dbsetup.recreate_database(url)
    db = Database(url, pool_size=1)
    try:
        db.upgrade()
        key = AuditKey(b"seal-bench-key-not-a-secret-0123")
        trail = AuditTrail(db, key, lambda: datetime.now(UTC))
        upto = args.analyzed + args.records
        t0 = time.perf_counter()
        if not args.analyze_backlog:
            # the statistics stay as they were before the backlog, as autovacuum leaves
            # them between its runs (it may analyze a partition a minute later, or not)
            with db.write() as conn:
                for part in conn.execute(
                    text(
                        "SELECT inhrelid::regclass::text FROM pg_inherits "
                        "WHERE inhparent = 'audit_event'::regclass"
                    )
                ).scalars():
                    conn.execute(text(f"ALTER TABLE {part} SET (autovacuum_enabled = off)"))
        if args.analyzed:
            with db.write() as conn:
                conn.execute(
                    _BACKLOG, {"first": 1, "last": args.analyzed, "start": _utc_ms_ago(upto)}
                )
            # sealed on a connection of its own: the timed sealer starts on a new one, as
            # `pll audit seal` or a worker's new connection does (after five runs of one
            # statement psycopg prepares it, and PostgreSQL may switch to a generic plan)
            first = Database(url, pool_size=1)
            try:
                AuditTrail(first, key, lambda: datetime.now(UTC)).seal(batch=args.batch)
            finally:
                first.dispose()
            _analyze(db)
        with db.write() as conn:
            conn.execute(
                _BACKLOG, {"first": args.analyzed + 1, "last": upto, "start": _utc_ms_ago(0)}
            )
        if args.analyze_backlog:
            _analyze(db)
        written = time.perf_counter() - t0
        with db.read() as conn:  # pool_size=1: the connection the sealer will use
            backend = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        before = (_stat(backend) or ("", 0, 0.0))[2]
        cpu0, t0 = _cpu(), time.perf_counter()
        sealed = trail.seal(batch=args.batch)
        wall = time.perf_counter() - t0
        own = _cpu() - cpu0
        pg = (_stat(backend) or ("", 0, before))[2] - before
        with db.read() as conn:
            left = conn.execute(
                text("SELECT count(*) FROM audit_event WHERE chain_seq IS NULL")
            ).scalar_one()
    finally:
        db.dispose()
    result = {
        "records": args.records,
        "batch": args.batch,
        "analyzed_before": args.analyzed,
        "backlog_analyzed": args.analyze_backlog,
        "backlog_written_seconds": round(written, 1),
        "sealed": sealed,
        "left_unsealed": int(left),
        "seal_seconds": round(wall, 1),
        "records_per_second": round(sealed / wall) if wall else None,
        "python_cpu_seconds": round(own, 1),
        "backend_cpu_seconds": round(pg, 1),
        "cpu_us_a_record": round((own + pg) / max(sealed, 1) * 1e6, 1),
    }
    print(json.dumps(result, indent=2))
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.results_dir / f"seal-{args.records}-{stamp}.json").write_text(json.dumps(result))
    if not args.keep:
        dbsetup.drop_database(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
