"""Loading N synthetic patients through the service, in batches of one transaction each.

Every patient is registered and given a PLL of 4–8 entries with
``PLLService.register_patient_in`` and ``PLLService.apply_in(..., create_list=True)``, the same
write path the API uses, so the stored rows (list documents, versions, provenance targets,
outbox) are what the server would have written. Each batch also records its patients in
``bench_patient`` inside the batch's own transaction, so a load that is stopped resumes exactly:
the missing numbers are loaded.

Patients are numbered 1..N; patient n's data depends only on n and the seed, so batches can be
loaded in any order and by several processes at once.
"""

from __future__ import annotations

import datetime
import multiprocessing as mp
import queue as queue_mod
import random
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from pll.auth.access import Access, Basis
from pll.auth.audit import AuditKey
from pll.auth.tokens import PERSONAS
from pll.domain.model import Author, Role
from pll.fhir import systems
from pll.services.demo import FIRST, LAST, REGIMENS, statement
from pll.services.lists import Op, PLLService
from pll.store.db import Database

_W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
REASON = "Legemiddelgjennomgang hos fastlege"


def _check(digits: str, weights: tuple[int, ...]) -> int | None:
    k = 11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    if k == 11:
        return 0
    return None if k == 10 else k


def synthetic_fnrs(count: int) -> list[str]:
    """``count`` distinct synthetic fødselsnumre (month + 80), the same every time.

    Walks birth dates from 1940-01-01 and, for each, the individual numbers 000–499 (born in
    the 1900s) that have valid check digits: about 413 numbers per day.
    """
    out: list[str] = []
    day = datetime.date(1940, 1, 1)
    while len(out) < count:
        prefix = f"{day.day:02d}{day.month + 80:02d}{day.year % 100:02d}"
        for ind in range(500):
            nine = f"{prefix}{ind:03d}"
            k1 = _check(nine, _W1)
            if k1 is None:
                continue
            k2 = _check(nine + str(k1), _W2)
            if k2 is None:
                continue
            out.append(f"{nine}{k1}{k2}")
            if len(out) == count:
                break
        day += datetime.timedelta(days=1)
    return out


#: The loader's audit key. Loaded records are never verified; the running server uses the key
#: in its own data directory for the records of the measured requests.
BENCH_KEY = AuditKey(b"pll-bench-audit-key-not-a-secret")


def gp_access() -> Access:
    """The same author the ``gp`` development token stands for."""
    p = PERSONAS["gp"]
    author = Author(name=p.name, role=Role.DOCTOR, hpr=p.hpr, org_id=p.org_id, org_name=p.org_name)
    return Access(author, Basis.TREATMENT, "pll-dev-client")


def _patient(
    service: PLLService, n: int, fnr: str, seed: int
) -> tuple[dict[str, Any], Callable[[str], list[Op]]]:
    rng = random.Random(seed * 1_000_003 + n)
    resource = {
        "resourceType": "Patient",
        "identifier": [{"system": systems.FNR, "value": fnr}],
        "name": [{"family": rng.choice(LAST), "given": [rng.choice(FIRST)]}],
    }
    chosen = rng.sample(REGIMENS, rng.randint(4, 8))
    start = f"202{rng.randint(3, 6)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"

    def ops(pid: str) -> list[Op]:
        return [
            Op("create", "MedicationStatement", service.ids(), statement(pid, r, start))
            for r in chosen
        ]

    return resource, ops


def load_batch(
    service: PLLService, access: Access, first: int, last: int, fnrs: list[str], seed: int
) -> None:
    """Patients ``first..last`` (inclusive, 1-based) in one transaction."""
    rows = []
    with service.db.write() as conn:
        for n in range(first, last + 1):
            resource, ops = _patient(service, n, fnrs[n - 1], seed)
            patient, created = service.register_patient_in(conn, access, resource)
            if not created:
                raise RuntimeError(f"patient {n} is registered but not recorded in bench_patient")
            pid = patient["id"]
            result = service.apply_in(conn, access, pid, ops(pid), REASON, create_list=True)
            rows.append({"n": n, "patient_id": pid, "list_id": result.list_id})
        conn.execute(
            text(
                "INSERT INTO bench_patient (n, patient_id, list_id) "
                "VALUES (:n, :patient_id, :list_id)"
            ),
            rows,
        )


def missing_batches(patients: int, done: set[int], batch_size: int) -> list[tuple[int, int]]:
    """Runs of consecutive patient numbers in 1..patients not loaded yet, at most ``batch_size``
    long, as ``(first, last)`` inclusive."""
    out: list[tuple[int, int]] = []
    first: int | None = None
    for n in range(1, patients + 2):
        missing = n <= patients and n not in done
        if first is not None and (not missing or n - first == batch_size):
            out.append((first, n - 1))
            first = None
        if missing and first is None:
            first = n
    return out


def _worker(url: str, todo: list[tuple[int, int]], patients: int, seed: int, done: Any) -> None:
    fnrs = synthetic_fnrs(patients)
    db = Database(url, pool_size=1)
    service = PLLService(db, BENCH_KEY)
    access = gp_access()
    try:
        for first, last in todo:
            load_batch(service, access, first, last, fnrs, seed)
            done.put(last - first + 1)
    except BaseException as exc:
        done.put(f"loading failed: {exc!r}")
        raise
    finally:
        db.dispose()


def load(
    url: str,
    patients: int,
    todo: list[tuple[int, int]],
    seed: int,
    processes: int,
    progress: Callable[[int], None],
) -> float:
    """Load the batches ``todo`` with up to ``processes`` processes; returns seconds taken."""
    started = time.perf_counter()
    if not todo:
        return 0.0
    ctx = mp.get_context("spawn")
    done = ctx.Queue()
    processes = max(1, min(processes, len(todo)))
    procs = [
        ctx.Process(target=_worker, args=(url, todo[i::processes], patients, seed, done))
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    remaining = sum(last - first + 1 for first, last in todo)
    try:
        while remaining > 0:
            try:
                item = done.get(timeout=5)
            except queue_mod.Empty:
                if not any(p.is_alive() for p in procs):
                    raise RuntimeError(
                        "the loader processes ended before loading was done"
                    ) from None
                continue
            if isinstance(item, str):
                raise RuntimeError(item)
            remaining -= item
            progress(item)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
                p.join(timeout=10)
    return time.perf_counter() - started
