"""The administration benches still run: a tiny round of the unit recorded on both databases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN_URL

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_recording_a_round_reports_every_record_on_both_databases() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "administration_record_bench.py"),
            *("--patients", "3", "--rounds", "2", "--clients", "2"),
            *("--postgres-url", PG_ADMIN_URL),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [line.split() for line in proc.stdout.splitlines()[2:]]
    # database, clients, p50, p99, round seconds, records: 3 patients × 4 doses × 2 rounds
    assert [(r[0], r[1], r[5]) for r in rows] == [
        ("sqlite", "1", "24"),
        ("sqlite", "2", "24"),
        ("postgresql", "1", "24"),
        ("postgresql", "2", "24"),
    ]
    assert all(float(r[2]) > 0 and float(r[3]) >= float(r[2]) for r in rows)
