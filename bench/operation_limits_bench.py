"""The largest requests the operations' limits allow — reconciliation, SFM sends, e-multidose
proposals, decisions and packing reports — end to end over HTTP, with how long each held a
database transaction (issue 15; DESIGN §3 rule 8).

    .venv/bin/python bench/operation_limits_bench.py                  # SQLite, then PostgreSQL
    .venv/bin/python bench/operation_limits_bench.py --backends sqlite
    .venv/bin/python bench/operation_limits_bench.py --pg-url postgresql://postgres@127.0.0.1:5432/pll_bench_operation_limits

On SQLite one transaction holds the only writer (reads take it too, for their audit row), so
what matters is the longest transaction a request holds, not only how long it takes: the
app runs in this process (uvicorn on a real socket, one request at a time) and every
``Database.read()`` / ``Database.write()`` is timed from asking for the transaction to its
commit. Every drug is the same simvastatin package (the hand-written FEST fixture), the
shape in which every medicine matches every other (duplicates for decision support, every
source line a candidate for every entry in reconciliation).

The requests, each at its limit:

- **reconcile**: a list of ``MAX_LIST_ENTRIES`` entries compared with a source of
  ``MAX_SOURCE_ITEMS`` lines, each a different dosage (``$compare``, three times), then
  ``$reconcile`` taking every difference (a dosage change on every entry);
- **sfm**: the first ``$sendMedication`` of a patient prescribing as many new medicines as one
  send may write (a prescription and an entry each: ``MAX_SFM_WRITES`` writes), then one
  renewing as many as one send may (three writes each: the new prescription, the one it
  completes, the entry), an unchanged send padded to ``MAX_SFM_ENTRIES`` entries, and one
  taking the list one medicine past ``MAX_LIST_ENTRIES`` (refused before its transaction);
- **multidose**: ``$propose`` of ``MAX_PROPOSAL_ITEMS`` new medicines until
  ``MAX_PENDING_ITEMS`` wait, ``$proposals`` (pending), ``$decide`` accepting all of them,
  and a ``$packing-report`` of ``MAX_PACKING_ITEMS`` entries (three times).

Reported per request: status, milliseconds end to end, the longest transaction it held and
the bytes of the answer; JSON in ``bench/results/operation-limits-<stamp>.json``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import random
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import httpx
import uvicorn
from rich.console import Console
from rich.table import Table

from pll.api.app import create_app
from pll.auth.audit import AuditKey
from pll.auth.tokens import issue
from pll.catalog.importer import import_fest
from pll.config import Settings
from pll.domain import limits
from pll.domain.identifiers import generate_synthetic_fnr
from pll.domain.multidose import ADMINISTRATION
from pll.services.lists import PLLService
from pll.store.db import Database
from pllbench.dbsetup import recreate_database

console = Console(width=140)
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SMALL = ROOT / "tests" / "fixtures" / "fest" / "small.xml"
FEST = "http://ehelse.no/fhir/CodeSystem/FEST"
ATC = "http://www.whocc.no/atc"
FNR = "urn:oid:2.16.578.1.12.4.1.4.1"
ORGNR = "urn:oid:2.16.578.1.12.4.1.4.101"
SD = "http://ehelse.no/fhir/StructureDefinition"
SIMVASTATIN = ("046321", "C10AA01", "Simvastatin Fjordpharma Tab 20 mg")
BERGEN = "985563756"  # the "pharmacist" persona's pharmacy
NOW = datetime(2026, 11, 22, tzinfo=UTC)

# -- timing every transaction ----------------------------------------------------------------

_holds: list[tuple[float, float]] = []  # (started, seconds)
_holds_lock = threading.Lock()


def _timed(original: Callable[[Database], Any]) -> Callable[[Database], Any]:
    @contextlib.contextmanager
    def transaction(self: Database) -> Iterator[Any]:
        started = time.perf_counter()
        try:
            with original(self) as conn:
                yield conn
        finally:
            with _holds_lock:
                _holds.append((started, time.perf_counter() - started))

    return transaction


Database.write = _timed(Database.write)  # type: ignore[method-assign]
Database.read = _timed(Database.read)  # type: ignore[method-assign]


@dataclass
class Row:
    request: str
    status: list[int] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)
    held_ms: list[float] = field(default_factory=list)
    bytes: int = 0


@dataclass
class Timings:
    backend: str
    rows: dict[str, Row] = field(default_factory=dict)

    def call(self, name: str, send: Callable[[], httpx.Response]) -> httpx.Response:
        started = time.perf_counter()
        r = send()
        ended = time.perf_counter()
        with _holds_lock:
            held = [s for t, s in _holds if started <= t <= ended]
        row = self.rows.setdefault(name, Row(name))
        row.status.append(r.status_code)
        row.ms.append((ended - started) * 1000)
        row.held_ms.append(max(held, default=0.0) * 1000)
        row.bytes = max(row.bytes, len(r.content))
        return r


def _ok(r: httpx.Response, status: int = 200) -> Any:
    if r.status_code != status:
        raise click.ClickException(f"{r.request.url}: {r.status_code}: {r.text[:800]}")
    return r.json()


# -- the server ------------------------------------------------------------------------------


@contextlib.contextmanager
def _serving(url: str, data_dir: Path) -> Iterator[tuple[str, Database]]:
    db = Database(url)
    db.upgrade()
    import_fest(db, io.BytesIO(SMALL.read_bytes()), SMALL.name, now=NOW)
    settings = Settings(
        data_dir=data_dir,
        database_url=url,
        dev_auth=True,
        seal_interval=0,
        dispatch=False,
        stats_interval=0,
    )
    service = PLLService(db, AuditKey.load(data_dir))
    app = create_app(settings, service)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", db
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        db.dispose()


def _client(base: str, data_dir: Path, persona: str) -> httpx.Client:
    headers = {
        "Authorization": f"Bearer {issue(data_dir, persona, None)}",
        "Content-Type": "application/fhir+json",
        "X-PLL-Access-Basis": "HPBEHANDLINGSRELASJON",
    }
    return httpx.Client(base_url=base, headers=headers, timeout=600)


def _database(backend: str, pg_url: str, tmp: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'operation-limits.sqlite3'}"
    recreate_database(pg_url)  # only a pll_bench* database is ever dropped
    return pg_url


# -- building blocks -------------------------------------------------------------------------


def _patient(gp: httpx.Client, seed: int, *, with_list: bool = True) -> tuple[str, str, str]:
    """A new patient (and their list): (patient id, list id or "", fødselsnummer)."""
    fnr = generate_synthetic_fnr(random.Random(seed))
    body = {"resourceType": "Patient", "identifier": [{"system": FNR, "value": fnr}]}
    pid = _ok(gp.post("/fhir/Patient", json=body), 201)["id"]
    list_id = ""
    if with_list:
        lst = {
            "resourceType": "List",
            "status": "current",
            "mode": "working",
            "subject": {"reference": f"Patient/{pid}"},
        }
        list_id = _ok(gp.post("/fhir/List", json=lst), 201)["id"]
    return pid, list_id, fnr


def _statement(pid: str, dose: str = "1 tablett morgen", *, packed: bool = False) -> dict:
    code, atc, name = SIMVASTATIN
    res: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {
            "coding": [{"system": FEST, "code": code}, {"system": ATC, "code": atc}],
            "text": name,
        },
        "subject": {"reference": f"Patient/{pid}"},
        "dosage": [{"text": dose}],
    }
    if packed:
        # packable (issue 18): tablets at a fixed time, on a prescription the caller links
        res["dosage"] = MORNING
        res["extension"] = [
            {"url": ADMINISTRATION, "extension": [{"url": "mddispensed", "valueBoolean": True}]}
        ]
    return res


#: one tablet in the morning, structured (a packed entry's dosage)
MORNING = [
    {
        "timing": {"repeat": {"when": ["MORN"]}},
        "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablett"}}],
    }
]


def _prescription(pid: str) -> dict[str, Any]:
    code, atc, name = SIMVASTATIN
    return {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": FEST, "code": code}, {"system": ATC, "code": atc}],
            "text": name,
        },
        "subject": {"reference": f"Patient/{pid}"},
        "dosageInstruction": MORNING,
    }


def _fill(gp: httpx.Client, pid: str, n: int, *, packed: bool = False) -> list[dict[str, Any]]:
    """``n`` entries on the list, by transaction Bundles of at most MAX_BUNDLE_ENTRIES."""
    written: list[dict[str, Any]] = []
    while len(written) < n:
        # a packed entry comes with the prescription it is based on (issue 18)
        part = min(limits.MAX_BUNDLE_ENTRIES // (2 if packed else 1), n - len(written))
        entries: list[dict[str, Any]] = []
        for _ in range(part):
            statement = _statement(pid, packed=packed)
            if packed:
                rx = f"urn:uuid:{uuid.uuid4()}"
                statement["basedOn"] = [{"reference": rx}]
                entries.append(
                    {
                        "fullUrl": rx,
                        "resource": _prescription(pid),
                        "request": {"method": "POST", "url": "MedicationRequest"},
                    }
                )
            entries.append(
                {
                    "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                    "resource": statement,
                    "request": {"method": "POST", "url": "MedicationStatement"},
                }
            )
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        answer = _ok(gp.post("/fhir", json=bundle))
        written += [
            e["resource"]
            for e in answer["entry"]
            if e["resource"]["resourceType"] == "MedicationStatement"
        ]
    return written


def _params(*parameters: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(parameters)}


# -- reconciliation --------------------------------------------------------------------------


def _reconcile(t: Timings, gp: httpx.Client, rounds: int) -> None:
    pid, list_id, _ = _patient(gp, 101)
    _fill(gp, pid, limits.MAX_LIST_ENTRIES)
    lines = [_statement(pid, f"{n + 2} tabletter morgen") for n in range(limits.MAX_SOURCE_ITEMS)]
    source = [
        {"name": "source", "valueCode": "discharge"},
        {
            "name": "resource",
            "resource": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": s} for s in lines],
            },
        },
    ]
    path = f"/fhir/List/{list_id}"
    for _ in range(rounds):
        r = t.call(
            f"$compare: {limits.MAX_SOURCE_ITEMS} lines, {limits.MAX_LIST_ENTRIES} entries",
            lambda: gp.post(f"{path}/$compare", json=_params(*source)),
        )
    answer = _ok(r)
    version = answer["parameter"][1]["valueInteger"]
    ids = [
        next(q["valueString"] for q in p["part"] if q["name"] == "id")
        for p in answer["parameter"]
        if p["name"] == "difference"
    ]
    accept = [{"name": "accept", "valueString": i} for i in ids]
    t.call(
        f"$reconcile: {len(ids)} differences taken",
        lambda: gp.post(
            f"{path}/$reconcile",
            json=_params(*source, *accept),
            headers={"If-Match": f'W/"{version}"'},
        ),
    )
    over = copy.deepcopy(source)
    over[1]["resource"]["entry"].append(over[1]["resource"]["entry"][0])
    t.call(
        "refused: source one line over its limit",
        lambda: gp.post(f"{path}/$compare", json=_params(*over)),
    )


# -- SFM -------------------------------------------------------------------------------------


def _get_medication(gp: httpx.Client, fnr: str) -> dict[str, Any]:
    patient = {"resourceType": "Patient", "identifier": [{"system": FNR, "value": fnr}]}
    return dict(
        _ok(
            gp.post(
                "/fhir/Patient/$getMedication",
                json=_params({"name": "patient", "resource": patient}),
            )
        )
    )


def _send_from(read: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    out = copy.deepcopy(read)
    bundle = out["parameter"][0]["resource"]
    comp = bundle["entry"][0]["resource"]
    target = comp["identifier"]["value"]
    comp["identifier"] = {"use": "official", "value": str(uuid.uuid4())}
    comp["relatesTo"] = [{"code": "replaces", "targetIdentifier": {"value": target}}]
    edit(bundle)
    return out


def _prescribe(bundle: dict[str, Any], n: int) -> None:
    """``n`` new prescriptions, each a statement flagged createeresept with its Medication."""
    code, atc, name = SIMVASTATIN
    med = str(uuid.uuid4())
    bundle["entry"].append(
        {
            "fullUrl": f"urn:uuid:{med}",
            "resource": {
                "resourceType": "Medication",
                "code": {
                    "coding": [
                        {"system": FEST, "code": code, "display": name},
                        {"system": ATC, "code": atc},
                    ]
                },
            },
        }
    )
    section = bundle["entry"][0]["resource"]["section"][0].setdefault("entry", [])
    for _ in range(n):
        resept = str(uuid.uuid4())
        bundle["entry"].append(
            {
                "fullUrl": f"urn:uuid:{resept}",
                "resource": {
                    "resourceType": "MedicationStatement",
                    "extension": [
                        {
                            "url": f"{SD}/sfm-reseptamendment",
                            "extension": [
                                {"url": "createeresept", "valueBoolean": True},
                                {"url": "dssn", "valueString": "1 tablett morgen"},
                                {"url": "reit", "valueString": "3"},
                            ],
                        }
                    ],
                    "identifier": [{"use": "usual", "type": {"text": "ReseptId"}, "value": resept}],
                    "status": "active",
                    "medicationReference": {"reference": f"urn:uuid:{med}", "display": name},
                    "subject": bundle["entry"][0]["resource"]["subject"],
                    "dosage": [{"text": "1 tablett morgen"}],
                },
            }
        )
        section.append({"reference": f"urn:uuid:{resept}"})


def _renew(bundle: dict[str, Any], n: int) -> None:
    """``n`` prescriptions of the section renewed: a new ReseptId, recallinfo naming the old."""
    by_url = {e.get("fullUrl"): e["resource"] for e in bundle["entry"]}
    for ref in bundle["entry"][0]["resource"]["section"][0]["entry"][:n]:
        st = by_url[ref["reference"]]
        old = next(i for i in st["identifier"] if i["type"]["text"] == "ReseptId")
        old_id, old["value"] = old["value"], str(uuid.uuid4())
        amendment = next(e for e in st["extension"] if e["url"] == f"{SD}/sfm-reseptamendment")
        amendment["extension"] = [
            e for e in amendment["extension"] if e["url"] not in ("rfstatus", "reseptdate")
        ] + [
            {"url": "createeresept", "valueBoolean": True},
            {
                "url": "recallinfo",
                "extension": [
                    {"url": "recallId", "valueString": old_id},
                    {
                        "url": "recallcode",
                        "valueCodeableConcept": {
                            "coding": [{"system": "urn:oid:2.16.578.1.12.4.1.1.7500", "code": "1"}]
                        },
                    },
                ],
            },
        ]


def _pad(bundle: dict[str, Any]) -> None:
    """Entries no section names (an M25 note each) up to MAX_SFM_ENTRIES."""
    more = limits.MAX_SFM_ENTRIES - len(bundle["entry"])
    bundle["entry"] += [
        {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": {"resourceType": "Basic", "code": {"text": "padding"}},
        }
        for _ in range(more)
    ]


def _sfm(t: Timings, gp: httpx.Client) -> None:
    n = limits.MAX_SFM_WRITES // 2
    _, _, fnr = _patient(gp, 202, with_list=False)
    send = "/fhir/Patient/$sendMedication"
    body = _send_from(_get_medication(gp, fnr), lambda b: _prescribe(b, n))
    _ok(
        t.call(
            f"$sendMedication: first send, {n} new prescriptions", lambda: gp.post(send, json=body)
        )
    )
    renewals = limits.MAX_SFM_WRITES // 3
    read = _get_medication(gp, fnr)
    body = _send_from(read, lambda b: _renew(b, renewals + 1))
    t.call("refused: one renewal past the write limit", lambda: gp.post(send, json=body))
    body = _send_from(read, lambda b: _renew(b, renewals))
    _ok(t.call(f"$sendMedication: {renewals} renewals", lambda: gp.post(send, json=body)))
    body = _send_from(_get_medication(gp, fnr), _pad)
    _ok(
        t.call(
            f"$sendMedication: unchanged, {limits.MAX_SFM_ENTRIES} entries",
            lambda: gp.post(send, json=body),
        )
    )
    more = limits.MAX_LIST_ENTRIES + 1 - n
    body = _send_from(_get_medication(gp, fnr), lambda b: _prescribe(b, more))
    t.call("refused: one medicine past the list limit", lambda: gp.post(send, json=body))


# -- e-multidose -----------------------------------------------------------------------------


def _multidose(t: Timings, gp: httpx.Client, pharmacist: httpx.Client, rounds: int) -> None:
    pharmacy = {
        "name": "pharmacy",
        "valueReference": {
            "identifier": {"system": ORGNR, "value": BERGEN},
            "display": "Apotek 1 Bergen multidose",
        },
    }
    pid, list_id, _ = _patient(gp, 303)
    _ok(gp.post(f"/fhir/Patient/{pid}/$multidose-register", json=_params(pharmacy)))
    _fill(gp, pid, 3, packed=True)
    path = f"/fhir/List/{list_id}"
    item = {
        "name": "item",
        "part": [
            {"name": "action", "valueCode": "new"},
            # not packed: a pharmacy's new medicine has no prescription on the list yet
            {"name": "statement", "resource": _statement(pid)},
            {"name": "reason", "valueString": "Står på papirresept fra sykehuset"},
        ],
    }
    proposal = _params(*[item] * limits.MAX_PROPOSAL_ITEMS)
    taken: list[str] = []
    while len(taken) < limits.MAX_PENDING_ITEMS:
        r = t.call(
            f"$propose: {limits.MAX_PROPOSAL_ITEMS} items",
            lambda: pharmacist.post(f"{path}/$propose", json=proposal),
        )
        taken += [
            next(q["valueId"] for q in i["part"] if q["name"] == "id")
            for p in _ok(r)["parameter"]
            for i in p["part"]
            if i["name"] == "item"
        ]
    t.call(
        "refused: one item past the pending limit",
        lambda: pharmacist.post(f"{path}/$propose", json=_params(item)),
    )
    t.call(
        f"$proposals?status=pending ({limits.MAX_PENDING_ITEMS} items)",
        lambda: pharmacist.get(f"{path}/$proposals", params={"status": "pending"}),
    )
    decisions = [
        {
            "name": "decision",
            "part": [
                {"name": "item", "valueString": i},
                {"name": "outcome", "valueCode": "accept"},
            ],
        }
        for i in taken
    ]
    _ok(
        t.call(
            f"$decide: {len(taken)} items accepted",
            lambda: gp.post(f"{path}/$decide", json=_params(*decisions)),
        )
    )
    # a list of MAX_PACKING_ITEMS entries packed in multidose, reported in full
    pid, list_id, _ = _patient(gp, 304)
    _ok(gp.post(f"/fhir/Patient/{pid}/$multidose-register", json=_params(pharmacy)))
    entries = _fill(gp, pid, limits.MAX_PACKING_ITEMS, packed=True)
    report = _params(
        {"name": "period", "valuePeriod": {"start": "2026-11-23", "end": "2026-12-06"}},
        *[
            {
                "name": "item",
                "part": [
                    {
                        "name": "entry",
                        "valueReference": {"reference": f"MedicationStatement/{e['id']}"},
                    }
                ],
            }
            for e in entries
        ],
    )
    for _ in range(rounds):
        _ok(
            t.call(
                f"$packing-report: {limits.MAX_PACKING_ITEMS} items",
                lambda: pharmacist.post(f"/fhir/List/{list_id}/$packing-report", json=report),
            )
        )


# -- the run ---------------------------------------------------------------------------------


def _run(backend: str, pg_url: str, rounds: int) -> Timings:
    t = Timings(backend)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        url = _database(backend, pg_url, tmp)
        with (
            _serving(url, tmp) as (base, _),
            _client(base, tmp, "gp") as gp,
            _client(base, tmp, "pharmacist") as pharmacist,
        ):
            _reconcile(t, gp, rounds)
            _sfm(t, gp)
            _multidose(t, gp, pharmacist, rounds)
    return t


@click.command()
@click.option("--backends", default="sqlite,postgresql", show_default=True)
@click.option(
    "--pg-url",
    default="postgresql://postgres@127.0.0.1:5432/pll_bench_operation_limits",
    show_default=True,
)
@click.option("--rounds", default=3, show_default=True, help="repeats of the repeatable requests")
def main(backends: str, pg_url: str, rounds: int) -> None:
    """Time the largest requests the operations' limits allow, and the transactions they hold."""
    table = Table(title="Largest allowed requests (ms: median / max)")
    columns = ("backend", "request", "n", "status", "end to end", "longest transaction", "bytes")
    for column in columns:
        table.add_column(column)
    out: list[dict[str, Any]] = []
    for backend in backends.split(","):
        t = _run(backend.strip(), pg_url, rounds)
        for row in t.rows.values():
            ms, held = sorted(row.ms), sorted(row.held_ms)
            entry = {
                "backend": t.backend,
                "request": row.request,
                "status": sorted(set(row.status)),
                "n": len(ms),
                "median_ms": round(ms[len(ms) // 2], 1),
                "max_ms": round(ms[-1], 1),
                "held_median_ms": round(held[len(held) // 2], 1),
                "held_max_ms": round(held[-1], 1),
                "bytes": row.bytes,
            }
            out.append(entry)
            table.add_row(
                t.backend,
                row.request,
                str(entry["n"]),
                ",".join(map(str, entry["status"])),
                f"{entry['median_ms']} / {entry['max_ms']}",
                f"{entry['held_median_ms']} / {entry['held_max_ms']}",
                str(row.bytes),
            )
    console.print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"operation-limits-{stamp}.json"
    limits_used = {
        name.lower(): getattr(limits, name) for name in dir(limits) if name.startswith("MAX_")
    }
    path.write_text(json.dumps({"limits": limits_used, "rows": out}, indent=1))
    console.print(f"written {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
