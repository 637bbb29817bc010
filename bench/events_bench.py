"""Events: how many per second reach rest-hook subscribers, and the lag from a write to the
read copy.

    .venv/bin/python bench/events_bench.py                                      # SQLite
    .venv/bin/python bench/events_bench.py --database-url postgresql://postgres@127.0.0.1:5432/pll_bench_events

1. Delivery: ``--writes`` list changes are made first (through the service, as the API does),
   then the dispatcher delivers them to ``--subscribers`` rest-hook subscriptions on a local
   receiver; events per second is deliveries over the time until every subscriber has all.
2. Lag: writes are made at a steady pace while ``ReadCopy.step`` follows in a loop; the lag of
   each change is from its commit until the copy holds that list version.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
import uvicorn
from rich.console import Console
from rich.table import Table
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pll.auth.access import Access, Basis
from pll.auth.audit import AuditKey
from pll.domain.identifiers import generate_synthetic_fnr
from pll.domain.model import Author, Role
from pll.events.dispatcher import Dispatcher
from pll.events.readcopy import ReadCopy, copy_list
from pll.events.run import consumers
from pll.services.base import utcnow
from pll.services.lists import Op, PLLService
from pll.services.subscriptions import SECRET_EXTENSION, Subscriptions
from pll.store.db import Database, normalise_url

console = Console()
RESULTS = Path(__file__).resolve().parent / "results"
DOCTOR = Access(
    Author("Kari Fastlege", Role.DOCTOR, hpr="9144889", org_id="974600951"),
    Basis.TREATMENT,
    "bench",
)


def _fresh(url: str | None, tmp: Path) -> str:
    if url is None:
        return f"sqlite:///{tmp / 'events.sqlite3'}"
    base, _, name = url.rpartition("/")
    admin = sa.create_engine(normalise_url(f"{base}/postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url


def _receiver() -> tuple[str, dict[str, int], uvicorn.Server]:
    counts: dict[str, int] = {}

    async def hook(request: Request) -> Response:
        await request.body()
        key = request.path_params["n"]
        counts[key] = counts.get(key, 0) + 1
        return Response(status_code=200)

    app = Starlette(routes=[Route("/hook/{n}", hook, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}", counts, server


def _entry(pid: str, i: int) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {"text": f"Legemiddel {i}"},
        "subject": {"reference": f"Patient/{pid}"},
        "dosage": [{"text": "1 tablett morgen"}],
    }


def _patient(service: PLLService, seed: int) -> str:
    fnr = generate_synthetic_fnr(random.Random(seed))
    found, _ = service.register_patient(
        DOCTOR,
        {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:oid:2.16.578.1.12.4.1.4.1", "value": fnr}],
        },
    )
    pid = str(found["id"])
    service.create_list(
        DOCTOR, {"resourceType": "List", "subject": {"reference": f"Patient/{pid}"}}
    )
    return pid


@click.command()
@click.option("--database-url", default=None, help="PostgreSQL URL (a database it may drop)")
@click.option("--writes", default=400, show_default=True)
@click.option("--subscribers", default=4, show_default=True)
@click.option("--lag-writes", default=200, show_default=True)
def main(database_url: str | None, writes: int, subscribers: int, lag_writes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(_fresh(database_url, Path(tmp)))
        db.upgrade()
        service = PLLService(db, AuditKey.load(Path(tmp)))
        hook_base, counts, receiver = _receiver()
        pids = [_patient(service, seed) for seed in range(subscribers)]
        for n, pid in enumerate(pids):
            Subscriptions(service).create(
                DOCTOR,
                {
                    "resourceType": "Subscription",
                    "status": "requested",
                    "reason": "bench",
                    "criteria": f"List?patient={pid}",
                    "channel": {"type": "rest-hook", "endpoint": f"{hook_base}/hook/{n}"},
                    "extension": [{"url": SECRET_EXTENSION, "valueString": "s" * 40}],
                },
            )
        for i in range(writes):
            pid = pids[i % len(pids)]
            service.change(
                DOCTOR, pid, [Op("create", "MedicationStatement", service.ids(), _entry(pid, i))]
            )
        stop = threading.Event()
        hooks = consumers(db, "http://bench/fhir", None, service.trail)
        dispatcher = Dispatcher(db, hooks, utcnow, poll=0.01)
        started = time.perf_counter()
        runner = threading.Thread(target=dispatcher.run, args=(stop,), daemon=True)
        runner.start()
        while sum(counts.values()) < writes:
            time.sleep(0.005)
        delivery_seconds = time.perf_counter() - started
        stop.set()
        runner.join()

        copy_db = Database(f"sqlite:///{Path(tmp) / 'copy.sqlite3'}")
        copy = ReadCopy(db, copy_db, utcnow)
        copy.setup()
        copy.rebuild()
        committed: dict[tuple[str, int], float] = {}
        seen: dict[tuple[str, int], float] = {}
        done = threading.Event()

        def follow() -> None:
            while not done.is_set() or len(seen) < len(committed):
                copy.step()
                now = time.perf_counter()
                with copy_db.read() as conn:
                    for row in conn.execute(sa.select(copy_list.c.list_id, copy_list.c.version)):
                        for v in range(1, row.version + 1):
                            seen.setdefault((row.list_id, v), now)
                time.sleep(0.01)

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        for i in range(lag_writes):
            pid = pids[i % len(pids)]
            result = service.change(
                DOCTOR, pid, [Op("create", "MedicationStatement", service.ids(), _entry(pid, i))]
            )
            committed[(result.list_id, int(result.list_version or 0))] = time.perf_counter()
            time.sleep(0.02)
        done.set()
        follower.join(timeout=120)
        lags = sorted((seen[k] - t) * 1000 for k, t in committed.items() if k in seen)
        receiver.should_exit = True
        copy_db.dispose()
        db.dispose()

    rows = {
        "database": "postgresql" if database_url else "sqlite",
        "events_delivered": writes,
        "subscribers": subscribers,
        "events_per_second": round(writes / delivery_seconds, 1),
        "copy_lag_median_ms": round(statistics.median(lags), 1),
        "copy_lag_p99_ms": round(lags[int(len(lags) * 0.99) - 1], 1),
        "copy_changes": len(lags),
    }
    table = Table(title=f"Events ({rows['database']})")
    table.add_column("measure")
    table.add_column("value")
    table.add_row(
        f"delivered per second ({writes} events, {subscribers} rest-hook subscribers)",
        str(rows["events_per_second"]),
    )
    table.add_row("write → read copy, median ms", str(rows["copy_lag_median_ms"]))
    table.add_row("write → read copy, p99 ms", str(rows["copy_lag_p99_ms"]))
    console.print(table)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"events-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(rows, indent=1))
    console.print(f"written to {out}")


if __name__ == "__main__":
    main()
