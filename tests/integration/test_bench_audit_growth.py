"""The audit growth bench (issue 20) still runs: a tiny trail grown in two steps on
PostgreSQL, every measurement made, no errors, the records written by it sealed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN_URL

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_bench_grows_the_trail_and_measures_each_step(tmp_path: Path) -> None:
    if shutil.which("pgbench") is None:
        pytest.skip("pgbench is not installed")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/pll_bench_audit_t{uuid.uuid4().hex[:8]}"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "audit_growth_bench.py"),
            *("--database-url", url, "--steps", "3000,6000", "--seconds", "1"),
            *("--warmup", "0", "--patients", "300", "--bulk", "2000", "--chunk", "1000"),
            *("--clients", "4"),  # the suite runs beside it: few of its 100 connections
            *("--min-free-gb", "1", "--results-dir", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (result,) = [json.loads(p.read_text()) for p in tmp_path.glob("audit-growth-*.json")]
    steps = result["steps"]
    assert [s["rows"] for s in steps] == [3000, 6000]
    for step in steps:
        # two years of months, this one and three ahead, and the default partition
        assert step["partitions"] == 28
        assert step["read"]["transactions"] > 0
        assert step["read"]["errors"] == 0
        assert step["insert"]["transactions"] > 0
        assert step["insert"]["errors"] == 0
        sealed = step["read"]["transactions"] + step["insert"]["transactions"] + 2000
        assert step["seal"]["records"] == sealed
        assert step["access_log"]["calls"] == 200
