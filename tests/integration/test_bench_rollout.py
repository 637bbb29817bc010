"""The rollout-report and extract benches still run: a tiny seeded database on both databases,
each report's total equal to the same figure counted straight from the seeded tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PG_ADMIN_URL

ROOT = Path(__file__).resolve().parents[2]


def _bench(script: str, *args: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args, "--postgres-url", PG_ADMIN_URL],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_each_report_at_each_size_totals_what_the_seeded_tables_hold() -> None:
    found = _bench("rollout_bench.py", "--patients", "120,400", "--backends", "sqlite,postgresql")
    assert [(r["backend"], r["patients"], r["report"]) for r in found] == [
        (backend, size, report)
        for backend in ("sqlite", "postgresql")
        for size in (120, 400)
        for report in ("first-lists", "gp-offices", "vendors")
    ]
    for r in found:
        assert r["total"] == r["expected_total"], r
        assert float(r["peak_rss_mb"]) >= float(r["rss_before_mb"]) > 0
    first = [r for r in found if r["report"] == "first-lists"]
    # the lists are spread over two years: June 2026 has some at 120 and more at 400
    assert all(int(r["total"]) > 0 for r in first)
    assert first[0]["total"] == first[2]["total"]
    assert first[1]["total"] == first[3]["total"]
    assert int(first[1]["total"]) > int(first[0]["total"])
    # every seeded list belongs to an office of the register's 1,500; five journal systems
    assert {r["rows"] for r in found if r["report"] == "gp-offices"} == {1500}
    assert {r["rows"] for r in found if r["report"] == "vendors"} == {5}


@pytest.mark.slow
def test_the_extract_bench_seeds_in_sql_and_writes_every_event() -> None:
    found = _bench("extract_bench.py", "--patients", "200", "--backends", "sqlite,postgresql")

    # per patient n: a list version for each of 1 + n % 4, a dispensing unless 3 divides n,
    # an administration record version for every 20th (two for every 40th), two case events
    # for every 50th
    def events(size: int) -> int:
        return sum(
            1 + n % 4 + (n % 3 != 0) + (n % 20 == 0) + (n % 40 == 0) + 2 * (n % 50 == 0)
            for n in range(1, size + 1)
        )

    assert [(r["backend"], r["patients"], r["format"], r["rows"]) for r in found] == [
        (backend, size, fmt, events(size))
        for backend in ("sqlite", "postgresql")
        for size in (50, 200)
        for fmt in ("csv", "parquet")
    ]
