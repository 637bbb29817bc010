"""The write-cost bench runs, and a PUT of an entry stays within its statements and round
trips (issue 20): the list row is locked by the entry's id, with no read of the entry before
it; the access facts read the multidose state, the catalogue version and whether the
patient has an active reaction in the same statement; the packing check does not read the
entry's previous version again; the rows of the change go to PostgreSQL in one round trip
(pll.store.pipeline)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN_URL

ROOT = Path(__file__).resolve().parents[2]
#: the list row locked with the entry's id (one statement), the access facts (with
#: multidose, catalogue and whether any reaction is active: the bench's patients have none,
#: so no allergy read), entries, prescriptions; then the audit row, the list update, list
#: version, entry update, entry version, provenance targets (one executemany), the event
#: (SQLite: BEGIN IMMEDIATE first). 17 before issue 20.
MOST_STATEMENTS = 12
#: PostgreSQL: the four reads, each waiting for its answer, then the seven writes as one
#: statement of data-modifying WITH queries (pll.store.pipeline.one_statement), in one round
#: trip (BEGIN and COMMIT, which psycopg sends itself, not counted). 17 before issue 20.
MOST_ROUND_TRIPS = 5
MOST_POSTGRES_STATEMENTS = 5


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
    if backend == "postgresql":
        assert result["round_trips_per_write"] <= MOST_ROUND_TRIPS
        assert result["statements_per_write"] <= MOST_POSTGRES_STATEMENTS
    assert result["cpu_ms_per_write"] > 0
