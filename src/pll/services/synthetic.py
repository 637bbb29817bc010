"""The synthetic patients of ``pll import generate`` and the benchmarks (issue 20).

Patients are numbered 1..N. Patient ``n``'s data depends only on ``n`` and the seed, so any
run of numbers can be loaded in any order, by several processes, and loaded again after a
stop to the same result:

- a synthetic fødselsnummer (month + 80), the ``n``-th of :func:`synthetic_fnrs`;
- a family and a given name of the sex the number encodes (:data:`~pll.services.demo.LAST`,
  :data:`~pll.services.demo.WOMEN`/``MEN``);
- one of :data:`PLANS` plans: 4–8 of the demo's regimens (:data:`~pll.services.demo.REGIMENS`)
  in use since a day in 2023–2026, drawn once from the seed.

A patient is written by :func:`write_patient`, the service's own write path: the patient is
registered and the PLL created with its entries in one change by a GP, as the API does
(``POST Patient``, then a transaction with the List and its MedicationStatements). The
bulk import replays that path's rows (:mod:`pll.services.bulk_templates`); a patient's data
is therefore drawn from a limited set of plans, each plan's rows made once.
"""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Connection

from pll.auth.access import Access, Basis
from pll.auth.tokens import PERSONAS
from pll.domain.model import Author, Role
from pll.fhir import systems
from pll.services.demo import LAST, MEN, REGIMENS, WOMEN, statement
from pll.services.lists import Op, PLLService

#: how many regimen plans the synthetic patients are drawn from
PLANS = 256
#: the reason every synthetic list is created with
REASON = "Legemiddelgjennomgang hos fastlege"
#: the client system a generated list is recorded as coming through (issue 19's per-client
#: figures count it apart from the journal systems)
CLIENT = "pll-import-generate"

_W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def _check(digits: str, weights: tuple[int, ...]) -> int | None:
    k = 11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    if k == 11:
        return 0
    return None if k == 10 else k


def fnrs_from(day: datetime.date, count: int) -> list[str]:
    """``count`` distinct synthetic fødselsnumre (month + 80) born from ``day`` on: for each
    birth date the individual numbers 000–499 (born in the 1900s) whose check digits are
    valid, about 413 a day."""
    out: list[str] = []
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


def synthetic_fnrs(count: int) -> list[str]:
    """The first ``count`` patients' fødselsnumre, the same every time (from 1940-01-01)."""
    return fnrs_from(datetime.date(1940, 1, 1), count)


@dataclass(frozen=True)
class Plan:
    """What a synthetic patient uses: indexes into ``REGIMENS`` (distinct medicines, so the
    list's order never falls back on the entries' ids), since ``start``."""

    regimens: tuple[int, ...]
    start: str


@cache
def plans(seed: int) -> tuple[Plan, ...]:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    out = []
    for _ in range(PLANS):
        chosen = tuple(rng.sample(range(len(REGIMENS)), rng.randint(4, 8)))
        start = f"202{rng.randint(3, 6)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
        out.append(Plan(chosen, start))
    return tuple(out)


@dataclass(frozen=True)
class Person:
    """A synthetic patient: number, fødselsnummer, names and plan."""

    n: int
    fnr: str
    family: str
    given: str
    plan: int


def _hash(n: int, seed: int) -> int:
    h = ((n * 0x9E3779B1) ^ (seed * 0x85EBCA77)) & 0xFFFFFFFF
    return (h * 0xC2B2AE3D) & 0xFFFFFFFF


def plan_of(n: int, seed: int) -> int:
    """The plan of patient ``n`` (an index into :func:`plans`)."""
    return (_hash(n, seed) >> 16) % PLANS


def person(n: int, fnr: str, seed: int) -> Person:
    """Patient ``n`` (whose fødselsnummer is ``fnr``): names and plan from a hash of ``n``
    and the seed — a few multiplications, where a seeded ``random.Random`` per patient
    would cost more than the rest of the patient's bulk load."""
    h = _hash(n, seed)
    given = MEN if int(fnr[8]) % 2 else WOMEN
    return Person(n, fnr, LAST[h % len(LAST)], given[(h >> 8) % len(given)], plan_of(n, seed))


def resource(p: Person) -> dict[str, Any]:
    """The Patient resource a journal system would send for ``p``."""
    return {
        "resourceType": "Patient",
        "identifier": [{"system": systems.FNR, "value": p.fnr}],
        "name": [{"family": p.family, "given": [p.given]}],
    }


def gp_access(client: str = CLIENT) -> Access:
    """The GP the ``gp`` development token stands for, through ``client``."""
    g = PERSONAS["gp"]
    author = Author(name=g.name, role=Role.DOCTOR, hpr=g.hpr, org_id=g.org_id, org_name=g.org_name)
    return Access(author, Basis.TREATMENT, client)


def write_patient(
    service: PLLService, conn: Connection, access: Access, p: Person, plan: Plan
) -> tuple[str, str]:
    """Register ``p`` and create their PLL with the plan's entries, in the caller's
    transaction, through the service's write path (what the API does). Returns the patient
    and list ids. Ids are drawn from ``service.ids`` in a fixed order: the patient's, one
    per entry, the list's, the event's."""
    patient, created = service.register_patient_in(conn, access, resource(p))
    if not created:
        raise ValueError(f"patient {p.n} ({p.fnr}) is registered already")
    pid = str(patient["id"])
    ops = [
        Op("create", "MedicationStatement", service.ids(), statement(pid, REGIMENS[i], plan.start))
        for i in plan.regimens
    ]
    result = service.apply_in(conn, access, pid, ops, REASON, create_list=True)
    return pid, result.list_id
