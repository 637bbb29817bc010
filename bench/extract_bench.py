"""The pseudonymised extract (issue 19): rows per second and peak memory, CSV and Parquet.

    .venv/bin/python bench/extract_bench.py --patients 1000000 --backends postgresql
    .venv/bin/python bench/extract_bench.py                       # 100,000, SQLite + PG
    .venv/bin/python bench/extract_bench.py --load service --patients 8000  # the write path
    .venv/bin/python bench/extract_bench.py --patients 2000 --backends sqlite   # smoke

For each database the benchmark makes a fresh migrated database (``dbsetup.fresh_database``,
dropped afterwards) and fills it in two steps, to a quarter of the patients and then to all
of them. ``--load sql`` (the default) seeds the rows directly in SQL (:mod:`pllbench.seed`:
per patient a list with 2.5 versions on average, two dispensings in three, an administration
record in 20, a discrepancy case in 50 — about 3.3 events a patient); ``--load service``
loads the rows the service's own write path writes, with the bulk import (``pll import
generate``, :mod:`pll.services.bulk_import`: each patient registered with a PLL of 4–8
entries, one list version). After each step it
runs ``pll stats extract`` as its own process for CSV and for Parquet. Each run's wall time,
rows, rows/s and the process's peak RSS (``wait4``'s ``ru_maxrss``) are printed; memory is
flat when the peak at N is the peak at N/4 (the extract holds one page of events and one
Parquet row group, never the whole). The results are written to
``bench/results/extract-<time>.json``.

The extract reads every table in primary-key order, page by page, so its time grows linearly
with the rows and its memory not at all. The marginal rate (the rows the full extract had
more than the quarter one, over the time it took longer, so the process's start is not
counted) gives ``projected_10M_rows_min``: the minutes for ten million rows.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pll.auth.audit import AuditKey
from pll.services.bulk_import import generate
from pll.store.db import Database
from pllbench import dbsetup, load, seed

HERE = Path(__file__).resolve().parent


def _load(db: Database, first: int, last: int, seed: int, procs: int) -> float:
    """Patients ``first..last`` loaded by the bulk import (``pll import generate``: the
    service's rows, :mod:`pll.services.bulk_import`); seconds taken. PostgreSQL loads with
    several processes, SQLite in this one (one writer at a time)."""
    started = time.perf_counter()
    loaded = generate(db, load.BENCH_KEY, last, seed=seed, processes=1 if db.is_sqlite else procs)
    if loaded.loaded != last - first + 1:
        raise RuntimeError(f"expected to load {last - first + 1} patients, loaded {loaded.loaded}")
    return time.perf_counter() - started


def _extract(db: Database, data: Path, out: Path, fmt: str, key: str) -> dict[str, Any]:
    """One ``pll stats extract`` in its own process: seconds, rows, peak RSS."""
    env = os.environ | {
        "PLL_DATABASE_URL": db.url,
        "PLL_DATA_DIR": str(data),
        "PLL_PSEUDONYM_KEY": key,
    }
    until = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    args = [sys.executable, "-m", "pll.cli", "stats", "extract", "--out", str(out)]
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*args, "--format", fmt, "--until", until],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"extract failed: {err}")
    summary = err.strip().splitlines()[-1]
    rows = int(summary.split("wrote ", 1)[1].split(" rows", 1)[0].replace(",", ""))
    return {
        "format": fmt,
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "bytes": out.stat().st_size,
    }


def run(
    backend: str, patients: int, pg: str, rng_seed: int, procs: int, how: str
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    key = secrets.token_hex(32)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        AuditKey.load(tmp)
        with dbsetup.fresh_database(backend, tmp, pg, "extract") as db:
            with db.write() as conn:
                conn.execute(sa.text(dbsetup.HELPER_DDL))
            if how == "sql":
                seed.seed_register(db, patients)
            loaded = 0
            for size in (max(patients // 4, 1), patients):
                if how == "sql":
                    took = seed.seed_patients(db, loaded + 1, size)
                else:
                    took = _load(db, loaded + 1, size, rng_seed, procs)
                print(f"{backend}: {how} {size:,} patients ({size - loaded:,} in {took:.0f} s)")
                loaded = size
                for fmt in ("csv", "parquet"):
                    found = _extract(db, tmp, tmp / f"extract.{fmt}", fmt, key)
                    found |= {"backend": backend, "patients": size, "load": how}
                    earlier = [r for r in results if r["format"] == fmt]
                    if earlier and found["rows"] > earlier[0]["rows"]:
                        # the rate without the process's start: the rows the larger extract
                        # had more, over the time it took longer
                        more = found["rows"] - earlier[0]["rows"]
                        longer = max(found["seconds"] - earlier[0]["seconds"], 1e-3)
                        found["marginal_rows_per_s"] = round(more / longer)
                        found["projected_10M_rows_min"] = round(1e7 * longer / more / 60, 1)
                    print(json.dumps(found))
                    results.append(found)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("PLL_BENCH_URL", dbsetup.DEFAULT_URL)
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--processes", type=int, default=2, help="PostgreSQL loader processes")
    parser.add_argument(
        "--load",
        choices=("sql", "service"),
        default="sql",
        help="seed the rows in SQL (fast) or load patients through the service (issue 20)",
    )
    a = parser.parse_args()
    results = []
    for backend in a.backends.split(","):
        results += run(backend, a.patients, a.postgres_url, a.seed, a.processes, a.load)
    out = HERE / "results" / f"extract-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
