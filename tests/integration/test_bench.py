"""The benchmark still runs: a tiny run of bench/run_bench.py against its own database."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN_URL

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_benchmark_runs_and_reports_both_workloads(tmp_path: Path) -> None:
    for tool in ("wrk", "pgbench"):
        if shutil.which(tool) is None:
            if os.environ.get("CI") == "true":
                pytest.fail(
                    f"{tool} is needed for the benchmark smoke run (scripts/test.sh installs it)"
                )
            pytest.skip(f"{tool} is not installed")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/pll_bench_smoke"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run_bench.py"),
            "--patients",
            "60",
            "--seconds",
            "1",
            "--warmup",
            "1",
            "--write-pool",
            "40",
            # the wait for idle background work is exercised, not waited out (the
            # statistics stay 30 s behind the audit trail)
            "--idle-wait",
            "1",
            "--database-url",
            url,
            "--results-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (result,) = tmp_path.glob("*.json")
    results = json.loads(result.read_text())["results"]
    for kind in ("read", "write"):
        assert results[kind]["server"]["rate"] > 0
        assert results[kind]["server"]["errors"] == 0
        assert results[kind]["pgbench"]["rate"] > 0
        assert results[kind]["ratio"] > 0
        # the server's CPU includes the pll worker pll serve starts on PostgreSQL (issue 20)
        processes = results[kind]["server"]["detail"]["server_processes"]
        assert any("pll worker" in p for p in processes), processes
        assert any(p.startswith("pll serve") for p in processes), processes
        # whether the background work was idle before each measurement, and the wait
        for side in ("server", "pgbench"):
            background = results[kind][side]["detail"]["background"]
            assert isinstance(background["idle"], bool)
            assert background["waited_seconds"] >= 0
            assert background["unsealed"] == 0  # the bench sealed what waited
