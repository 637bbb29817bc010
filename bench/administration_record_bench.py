"""Recording a morning round (issue 17): a care unit's 60 patients × 4 planned doses, given.

    .venv/bin/python bench/administration_record_bench.py            # SQLite and PostgreSQL
    .venv/bin/python bench/administration_record_bench.py --backends sqlite --patients 3 \\
        --rounds 1                                                       # smoke

The same server and databases as ``administration_bench.py`` (its ``unit_server``: the real
ASGI app under uvicorn in a thread, one worker, a fresh database built by the migrations).
The gp registers ``--patients`` patients, each with a list of three entries that plan four
doses a day (metformin morning and evening, amlodipine morning, paracetamol at midday); a
nurse of Ullern sykehjem (the ``nursing-home-nurse`` persona) registers each with the unit.

A round is one day of the unit as the nurse's system does it over HTTP: for each patient,
``GET List/{id}/$administration-schedule?date=`` and then ``POST MedicationAdministration``
for each of its four planned doses (given, at the planned time, the planned amount, naming
the planned dose's key and the entry version the schedule shows). Each round records a day
of its own — days before today, as nothing is recorded ahead of time — so no slot is ever
recorded twice. The round runs with one client (sequential) and with ``--clients`` clients
that share the unit's patients between them. The first round is warm-up. Reported: each
record's time from send to last byte (p50, p99 by nearest rank, over all timed rounds) and
the median wall time of a whole round (schedules included).
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from administration_bench import client_as, dose, load_unit, nearest_rank, ok, unit_server
from pll.domain.administration import OSLO
from pll.fhir import administrations as recorded
from pll.fhir.administration import PLANNED_DOSE

ORGNR = "urn:oid:2.16.578.1.12.4.1.4.101"
ULLERN = "883416031"  # the nursing-home-nurse persona's unit
DOSES_PER_PATIENT = 4

#: Four planned doses a day: morgen ×2, middag, kveld.
ROUND_ENTRIES: list[tuple[str, str, list[dict[str, Any]], str | None, str]] = [
    ("Metformin tab 500 mg", "A10BA02", [dose(1, when=["MORN", "EVE"])], None, "active"),
    ("Amlodipin tab 5 mg", "C08CA01", [dose(1, when=["MORN"])], None, "active"),
    ("Paracetamol tab 500 mg", "N02BE01", [dose(2, when=["NOON"])], None, "active"),
]


def _register(base: str, data_dir: Path, pids: list[str]) -> None:
    """The unit's nurse registers every patient with Ullern sykehjem."""
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "organization", "valueIdentifier": {"system": ORGNR, "value": ULLERN}},
            {"name": "kind", "valueCode": "sykehjem"},
        ],
    }
    with client_as(base, data_dir, "nursing-home-nurse") as nurse:
        for pid in pids:
            ok(nurse.post(f"/fhir/Patient/{pid}/$care-unit-register", json=body), 201)


def _given(planned: dict[str, Any]) -> dict[str, Any]:
    """The record of ``planned`` (a schedule's MedicationRequest) given on time, as planned."""
    key = next(i["value"] for i in planned["identifier"] if i["system"] == PLANNED_DOSE)
    # the key names entry, day, round and ordinal; the planned time is the timing's event
    when = datetime.fromisoformat(planned["dosageInstruction"][0]["timing"]["event"][0])
    body = {
        "resourceType": "MedicationAdministration",
        "status": "completed",
        "subject": planned["subject"],
        "supportingInformation": [{"reference": planned["supportingInformation"][0]["reference"]}],
        "effectiveDateTime": when.isoformat(timespec="seconds"),
        "extension": [{"url": recorded.PLANNED_DOSE, "valueString": key}],
    }
    body |= {k: v for k, v in planned.items() if k.startswith("medication")}
    return body


def _give(base: str, data_dir: Path, lists: list[str], day: str) -> list[float]:
    """One nurse's part of a round: each patient's schedule, then its doses recorded; the
    seconds of each record."""
    each = []
    with client_as(base, data_dir, "nursing-home-nurse") as nurse:
        for list_id in lists:
            schedule = ok(
                nurse.get(f"/fhir/List/{list_id}/$administration-schedule", params={"date": day})
            )
            doses = [
                e["resource"]
                for e in schedule.get("entry", [])
                if any(i["system"] == PLANNED_DOSE for i in e["resource"].get("identifier", []))
            ]
            if len(doses) != DOSES_PER_PATIENT:
                raise click.ClickException(
                    f"List/{list_id} plans {len(doses)} doses on {day}, not {DOSES_PER_PATIENT}"
                )
            for dose in doses:
                t0 = time.perf_counter()
                ok(nurse.post("/fhir/MedicationAdministration", json=_given(dose)), 201)
                each.append(time.perf_counter() - t0)
    return each


def _round(
    base: str, data_dir: Path, lists: list[str], day: str, clients: int
) -> tuple[list[float], float]:
    """The whole unit's round of ``day`` by ``clients`` nurses sharing the patients: the
    seconds of each record and of the round."""
    shares = [lists[c::clients] for c in range(clients)]
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        parts = list(pool.map(lambda share: _give(base, data_dir, share, day), shares))
    return [t for part in parts for t in part], time.perf_counter() - started


def _run(
    backend: str, postgres_url: str, patients: int, rounds: int, clients: int
) -> dict[int, dict[str, float]]:
    today = datetime.now(OSLO).date()
    # A day of its own for every round (warm-up, then each count of clients), oldest first.
    days = [(today - timedelta(days=n)).isoformat() for n in range(2 * rounds + 1, 0, -1)]
    results = {}
    with unit_server(backend, postgres_url) as (base, data_dir):
        with client_as(base, data_dir, "gp") as gp:
            loaded = load_unit(gp, patients, ROUND_ENTRIES)
        _register(base, data_dir, [pid for pid, _ in loaded])
        lists = [list_id for _, list_id in loaded]
        _round(base, data_dir, lists, days.pop(0), 1)  # warm-up
        for n in (1, clients):
            each: list[float] = []
            walls = []
            for _ in range(rounds):
                times, wall = _round(base, data_dir, lists, days.pop(0), n)
                each += times
                walls.append(wall)
            results[n] = {
                "p50_ms": 1000 * statistics.median(each),
                "p99_ms": 1000 * nearest_rank(each, 0.99),
                "round_s": statistics.median(walls),
                "records": len(each),
            }
    return results


@click.command()
@click.option("--patients", default=60, show_default=True, help="patients in the care unit")
@click.option("--rounds", default=3, show_default=True, help="timed rounds (days) per client count")
@click.option("--clients", default=4, show_default=True, help="concurrent nurses' clients")
@click.option("--backends", default="sqlite,postgresql", show_default=True)
@click.option(
    "--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres", show_default=True
)
def main(patients: int, rounds: int, clients: int, backends: str, postgres_url: str) -> None:
    """Time recording a round of the unit: every patient's planned doses of one day, given."""
    click.echo(
        f"{patients} patients × {DOSES_PER_PATIENT} doses, {rounds} rounds per client count, HTTP"
    )
    click.echo(
        f"{'database':<12}{'clients':>8}{'p50 ms':>10}{'p99 ms':>10}{'round s':>10}{'records':>10}"
    )
    for backend in backends.split(","):
        for n, r in _run(backend, postgres_url, patients, rounds, clients).items():
            click.echo(
                f"{backend:<12}{n:>8}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}"
                f"{r['round_s']:>10.2f}{r['records']:>10.0f}"
            )


if __name__ == "__main__":
    main()
