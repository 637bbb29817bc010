"""Loading N synthetic patients with ``pll import generate`` (issue 20).

The patients are those of :mod:`pll.services.synthetic`: numbered 1..N, patient ``n``'s data
depending only on ``n`` and the seed. The command writes the rows the service's write path
writes (``tests/integration/test_bulk_import.py`` proves it) with ``COPY``, in batches that
each record themselves in ``bulk_import``, so a stopped load run again loads exactly what is
missing. After it, :func:`record_numbers` fills ``bench_patient`` (number, patient id, list
id) from the fødselsnumre, for the drivers that pick a patient by number.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import psycopg

from pll.auth.access import Access
from pll.auth.audit import AuditKey
from pll.services.synthetic import gp_access as _gp_access
from pll.services.synthetic import synthetic_fnrs
from pllbench import dbsetup

__all__ = ["BENCH_KEY", "gp_access", "import_patients", "record_numbers", "synthetic_fnrs"]

#: The loader's audit key. Loaded records are never verified; the running server uses the key
#: in its own data directory for the records of the measured requests.
BENCH_KEY = AuditKey(b"pll-bench-audit-key-not-a-secret")


def gp_access() -> Access:
    """The author the ``gp`` development token stands for, through the dev client."""
    return _gp_access("pll-dev-client")


def import_patients(
    pll: Path, url: str, patients: int, seed: int, batch: int, processes: int, data_dir: Path
) -> float:
    """Run ``pll import generate`` for patients 1..``patients`` (its progress bar on this
    terminal); returns seconds taken. Raises if the command fails."""
    env = dict(os.environ)
    env["PLL_DATABASE_URL"] = url
    env["PLL_DATA_DIR"] = str(data_dir)
    env["PLL_AUDIT_KEY"] = BENCH_KEY.secret.hex()
    started = time.perf_counter()
    subprocess.run(
        [
            str(pll),
            "import",
            "generate",
            "--patients",
            str(patients),
            "--seed",
            str(seed),
            "--batch",
            str(batch),
            "--processes",
            str(processes),
        ],
        env=env,
        check=True,
    )
    return time.perf_counter() - started


def record_numbers(url: str, patients: int) -> int:
    """Put patients 1..``patients`` that are loaded but not numbered yet into
    ``bench_patient``, by their fødselsnummer; returns how many were added."""
    fnrs = synthetic_fnrs(patients)
    with psycopg.connect(dbsetup.libpq_url(url)) as conn:
        conn.execute("CREATE TEMPORARY TABLE bench_fnr (n integer, fnr varchar(11))")
        with conn.cursor().copy("COPY bench_fnr (n, fnr) FROM STDIN") as copy:
            for n, fnr in enumerate(fnrs, start=1):
                copy.write_row((n, fnr))
        added = conn.execute(
            """
            INSERT INTO bench_patient (n, patient_id, list_id)
            SELECT f.n, p.id, l.id FROM bench_fnr f
            JOIN patient p ON p.identifier_system = 'urn:oid:2.16.578.1.12.4.1.4.1'
                          AND p.identifier_value = f.fnr
            JOIN pll l ON l.patient_id = p.id
            ON CONFLICT (n) DO NOTHING
            """
        ).rowcount
        conn.commit()
    return int(added)
