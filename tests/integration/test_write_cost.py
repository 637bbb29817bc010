"""The write-cost bench runs, and a PUT of an entry stays within its statements (issue 20):
the access facts read the multidose state and the catalogue version in the same statement,
and the packing check does not read the entry's previous version again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN_URL

ROOT = Path(__file__).resolve().parents[2]
#: the entry, the list lock, the access facts with multidose and catalogue, the audit row,
#: entries, prescriptions, allergies, the list update, list version, entry update, entry
#: version, provenance targets (one executemany), the event, and SQLite's BEGIN IMMEDIATE
#: (PostgreSQL: the outbox's advisory lock): 17 before issue 20
MOST_STATEMENTS = 14


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_put_costs_at_most_its_statements(backend: str) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "write_cost.py"),
            "--backends",
            backend,
            "--postgres-url",
            PG_ADMIN_URL,
            "--patients",
            "12",
            "--writes",
            "30",
            "--warmup",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["backend"] == backend
    assert result["writes"] == 30
    assert result["transactions_per_write"] == 1
    assert result["statements_per_write"] <= MOST_STATEMENTS
    assert result["cpu_ms_per_write"] > 0
