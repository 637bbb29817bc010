"""SFM Basis operations' latency: ``$getMedication`` and ``$sendMedication`` on the reference
patient (nine entries, nine prescriptions, a dispensing, three M25 messages).

    .venv/bin/python bench/sfm_bench.py                                       # SQLite
    .venv/bin/python bench/sfm_bench.py --database-url postgresql://postgres@127.0.0.1:5432/pll_bench_sfm

The calls go through the service layer (what the HTTP handlers call), so the numbers are
PLL's own work: access decision, audit record, the document, and for a send the whole write
path with decision support. Each send changes one dose, relative to a fresh read, as a journal
system does. Reported as median and p99 in milliseconds.
"""

from __future__ import annotations

import copy
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from pll.auth.access import Access, Basis
from pll.auth.audit import AuditKey
from pll.domain.model import Author, Role
from pll.fhir.sfm.lenient_json import parse_lenient
from pll.services.lists import PLLService
from pll.services.sfm import SfmService
from pll.store.db import Database, normalise_url

console = Console()
RESULTS = Path(__file__).resolve().parent / "results"
REFERENCE = (
    Path(__file__).resolve().parents[1]
    / "tests/fixtures/sfm/getMedication-response-e-multidose.json"
)
FNR = "25039296929"


def _fresh(url: str | None, tmp: Path) -> str:
    if url is None:
        return f"sqlite:///{tmp / 'sfm.sqlite3'}"
    base, _, name = url.rpartition("/")
    admin = sa.create_engine(normalise_url(f"{base}/postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url


def _timed(call: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def _read_parameters() -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "patient",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "urn:oid:2.16.578.1.12.4.1.4.1", "value": FNR}],
                },
            }
        ],
    }


def _send_from(read: dict[str, Any], dose: str) -> dict[str, Any]:
    body = copy.deepcopy(read)
    bundle = body["parameter"][0]["resource"]
    comp = bundle["entry"][0]["resource"]
    comp["relatesTo"] = [
        {"code": "replaces", "targetIdentifier": {"value": comp["identifier"]["value"]}}
    ]
    comp["identifier"] = {"value": str(uuid.uuid4())}
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res.get("resourceType") == "MedicationStatement" and res.get(
            "medicationReference", {}
        ).get("display", "").startswith("Lapatinib"):
            res["dosage"][0]["text"] = dose
    return body


@click.command()
@click.option("--database-url", default=None, help="PostgreSQL URL (a database it may drop)")
@click.option("--reads", default=300, show_default=True)
@click.option("--sends", default=100, show_default=True)
def main(database_url: str | None, reads: int, sends: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = _fresh(database_url, Path(tmp))
        db = Database(url)
        db.upgrade()
        service = PLLService(db, AuditKey.load(Path(tmp)))
        sfm = SfmService(service)
        data, _ = parse_lenient(REFERENCE.read_text(encoding="utf-8"))
        sfm.import_document(data)
        doctor = Access(
            Author("Kari Fastlege", Role.DOCTOR, hpr="9144889"), Basis.TREATMENT, "bench"
        )
        params = _read_parameters()
        read_ms = _timed(lambda: sfm.get_medication(doctor, params), reads)
        send_ms: list[float] = []
        for i in range(sends):
            body = _send_from(sfm.get_medication(doctor, params), f"{i % 5 + 1} tabletter morgen")
            started = time.perf_counter()
            sfm.send_medication(doctor, body)
            send_ms.append((time.perf_counter() - started) * 1000)
        db.engine.dispose()

    def row(name: str, values: list[float]) -> dict[str, Any]:
        values = sorted(values)
        return {
            "operation": name,
            "n": len(values),
            "median_ms": round(statistics.median(values), 2),
            "p99_ms": round(values[int(len(values) * 0.99) - 1], 2),
        }

    rows = [row("$getMedication", read_ms), row("$sendMedication (one dose change)", send_ms)]
    table = Table(title=f"SFM Basis operations ({'PostgreSQL' if database_url else 'SQLite'})")
    for column in ("operation", "n", "median ms", "p99 ms"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["operation"], str(r["n"]), str(r["median_ms"]), str(r["p99_ms"]))
    console.print(table)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"sfm-{stamp}.json"
    out.write_text(
        json.dumps({"database": "postgresql" if database_url else "sqlite", "rows": rows}, indent=1)
    )
    console.print(f"written to {out}")


if __name__ == "__main__":
    main()
