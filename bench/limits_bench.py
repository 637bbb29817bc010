"""The largest writes and checks the request limits allow, end to end through the real HTTP
API (``pll serve``), on SQLite and on PostgreSQL (issue 15; DESIGN §3 rules 6 and 8).

    .venv/bin/python bench/limits_bench.py                        # SQLite, then PostgreSQL
    .venv/bin/python bench/limits_bench.py --backends sqlite --rounds 5
    .venv/bin/python bench/limits_bench.py --pg-url postgresql://postgres@127.0.0.1:5432/pll_bench_limits

On SQLite one write transaction holds the only writer, so no allowed write may take seconds.
Two workloads, each on a fresh database with a patient and a list filled by transaction
Bundles to ``MAX_LIST_ENTRIES - MAX_BUNDLE_ENTRIES`` entries:

- **same-substance**: every entry is the same simvastatin package (the hand-written FEST
  fixture), so every entry is a duplicate of every other: the shape that once grew with the
  square of the list.
- **many-drugs**: every entry a different package of a generated catalogue (``--scale`` of
  the real one's size), chosen among those FEST names in interactions, so the check meets
  many interactions (thousands among 300 drugs: far past any real list) and the answers
  are capped.

Each round then times, as a client sees them: ``POST List/$check`` with a full Bundle (the
change that follows, tried), the largest allowed write (``POST /fhir`` with a full Bundle of
new entries, which takes the list exactly to its limit), ``GET List/{id}/$check`` on the full
list, one more entry refused (422, list limit), one dose change (PUT) on the full list (the
everyday write), a full Bundle of dose changes (PUT) on the full list, and a full Bundle
marking the new entries entered-in-error (back under the limit).
Last, a Bundle one entry over the limit (refused 422 before any work). Medians and maxima in
milliseconds, the response sizes in bytes; JSON in ``bench/results/limits-<stamp>.json``.

With ``--readers N`` (default 2), N clients read another patient's whole list
(``GET List?patient=&_include=List:item``) without pause: first for as long as the rounds
take, with nothing else running ("quiet"), then all through the rounds ("during the
writes"). Their median, p99 and maximum show what the largest writes cost everyone else;
on SQLite, where reads too take the one writer for their audit row, that is the number
that matters. Any read not answered 200 is counted as failed.
"""

from __future__ import annotations

import contextlib
import json
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import httpx
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from pll.catalog.generate import generate
from pll.catalog.importer import import_fest
from pll.domain.identifiers import generate_synthetic_fnr
from pll.domain.limits import MAX_BUNDLE_ENTRIES, MAX_LIST_ENTRIES
from pll.store.db import Database
from pll.store.schema import fest_catalog, fest_drug, fest_interaction_atc
from pllbench.dbsetup import recreate_database
from pllbench.drivers import Server

console = Console(width=140)
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SMALL = ROOT / "tests" / "fixtures" / "fest" / "small.xml"
FEST = "http://ehelse.no/fhir/CodeSystem/FEST"
ATC = "http://www.whocc.no/atc"
FNR = "urn:oid:2.16.578.1.12.4.1.4.1"
SIMVASTATIN = ("046321", "C10AA01", "Simvastatin Fjordpharma Tab 20 mg")
NOW = datetime(2026, 11, 22, tzinfo=UTC)

Drug = tuple[str, str, str]  # (FEST code, ATC, name)


@dataclass
class Timings:
    ms: dict[str, list[float]] = field(default_factory=dict)
    size: dict[str, int] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, started: float, r: httpx.Response) -> None:
        self.ms.setdefault(name, []).append((time.perf_counter() - started) * 1000)
        self.size[name] = max(self.size.get(name, 0), len(r.content))
        self.status[name] = r.status_code


def _database(backend: str, pg_url: str, tmp: Path, workload: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp / f'limits-{workload}.sqlite3'}"
    recreate_database(pg_url)  # only a pll_bench* database is ever dropped
    return pg_url


def _catalogue(db: Database, workload: str, scale: float, tmp: Path) -> list[Drug]:
    """Import the workload's catalogue; the drugs its entries are made of."""
    if workload == "same-substance":
        import_fest(db, SMALL.open("rb"), SMALL.name, now=NOW)
        return [SIMVASTATIN]
    path = tmp / "generated.xml"
    with path.open("wb") as out:
        generate(out, scale=scale, seed=2026)
    with path.open("rb") as stream:
        import_fest(db, stream, path.name, now=NOW)
    with db.read() as conn:
        version = conn.execute(
            sa.select(fest_catalog.c.version).where(fest_catalog.c.status == "active")
        ).scalar_one()
        named = {
            r.atc
            for r in conn.execute(
                sa.select(fest_interaction_atc.c.atc).where(
                    fest_interaction_atc.c.catalog == version
                )
            )
        }
        rows = conn.execute(
            sa.select(fest_drug.c.code, fest_drug.c.atc, fest_drug.c.name)
            .where(
                fest_drug.c.catalog == version,
                fest_drug.c.kind == "package",
                fest_drug.c.active.is_(True),
                fest_drug.c.atc.is_not(None),
            )
            .order_by(fest_drug.c.code)
        ).all()
    # packages whose ATC (at some level) an interaction names first, one per ATC code
    seen: set[str] = set()
    drugs: list[Drug] = []
    for r in sorted(rows, key=lambda r: not any(r.atc[:n] in named for n in (3, 4, 5, 7))):
        if r.atc not in seen:
            seen.add(r.atc)
            drugs.append((r.code, r.atc, r.name))
    if len(drugs) < MAX_LIST_ENTRIES:
        raise click.ClickException(f"the catalogue has only {len(drugs)} distinct drugs")
    return drugs[:MAX_LIST_ENTRIES]


def _statement(pid: str, drug: Drug, dose: str = "1 tablett morgen") -> dict[str, Any]:
    code, atc, name = drug
    return {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {
            "coding": [{"system": FEST, "code": code}, {"system": ATC, "code": atc}],
            "text": name,
        },
        "subject": {"reference": f"Patient/{pid}"},
        "dosage": [{"text": dose}],
    }


def _bundle(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _posts(pid: str, drugs: list[Drug]) -> dict[str, Any]:
    return _bundle(
        [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": _statement(pid, d),
                "request": {"method": "POST", "url": "MedicationStatement"},
            }
            for d in drugs
        ]
    )


def _puts(resources: list[dict[str, Any]], change: Callable[[dict[str, Any]], None]) -> Any:
    entries = []
    for res in resources:
        body = {k: v for k, v in res.items() if k not in ("meta", "text")}
        change(body)
        entries.append(
            {
                "resource": body,
                "request": {
                    "method": "PUT",
                    "url": f"MedicationStatement/{res['id']}",
                    "ifMatch": f'W/"{res["meta"]["versionId"]}"',
                },
            }
        )
    return _bundle(entries)


def _written(r: httpx.Response) -> list[dict[str, Any]]:
    if r.status_code != 200:
        raise click.ClickException(f"{r.status_code}: {r.text[:500]}")
    return [e["resource"] for e in r.json()["entry"]]


def _override(r: httpx.Response) -> dict[str, str]:
    """The override of a refused change's blocking findings (the many-drugs workload meets
    interactions of relevance 1), as a doctor who has weighed them gives it."""
    details = r.json()["issue"][0]["extension"]
    codes = next(
        e["valueString"] for d in details for e in d["extension"] if e["url"] == "overrideFindings"
    )
    return {"X-PLL-Override": "vurdert (benchmark)", "X-PLL-Override-Findings": codes}


def _post(client: httpx.Client, bundle: dict[str, Any], t: Timings, name: str) -> httpx.Response:
    started = time.perf_counter()
    r = client.post("/fhir", json=bundle)
    if r.status_code == 422 and "X-PLL-Override" in r.text:
        t.add(name + " (refused: needs override)", started, r)
        started = time.perf_counter()
        r = client.post("/fhir", json=bundle, headers=_override(r))
    t.add(name, started, r)
    return r


class Readers:
    """Clients reading one patient's list without pause until stopped."""

    def __init__(self, base: str, headers: dict[str, str], url: str, count: int) -> None:
        self.base, self.headers, self.url, self.count = base, headers, url, count
        self.seconds: list[float] = []
        self.failed = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, headers=self.headers, timeout=120) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    ok = client.get(self.url).status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.seconds.append(time.perf_counter() - started)
                self.failed += not ok

    def __enter__(self) -> Readers:
        self._threads = [threading.Thread(target=self._run) for _ in range(self.count)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def summary(self) -> dict[str, float]:
        ms = sorted(s * 1000 for s in self.seconds) or [0.0]
        return {
            "reads": len(self.seconds),
            "failed": self.failed,
            "median_ms": round(statistics.median(ms), 1),
            "p99_ms": round(ms[max(0, int(len(ms) * 0.99) - 1)], 1),
            "max_ms": round(ms[-1], 1),
        }


def _reader_patient(gp: httpx.Client, drugs: list[Drug]) -> str:
    """Another patient, with a list of six of the workload's drugs: what the readers read."""
    fnr = generate_synthetic_fnr(random.Random(16))
    patient = {"resourceType": "Patient", "identifier": [{"system": FNR, "value": fnr}]}
    pid = gp.post("/fhir/Patient", json=patient).json()["id"]
    gp.post("/fhir/List", json=_new_list(pid))
    _written(_post(gp, _posts(pid, drugs[:6]), Timings(), "reader's list"))
    return f"/fhir/List?patient={pid}&_include=List:item"


def _new_list(pid: str) -> dict[str, Any]:
    return {
        "resourceType": "List",
        "status": "current",
        "mode": "working",
        "subject": {"reference": f"Patient/{pid}"},
    }


def _workload(
    server: Server, drugs: list[Drug], rounds: int, readers: int, quiet_seconds: float
) -> tuple[Timings, dict[str, dict[str, float]]]:
    t = Timings()
    headers = {
        "Authorization": f"Bearer {server.token()}",
        "Content-Type": "application/fhir+json",
        "X-PLL-Access-Basis": "HPBEHANDLINGSRELASJON",
    }
    with httpx.Client(base_url=server.base, headers=headers, timeout=120) as gp:
        patient = {
            "resourceType": "Patient",
            "identifier": [{"system": FNR, "value": generate_synthetic_fnr(random.Random(15))}],
            "name": [{"family": "Grense", "given": ["Gunnar"]}],
        }
        pid = gp.post("/fhir/Patient", json=patient).json()["id"]
        list_id = gp.post("/fhir/List", json=_new_list(pid)).json()["id"]
        wanted = [drugs[i % len(drugs)] for i in range(MAX_LIST_ENTRIES)]
        base, top = wanted[: MAX_LIST_ENTRIES - MAX_BUNDLE_ENTRIES], wanted[-MAX_BUNDLE_ENTRIES:]
        for start in range(0, len(base), MAX_BUNDLE_ENTRIES):
            part = _posts(pid, base[start : start + MAX_BUNDLE_ENTRIES])
            kept = _written(_post(gp, part, t, "fill"))
        reads: dict[str, dict[str, float]] = {}
        during: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        if readers:
            read_url = _reader_patient(gp, drugs)
            quiet = Readers(server.base, headers, read_url, readers)
            with quiet:
                time.sleep(quiet_seconds)
            reads["quiet"] = quiet.summary()
            during = Readers(server.base, headers, read_url, readers)
        with during:
            kept = _rounds(gp, pid, list_id, kept, top, rounds, t)
        if isinstance(during, Readers):
            reads["during the writes"] = during.summary()
        started = time.perf_counter()
        over = _posts(pid, [drugs[0]] * (MAX_BUNDLE_ENTRIES + 1))
        t.add("refused: Bundle one entry over its limit", started, gp.post("/fhir", json=over))
    return t, reads


def _rounds(
    gp: httpx.Client,
    pid: str,
    list_id: str,
    kept: list[dict[str, Any]],
    top: list[Drug],
    rounds: int,
    t: Timings,
) -> list[dict[str, Any]]:
    """The rounds of requests; each leaves the list as it found it (back under the limit)."""
    for n in range(rounds):
        console.print(f"  round {n + 1}/{rounds}")
        started = time.perf_counter()
        t.add(
            "POST List/$check, full Bundle",
            started,
            gp.post("/fhir/List/$check", json=_posts(pid, top)),
        )
        added = _written(_post(gp, _posts(pid, top), t, "write: full Bundle of new entries"))
        started = time.perf_counter()
        t.add("GET List/$check, full list", started, gp.get(f"/fhir/List/{list_id}/$check"))
        started = time.perf_counter()
        r = gp.post("/fhir", json=_posts(pid, top[:1]))
        t.add("refused: one entry past the list limit", started, r)
        # the everyday write on a full list: one dose change
        one = {k: v for k, v in kept[0].items() if k not in ("meta", "text")}
        one["dosage"] = [{"text": f"{n % 3 + 2} tabletter kveld"}]
        started = time.perf_counter()
        r = gp.put(
            f"/fhir/MedicationStatement/{one['id']}",
            json=one,
            headers={"If-Match": f'W/"{kept[0]["meta"]["versionId"]}"'},
        )
        t.add("write: one dose change on the full list", started, r)
        kept[0] = r.json()
        dose = f"{n % 3 + 2} tabletter morgen"
        redosed = _written(
            _post(
                gp,
                _puts(added, lambda b: b.update(dosage=[{"text": dose}])),  # noqa: B023
                t,
                "write: full Bundle of dose changes",
            )
        )

        def removed(body: dict[str, Any]) -> None:
            body["status"] = "entered-in-error"
            body["statusReason"] = [{"text": "Registrert ved en feil (benchmark)"}]

        _written(_post(gp, _puts(redosed, removed), t, "write: full Bundle entered-in-error"))
    return kept


@click.command()
@click.option("--backends", default="sqlite,postgresql", show_default=True)
@click.option("--workloads", default="same-substance,many-drugs", show_default=True)
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(1))
@click.option("--scale", default=0.3, show_default=True, help="generated catalogue's size")
@click.option(
    "--pg-url",
    default="postgresql://postgres@127.0.0.1:5432/pll_bench_limits",
    show_default=True,
    help="a database this may drop and create (name starting with pll_bench)",
)
@click.option("--readers", default=2, show_default=True, help="clients reading another list")
@click.option("--quiet-seconds", default=10.0, show_default=True, help="reads with no writes")
@click.option("--server-workers", default=2, show_default=True, type=click.IntRange(1))
def main(
    backends: str,
    workloads: str,
    rounds: int,
    scale: float,
    pg_url: str,
    readers: int,
    quiet_seconds: float,
    server_workers: int,
) -> None:
    pll = Path(sys.executable).parent / "pll"
    console.print(
        f"limits: {MAX_BUNDLE_ENTRIES} entries per Bundle, {MAX_LIST_ENTRIES} medicines per list"
    )
    results: list[dict[str, Any]] = []
    read_rows: list[dict[str, Any]] = []
    for backend in backends.split(","):
        for workload in workloads.split(","):
            console.print(f"[bold]{backend}, {workload}[/]")
            with tempfile.TemporaryDirectory() as tmp_name:
                tmp = Path(tmp_name)
                url = _database(backend, pg_url, tmp, workload)
                db = Database(url)
                db.upgrade()
                drugs = _catalogue(db, workload, scale, tmp)
                db.dispose()
                server = Server(pll, url, tmp / "data", server_workers, tmp / "server.log")
                server.env["PLL_SEAL_INTERVAL"] = "1"  # the sealer takes the writer too
                server.start()
                try:
                    timings, reads = _workload(server, drugs, rounds, readers, quiet_seconds)
                finally:
                    server.stop()
            for phase, summary in reads.items():
                read_rows.append({"backend": backend, "workload": workload, "phase": phase})
                read_rows[-1] |= summary
            for name, values in timings.ms.items():
                results.append(
                    {
                        "backend": backend,
                        "workload": workload,
                        "request": name,
                        "n": len(values),
                        "status": timings.status[name],
                        "median_ms": round(statistics.median(values), 1),
                        "max_ms": round(max(values), 1),
                        "max_bytes": timings.size[name],
                    }
                )
    table = Table(title=f"Largest allowed requests ({MAX_BUNDLE_ENTRIES}/{MAX_LIST_ENTRIES})")
    for column in ("backend", "workload", "request", "n", "status", "median ms", "max ms", "bytes"):
        table.add_column(column)
    for r in results:
        table.add_row(
            r["backend"],
            r["workload"],
            r["request"],
            str(r["n"]),
            str(r["status"]),
            f"{r['median_ms']:.1f}",
            f"{r['max_ms']:.1f}",
            f"{r['max_bytes']:,}",
        )
    console.print(table)
    if read_rows:
        reads_table = Table(title=f"Another patient's list, read by {readers} clients")
        for column in ("backend", "workload", "phase", "reads", "failed", "median", "p99", "max"):
            reads_table.add_column(column)
        for r in read_rows:
            reads_table.add_row(
                r["backend"],
                r["workload"],
                r["phase"],
                str(r["reads"]),
                str(r["failed"]),
                *(f"{r[k]:.1f} ms" for k in ("median_ms", "p99_ms", "max_ms")),
            )
        console.print(reads_table)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"limits-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    limits = {"max_bundle_entries": MAX_BUNDLE_ENTRIES, "max_list_entries": MAX_LIST_ENTRIES}
    limits |= {"server_workers": server_workers, "readers": readers}
    out.write_text(json.dumps({"limits": limits, "rows": results, "reads": read_rows}, indent=1))
    console.print(f"written to {out}")


if __name__ == "__main__":
    main()
