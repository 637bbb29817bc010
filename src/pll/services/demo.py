"""Synthetic patients with realistic regimens, written through the same service as the API.

Everything is invented: synthetic fødselsnumre (month + 80), names, and regimens drawn from
common Norwegian prescriptions (ATC codes from the WHO index). Each patient's list is built
in one change per step, so the demo has real history: created, later a dose change by a
hospital doctor, a discontinuation, a confirmation.

The patients, their doctors and what happens to their lists are here; the medicines they
take, and the entries and prescriptions that put them on a list, are in
:mod:`pll.services.demo_regimens` (named here too, as before).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from pll.auth.access import Access, Basis
from pll.auth.tokens import PERSONAS
from pll.domain.cases import Action
from pll.domain.identifiers import generate_synthetic_fnr
from pll.domain.model import Author, Role
from pll.domain.prescriptions import local_day
from pll.fhir import systems
from pll.services import demo_care
from pll.services import demo_stories as stories
from pll.services.cases import CaseService
from pll.services.demo_regimens import (
    METHOTREXATE,
    REGIMENS,
    Regimen,
    catalogued,
    prescription,
    regimen_ops,
    statement,
)
from pll.services.lists import Op, PLLService
from pll.services.stats import Statistics
from pll.stats import geography, organisations
from pll.stats.geography import Municipality
from pll.stats.indicators import MUNICIPALITY_EXTENSION, MUNICIPALITY_SYSTEM
from pll.stats.organisations import Organisation

__all__ = [
    "FIRST",
    "LAST",
    "MEN",
    "METHOTREXATE",
    "PILOT",
    "REGIMENS",
    "USING",
    "WEEKS",
    "WOMEN",
    "Regimen",
    "catalogued",
    "create_demo",
    "given_name",
    "prescription",
    "regimen_ops",
    "statement",
]

FIRST = [
    "Kari",
    "Ola",
    "Ingrid",
    "Per",
    "Astrid",
    "Nils",
    "Solveig",
    "Arne",
    "Berit",
    "Knut",
    "Liv",
    "Odd",
]
#: Given names by the sex a fødselsnummer encodes (its 9th digit: odd a man, even a woman),
#: so a patient's name and sex agree.
WOMEN = ["Kari", "Ingrid", "Astrid", "Solveig", "Berit", "Liv"]
MEN = ["Ola", "Per", "Nils", "Arne", "Knut", "Odd"]


def given_name(fnr: str, rng: random.Random) -> str:
    """A given name of the sex ``fnr`` encodes."""
    return rng.choice(MEN if int(fnr[8]) % 2 else WOMEN)


LAST = [
    "Hansen",
    "Johansen",
    "Olsen",
    "Larsen",
    "Andersen",
    "Pedersen",
    "Nilsen",
    "Kristiansen",
    "Berg",
]


def _persona_author(name: str) -> Author:
    p = PERSONAS[name]
    return Author(name=p.name, role=Role.DOCTOR, hpr=p.hpr, org_id=p.org_id, org_name=p.org_name)


#: How far back the demo's rollout starts, and the share of each region's organisations of
#: each type that use PLL by now (roughly the 2026 mandate's picture: Vest and Nord ahead).
WEEKS = 26
USING = {"Vest": 0.7, "Nord": 0.6, "Midt-Norge": 0.35, "Sør-Øst": 0.3}


@dataclass
class _Clock:
    """The demo's time: each patient's story is told at its own moment of the rollout."""

    at: datetime

    def __call__(self) -> datetime:
        return self.at

    def move_to(self, at: datetime) -> None:
        """On to ``at``, never back: a story's versions follow one another."""
        self.at = max(self.at, at)


@dataclass(frozen=True)
class _Staff:
    """The demo's doctors of one region: a GP office, a hospital and an emergency unit."""

    gps: list[Organisation]
    hospitals: list[Organisation]
    emergency: list[Organisation]
    nursing: list[Organisation]


def _doctor(org: Organisation, rng: random.Random, role: Role = Role.DOCTOR) -> Author:
    if org.id == PERSONAS["gp"].org_id:
        return _persona_author("gp")
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    hpr = str(rng.randint(9_200_000, 9_899_999))  # invented, outside the personas' numbers
    return Author(name=name, role=role, hpr=hpr, org_id=org.id, org_name=org.name)


def _staff(orgs: list[Organisation]) -> dict[str, _Staff]:
    """Per region, the organisations that use PLL in the demo: the first share of each type
    (in register order), so the rest are registered but not live."""
    out = {}
    for region, share in USING.items():
        using: dict[str, list[Organisation]] = {}
        for kind in ("fastlege", "sykehus", "legevakt_ohd_kad", "sykehjem_hjemmetjeneste"):
            mine = [o for o in orgs if o.region == region and o.actor_type == kind]
            using[kind] = mine[: max(1, math.ceil(share * len(mine)))] if mine else []
        out[region] = _Staff(
            using["fastlege"],
            using["sykehus"],
            using["legevakt_ohd_kad"],
            using["sykehjem_hjemmetjeneste"],
        )
    return out


def _home(rng: random.Random, places: list[Municipality], weights: list[int]) -> Municipality:
    return rng.choices(places, weights)[0]


def _address(place: Municipality) -> dict[str, Any]:
    """A home address with its municipality as HL7 Norway's no-basis-Address codes it."""
    return {
        "use": "home",
        "district": place.name,
        "_district": {
            "extension": [
                {
                    "url": MUNICIPALITY_EXTENSION,
                    "valueCoding": {
                        "system": MUNICIPALITY_SYSTEM,
                        "code": place.code,
                        "display": place.name,
                    },
                }
            ]
        },
    }


def create_demo(
    service: PLLService,
    patients: int,
    seed: int = 2026,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Create ``patients`` synthetic patients with a PLL each; returns their fødselsnumre.

    The organisations of the demo register are registered first. The patients live all
    over the country (weighted by population) and get their lists over the last
    :data:`WEEKS` weeks, more of them each week, from the GP offices, hospitals and
    emergency units of their region that use PLL; the statistics are then counted."""
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
    stats = Statistics(service.db, service.clock)
    orgs = organisations.demo()
    stats.register(orgs)
    staff = _staff(orgs)
    places = list(geography.municipalities().values())
    weights = [p.population for p in places]
    end = service.clock()
    clock = _Clock(end)
    dated = PLLService(service.db, service.trail.key, clock=clock)
    # The demo's doctors treat these patients: that is their basis for every access. Random
    # lists can hold combinations decision support would stop; the demo doctors go ahead.
    why = "Demodata: kombinasjonen er vurdert"
    regimens = catalogued(service, seed)
    numbers = []
    seen: set[str] = set()
    for n in range(patients):
        # the rollout speeds up: patient n's list is made at time (n/patients)^0.5 of the way
        clock.at = told = end - timedelta(weeks=WEEKS) * (1 - ((n + 1) / patients) ** 0.5)
        if n == 0:
            # the first patient's GP office was in the pilot: their list is older
            clock.at = end - PILOT
        # the first patient lives in Bergen and has the GP persona as doctor (the demo's login)
        place = geography.municipalities()["4601"] if n == 0 else _home(rng, places, weights)
        team = staff[place.region]
        gp_org = next((o for o in team.gps if o.id == PERSONAS["gp"].org_id), None)
        gp_org = gp_org if place.code == "4601" and gp_org else rng.choice(team.gps)
        gp = Access(_doctor(gp_org, rng), Basis.TREATMENT, "pll-demo", why)
        hospital = Access(
            _doctor(rng.choice(team.hospitals), rng), Basis.TREATMENT, "pll-demo", why
        )
        fnr = generate_synthetic_fnr(rng)
        while fnr in seen:  # the same number twice would be the same patient
            fnr = generate_synthetic_fnr(rng)
        seen.add(fnr)
        family = rng.choice(LAST)
        name = {"family": family, "given": [given_name(fnr, rng)]}
        patient, _ = dated.register_patient(
            gp,
            {
                "resourceType": "Patient",
                "identifier": [{"system": systems.FNR, "value": fnr}],
                "name": [name],
                "address": [_address(place)],
            },
        )
        pid = patient["id"]
        numbers.append(fnr)
        dated.create_list(gp, {"resourceType": "List", "subject": {"reference": f"Patient/{pid}"}})
        chosen = rng.sample(regimens, rng.randint(3, 8))
        reviewer = _stories_before_review(dated, gp, pid, n, regimens, chosen)
        if n == 0:
            _pilot_prescription(dated, gp, pid, regimens, chosen)
            clock.at = told
        start = f"202{rng.randint(3, 6)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
        ops = regimen_ops(dated, pid, chosen, start, local_day(clock.at).isoformat())
        result = dated.change(reviewer, pid, ops, "Legemiddelgjennomgang hos fastlege")
        entries = [w for w in result.written if w.rtype == "MedicationStatement"]
        clock.at = min(clock.at + timedelta(days=rng.randint(1, 40)), end)
        _later(dated, rng, clock, end, _Visit(pid, gp, hospital, team, entries))
        stories.end_courses(dated, gp, pid, clock.move_to, end)
        if progress:
            progress(1)
    demo_care.register_residents(service, numbers)  # the nursing home of /kurve
    stats.catch_up()
    return numbers


def _stories_before_review(
    service: PLLService,
    gp: Access,
    pid: str,
    n: int,
    regimens: list[Regimen],
    chosen: list[Regimen],
) -> Access:
    """What the first two patients' stories put in place before the GP's review, which
    makes their lists (``chosen`` is changed in place, no random draw); returns who makes
    the review.

    The first patient (the GP persona's) takes methotrexate once a week, apixaban and
    sertraline (a pair that interacts: the findings name it), and is allergic to
    penicillin, so no penicillin is on their list. The second had muscle pain on a statin,
    recorded before the GP tries atorvastatin all the same: the review meets the reaction
    and goes ahead with the GP's reason for the override."""

    def ensure(atc: str) -> None:
        drug = next(r for r in regimens if r.atc == atc)
        if drug not in chosen:
            chosen.append(drug)

    if n == 0:
        ensure(METHOTREXATE.atc)
        for atc in stories.INTERACTING:
            ensure(atc)
        chosen[:] = [r for r in chosen if not r.atc.startswith(stories.PENICILLIN[0])]
        stories.record(service, gp, pid, stories.PENICILLIN)
    if n == 1:
        ensure(stories.STATIN_DRUG)
        stories.record(service, gp, pid, stories.STATINS)
        return stories.with_override(gp, stories.STATIN_OVERRIDE)
    return gp


#: How long before the demo's today the first patient's list was made, in the pilot (the GP
#: persona's office in Bergen, where PLL was first tried): longer ago than a prescription's
#: year of validity, so the prescription issued then has expired (issue 16's seen case).
PILOT = timedelta(days=365 + 75)


def _pilot_prescription(
    service: PLLService, gp: Access, pid: str, regimens: list[Regimen], chosen: list[Regimen]
) -> None:
    """The pilot visit: a regular medicine prescribed on the service's clock of that day,
    and never renewed since, so the list shows it as in use with an expired prescription
    ("Utløpt <date>": the patient may be without it). The medicine is the first regular one
    the later review does not put on the list (no random draw: the rest of the demo stays
    as the seed makes it)."""
    regimen = next(
        r for r in regimens if r.treatment == "1" and r not in chosen and r.atc != METHOTREXATE.atc
    )
    start = service.clock().date().isoformat()
    ops = regimen_ops(service, pid, [regimen], start)
    service.change(gp, pid, ops, "Oppstart i piloten")


def _double_dose(service: PLLService, hospital: Access, pid: str, target: Any) -> None:
    """A hospital doctor doubles the dose of one entry (a dose change during a stay)."""
    changed = dict(target.resource)
    dose = changed["dosage"][0].get("doseAndRate")
    if not dose:
        return
    first = dict(
        changed["dosage"][0],
        doseAndRate=[
            {
                "doseQuantity": dict(
                    dose[0]["doseQuantity"], value=dose[0]["doseQuantity"]["value"] * 2
                )
            }
        ],
    )
    most = first.get("maxDosePerPeriod")
    if most:  # as needed: the most a day doubles too, or a dose would exceed it
        first["maxDosePerPeriod"] = dict(
            most, numerator=dict(most["numerator"], value=most["numerator"]["value"] * 2)
        )
    changed["dosage"] = [first]
    service.change(
        hospital,
        pid,
        [Op("update", "MedicationStatement", target.id, changed, target.version)],
        "Dosejustering under innleggelse",
    )


@dataclass(frozen=True)
class _Visit:
    """One demo patient and the people around them."""

    pid: str
    gp: Access
    hospital: Access
    team: _Staff
    entries: list[Any]


def _later(
    service: PLLService, rng: random.Random, clock: _Clock, end: datetime, visit: _Visit
) -> None:
    """What happens to a demo list after it was made: a hospital dose change, a
    discontinuation, a confirmation, an emergency access, a discrepancy case."""
    if rng.random() < 0.4 and visit.entries:
        _double_dose(service, visit.hospital, visit.pid, visit.entries[0])
    if rng.random() < 0.3 and len(visit.entries) > 1:
        target = visit.entries[-1]
        stopped = dict(
            target.resource, status="stopped", statusReason=[{"text": "Ikke lenger indisert"}]
        )
        service.change(
            visit.gp,
            visit.pid,
            [Op("update", "MedicationStatement", target.id, stopped, target.version)],
        )
    if rng.random() < 0.5:
        current = service.current(visit.gp, patient_id=visit.pid)
        if current is not None:
            service.change(
                visit.gp,
                visit.pid,
                [Op("confirm", if_match=current.version)],
                "Samstemt med pasienten",
            )
    if rng.random() < 0.05 and visit.team.emergency:
        # an emergency unit reads the list without a treatment relationship
        unit = _doctor(rng.choice(visit.team.emergency), rng)
        service.current(Access(unit, Basis.EMERGENCY, "pll-demo"), patient_id=visit.pid)
    if rng.random() < 0.08 and visit.team.nursing and visit.entries:
        nurse = _doctor(rng.choice(visit.team.nursing), rng, Role.NURSE)
        case = CaseService(service).report(
            Access(nurse, Basis.TREATMENT, "pll-demo"),
            {
                "resourceType": "Task",
                "status": "requested",
                "intent": "order",
                "focus": {"reference": f"MedicationStatement/{visit.entries[0].id}"},
                "description": "Pasienten får ikke dette legemiddelet i hjemmetjenesten",
            },
        )
        if rng.random() < 0.6:
            clock.at = min(clock.at + timedelta(days=rng.randint(1, 14)), end)
            task = orjson.loads(case.text)
            owner = task["owner"]["identifier"]["value"]
            handler = visit.gp if owner == visit.gp.actor.org_id else visit.hospital
            CaseService(service).act(handler, task["id"], Action.RESOLVE, None)
