"""The rollout team's reports (issue 19) at scale: wall time and peak memory at 1,000,000.

    .venv/bin/python bench/rollout_bench.py                                    # 100k, 1M on PG
    .venv/bin/python bench/rollout_bench.py --patients 100000 --backends sqlite
    .venv/bin/python bench/rollout_bench.py --patients 200 --backends sqlite,postgresql  # smoke

For each database the benchmark makes a fresh migrated database (``dbsetup.fresh_database``,
dropped afterwards), seeds the register and then the patients directly in SQL
(:mod:`pllbench.seed`: a list each, 2.5 versions on average, 4,000 GPs at 1,500 offices,
first lists spread over two years), growing to each size of ``--patients`` in turn. At each
size every report runs in its own process, as the service call the API makes
(:class:`~pll.services.rollout_reports.RolloutReports`, audit record included), twice: the
first call cold (a new process, a new connection), the second warm. Printed per report: both
wall times, the rows, the process's resident memory before the call and its peak
(``getrusage``'s ``ru_maxrss``), the difference (what the report itself held), and the
report's total beside the same figure counted straight from the tables (``expected_total``).
The results are written to ``bench/results/rollout-<time>.json``.

- ``first-lists``: the first lists of ``--month`` (about N/24 lists);
- ``gp-offices``: every GP office with its patients, confirmations and trend — reads every
  list's holder, so it grows with N;
- ``vendors``: the journal systems' figures for ``--week``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pll.auth.access import Access
from pll.domain.model import Author, Role
from pll.services.lists import PLLService
from pll.services.rollout_reports import RolloutReports
from pll.stats import rollout as rules
from pll.store.db import Database
from pll.store.schema import pll, pll_version
from pllbench import dbsetup, load, seed

HERE = Path(__file__).resolve().parent
REPORTS = ("first-lists", "gp-offices", "vendors")


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _call(
    reports: RolloutReports, access: Access, report: str, month: str, week: str
) -> tuple[int, int]:
    """One report: the rows it has, and its total (first lists; lists of the offices; list
    versions the journal systems wrote)."""
    if report == "first-lists":
        made = reports.first_lists(access, month)
        return len(made["prescribers"]), int(made["patients"])
    if report == "gp-offices":
        rows = reports.gp_offices(access)["rows"]
        return len(rows), sum(int(r["patients_with_pll"]) for r in rows)
    rows = reports.vendors(access, week)["rows"]
    return len(rows), sum(int(r["changes"]) for r in rows)


def expected_total(db: Database, report: str, size: int, month: str, week: str) -> int:
    """What the report's total must be, counted straight from the seeded tables: the lists
    made in ``month``, every list (each seeded list has an office of the register), the
    versions a client wrote in ``week``."""
    if report == "gp-offices":
        return size
    if report == "first-lists":
        start, end = rules.month_span(month)
        query = sa.select(sa.func.count()).where(pll.c.created_at >= start, pll.c.created_at < end)
    else:
        start, end = rules.week_span(week)
        query = sa.select(sa.func.count()).where(
            pll_version.c.recorded_at >= start,
            pll_version.c.recorded_at < end,
            pll_version.c.client_id.is_not(None),
        )
    with db.read() as conn:
        return int(conn.execute(query).scalar_one())


def measure(url: str, report: str, month: str, week: str) -> dict[str, Any]:
    """``report`` twice in this process (run as ``--measure``): seconds cold and warm, rows,
    resident memory before and at its peak."""
    db = Database(url)
    service = PLLService(db, load.BENCH_KEY)
    reports = RolloutReports(db, service.clock, service.trail)
    access = Access(Author(name="Innføringsteamet", role=Role.ROLLOUT), None, "pll-bench")
    before = _rss_mb()
    times = []
    rows = total = 0
    for _ in range(2):
        started = time.perf_counter()
        rows, total = _call(reports, access, report, month, week)
        times.append(round(time.perf_counter() - started, 3))
    db.dispose()
    peak = _rss_mb()
    return {
        "report": report,
        "rows": rows,
        "total": total,
        "seconds_cold": times[0],
        "seconds_warm": times[1],
        "rss_before_mb": before,
        "peak_rss_mb": peak,
        "report_mb": round(peak - before, 1),
    }


def _measured(db: Database, report: str, month: str, week: str) -> dict[str, Any]:
    args = ["--measure", report, "--url", db.url, "--month", month, "--week", week]
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{report} failed: {proc.stderr[-3000:]}")
    found: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


def run(backend: str, sizes: list[int], pg: str, month: str, week: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with dbsetup.fresh_database(backend, tmp, pg, "rollout") as db:
            seed.seed_register(db, sizes[-1])
            loaded = 0
            for size in sizes:
                took = seed.seed_patients(db, loaded + 1, size)
                print(f"{backend}: seeded {size:,} patients ({size - loaded:,} in {took:.0f} s)")
                loaded = size
                for report in REPORTS:
                    found = {"backend": backend, "patients": size}
                    found |= _measured(db, report, month, week)
                    found["expected_total"] = expected_total(db, report, size, month, week)
                    print(json.dumps(found), flush=True)
                    results.append(found)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", default="100000,1000000", help="sizes, comma-separated")
    parser.add_argument("--backends", default="postgresql")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("PLL_BENCH_URL", dbsetup.DEFAULT_URL)
    )
    parser.add_argument("--month", default="2026-06", help="the first-list report's month")
    parser.add_argument("--week", default="2026-W23", help="the vendor report's week")
    parser.add_argument("--measure", choices=REPORTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.measure:
        print(json.dumps(measure(a.url, a.measure, a.month, a.week)))
        return
    sizes = sorted(int(s) for s in a.patients.split(","))
    results = []
    for backend in a.backends.split(","):
        results += run(backend, sizes, a.postgres_url, a.month, a.week)
    out = HERE / "results" / f"rollout-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
