"""The daily administration schedule (issue 17): one care unit's 60 patients, one day each.

    .venv/bin/python bench/administration_bench.py                     # SQLite and PostgreSQL
    .venv/bin/python bench/administration_bench.py --backends sqlite --rounds 3   # smoke

Over HTTP through the real ASGI app (``create_app`` served by uvicorn in a thread, as
``pll serve`` runs it, one worker): for each database a fresh one is built by the migrations
(SQLite in a temporary directory; a throwaway PostgreSQL database ``pll_bench_admin_…``,
dropped afterwards), ``--patients`` patients are registered with a list of eight entries
through the FHIR API as the gp persona — fixed times of day, weekly, every other day, a
tapering, every 8 hours, as needed with a daily maximum, free text, one paused — and then
the nurse's system asks ``GET List/{id}/$administration-schedule?date=`` for each patient in
turn, ``--rounds`` times (the first round is warm-up). Each request is timed from send to
the last byte: p50 and p99 (nearest rank) per request, and the median time of one round of
the whole unit. Each request reads the list and writes its audit row, as in production.
"""

from __future__ import annotations

import math
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import httpx
import uvicorn

from pll.api.app import create_app
from pll.auth.audit import AuditKey
from pll.auth.tokens import issue
from pll.config import Settings
from pll.domain.identifiers import generate_synthetic_fnr
from pll.services.lists import PLLService
from pllbench.dbsetup import fresh_database

ATC = "http://www.whocc.no/atc"
FNR = "urn:oid:2.16.578.1.12.4.1.4.1"
DAY = "2026-03-05"  # a Thursday: the weekly dose falls on it


def dose(value: float, **repeat: Any) -> dict[str, Any]:
    return {
        "timing": {"repeat": repeat},
        "doseAndRate": [{"doseQuantity": {"value": value, "unit": "tablett"}}],
    }


#: (name, ATC, dosage, effectivePeriod.start, status) of each patient's eight entries.
ENTRIES: list[tuple[str, str, list[dict[str, Any]], str | None, str]] = [
    ("Metformin tab 500 mg", "A10BA02", [dose(1, when=["MORN", "EVE"])], None, "active"),
    (
        "Metotreksat tab 2,5 mg",
        "L04AX03",
        [dose(4, frequency=1, period=1, periodUnit="wk", dayOfWeek=["thu"])],
        "2026-01-01",
        "active",
    ),
    (
        "Furosemid tab 40 mg",
        "C03CA01",
        [dose(1, when=["MORN"], period=2, periodUnit="d")],
        "2026-03-01",
        "active",
    ),
    (
        "Prednisolon tab 5 mg",
        "H02AB06",
        [
            {**dose(4, when=["MORN"], boundsDuration={"value": 3, "code": "d"}), "sequence": 1},
            {**dose(2, when=["MORN"], boundsDuration={"value": 3, "code": "d"}), "sequence": 2},
        ],
        "2026-03-02",
        "active",
    ),
    ("Amoksicillin tab 500 mg", "J01CA04", [dose(1, period=8, periodUnit="h")], None, "active"),
    (
        "Paracetamol tab 500 mg",
        "N02BE01",
        [
            {
                **dose(2, frequency=1, period=1, periodUnit="d"),
                "asNeededBoolean": True,
                "maxDosePerPeriod": {
                    "numerator": {"value": 8, "unit": "tablett"},
                    "denominator": {"value": 1, "unit": "døgn"},
                },
            }
        ],
        None,
        "active",
    ),
    ("Laktulose mikst", "A06AD11", [{"text": "10-20 ml etter avføring"}], None, "active"),
    ("Amlodipin tab 5 mg", "C08CA01", [dose(1, when=["MORN"])], None, "on-hold"),
]


@contextmanager
def _serving(app: Any) -> Iterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    if response.status_code != status:
        raise click.ClickException(
            f"{response.request.url}: {response.status_code} {response.text}"
        )
    data: dict[str, Any] = response.json()
    return data


def load_unit(
    client: httpx.Client,
    patients: int,
    entries: list[tuple[str, str, list[dict[str, Any]], str | None, str]] = ENTRIES,
) -> list[tuple[str, str]]:
    """Register the unit's patients with a list of ``entries`` each (as :data:`ENTRIES`);
    returns (patient id, list id) of each."""
    rng = random.Random(17)
    lists = []
    for _ in range(patients):
        body = {
            "resourceType": "Patient",
            "identifier": [{"system": FNR, "value": generate_synthetic_fnr(rng)}],
            "name": [{"family": "Sykehjemsbeboer", "given": ["Test"]}],
        }
        pid = ok(client.post("/fhir/Patient", json=body), 201)["id"]
        subject = {"reference": f"Patient/{pid}"}
        new_list = {"resourceType": "List", "status": "current", "mode": "working"}
        lists.append(ok(client.post("/fhir/List", json={**new_list, "subject": subject}), 201))
        for name, atc, dosage, start, status in entries:
            statement: dict[str, Any] = {
                "resourceType": "MedicationStatement",
                "status": "active",
                "medicationCodeableConcept": {
                    "coding": [{"system": ATC, "code": atc}],
                    "text": name,
                },
                "subject": subject,
                "dosage": dosage,
            }
            if start:
                statement["effectivePeriod"] = {"start": start}
            made = ok(client.post("/fhir/MedicationStatement", json=statement), 201)
            if status != "active":
                held = {**made, "status": status}
                version = made["meta"]["versionId"]
                ok(
                    client.put(
                        f"/fhir/MedicationStatement/{made['id']}",
                        json=held,
                        headers={"If-Match": f'W/"{version}"'},
                    )
                )
    return [
        (str(lst["subject"]["reference"]).removeprefix("Patient/"), str(lst["id"])) for lst in lists
    ]


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


@contextmanager
def unit_server(backend: str, postgres_url: str) -> Iterator[tuple[str, Path]]:
    """A fresh database of ``backend`` served over HTTP as ``pll serve`` runs it (one
    worker; sealing, dispatch and statistics off): (base URL, data directory for tokens)."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        fresh_database(backend, Path(tmp), postgres_url, "admin") as db,
    ):
        data_dir = Path(tmp)
        settings = replace(
            Settings.from_env(),
            data_dir=data_dir,
            database_url=db.url,
            dev_auth=True,
            seal_interval=0,
            dispatch=False,
            stats_interval=0,
        )
        service = PLLService(db, AuditKey.load(data_dir))
        with _serving(create_app(settings, service)) as base:
            yield base, data_dir


def client_as(base: str, data_dir: Path, persona: str) -> httpx.Client:
    """An HTTP client of ``persona``, stating a treatment relationship as health personnel do."""
    headers = {
        "Authorization": f"Bearer {issue(data_dir, persona)}",
        "Content-Type": "application/fhir+json",
        "X-PLL-Access-Basis": "HPBEHANDLINGSRELASJON",
    }
    return httpx.Client(base_url=base, headers=headers, timeout=60)


def _run(backend: str, postgres_url: str, patients: int, rounds: int) -> dict[str, float]:
    with (
        unit_server(backend, postgres_url) as (base, data_dir),
        client_as(base, data_dir, "gp") as client,
    ):
        lists = [list_id for _, list_id in load_unit(client, patients)]
        each: list[float] = []
        unit: list[float] = []
        planned = 0
        for n in range(rounds + 1):
            started = time.perf_counter()
            for list_id in lists:
                t0 = time.perf_counter()
                answer = ok(
                    client.get(
                        f"/fhir/List/{list_id}/$administration-schedule",
                        params={"date": DAY},
                    )
                )
                if n:
                    each.append(time.perf_counter() - t0)
                planned = len(answer["entry"])
            if n:
                unit.append(time.perf_counter() - started)
    return {
        "p50_ms": 1000 * statistics.median(each),
        "p99_ms": 1000 * nearest_rank(each, 0.99),
        "unit_ms": 1000 * statistics.median(unit),
        "requests": len(each),
        "entries_per_answer": planned,
    }


@click.command()
@click.option("--patients", default=60, show_default=True, help="patients in the care unit")
@click.option("--rounds", default=20, show_default=True, help="timed rounds over the unit")
@click.option("--backends", default="sqlite,postgresql", show_default=True)
@click.option(
    "--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres", show_default=True
)
def main(patients: int, rounds: int, backends: str, postgres_url: str) -> None:
    """Time the schedule of one day for every patient of a care unit."""
    click.echo(f"{patients} patients, 8 entries each, {rounds} rounds, one day ({DAY}), HTTP")
    click.echo(f"{'database':<12}{'p50 ms':>10}{'p99 ms':>10}{'unit ms':>10}{'requests':>10}")
    for backend in backends.split(","):
        r = _run(backend, postgres_url, patients, rounds)
        click.echo(
            f"{backend:<12}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}{r['unit_ms']:>10.0f}"
            f"{r['requests']:>10.0f}   ({r['entries_per_answer']:.0f} Bundle entries each)"
        )


if __name__ == "__main__":
    main()
