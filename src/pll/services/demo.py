"""Synthetic patients with realistic regimens, written through the same service as the API.

Everything is invented: synthetic fødselsnumre (month + 80), names, and regimens drawn from
common Norwegian prescriptions (ATC codes from the WHO index). Each patient's list is built
in one change per step, so the demo has real history: created, later a dose change by a
hospital doctor, a discontinuation, a confirmation.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import orjson

from pll.auth.access import Access, Basis
from pll.auth.tokens import PERSONAS
from pll.catalog.fest import tokens
from pll.domain.cases import Action
from pll.domain.identifiers import generate_synthetic_fnr
from pll.domain.model import Author, Role
from pll.domain.prescriptions import PACKAGE, local_day
from pll.fhir import systems
from pll.services import demo_care
from pll.services import demo_stories as stories
from pll.services.cases import CaseService
from pll.services.decision_support import FEST
from pll.services.lists import Op, PLLService
from pll.services.stats import Statistics
from pll.stats import geography, organisations
from pll.stats.geography import Municipality
from pll.stats.indicators import MUNICIPALITY_EXTENSION, MUNICIPALITY_SYSTEM
from pll.stats.organisations import Organisation
from pll.store import catalog as catalog_store

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


def _when(*codes: str, amount: float = 1, unit: str = "tablett") -> dict[str, Any]:
    return {
        "timing": {"repeat": {"when": list(codes)}},
        "doseAndRate": [{"doseQuantity": {"value": amount, "unit": unit}}],
    }


def _for_days(sequence: int, days: int, dosage: dict[str, Any]) -> dict[str, Any]:
    """One step of a tapering regimen: ``dosage`` for ``days`` days."""
    repeat = dict(dosage["timing"]["repeat"])
    repeat["boundsDuration"] = {
        "value": days,
        "unit": "d",
        "system": "http://unitsofmeasure.org",
        "code": "d",
    }
    return {"sequence": sequence, **dosage, "timing": {"repeat": repeat}}


def _prn(amount: float, unit: str, max_day: float) -> dict[str, Any]:
    return {
        "asNeededBoolean": True,
        "doseAndRate": [{"doseQuantity": {"value": amount, "unit": unit}}],
        "maxDosePerPeriod": {
            "numerator": {"value": max_day, "unit": unit},
            "denominator": {"value": 1, "unit": "d"},
        },
    }


@dataclass(frozen=True)
class Regimen:
    name: str
    atc: str
    dosage: list[dict[str, Any]]
    treatment: str  # 1 Fast, 2 Kur, 3 Behov
    indication: str
    #: the catalogue package it is given as (Varenr), when a catalogue is in use
    fest: str | None = None


def _coding(regimen: Regimen) -> list[dict[str, str]]:
    codings = [{"system": systems.ATC, "code": regimen.atc}]
    if regimen.fest:
        codings.insert(0, {"system": FEST, "code": regimen.fest, "display": regimen.name})
    return codings


def catalogued(service: PLLService, seed: int) -> list[Regimen]:
    """The demo regimens given as packages of the catalogue in use: for each, an active
    package of the drug it names (``pll demo``'s catalogue has them all, see
    :mod:`pll.catalog.demo_drugs`), so demo lists carry FEST codes, forms and names the
    catalogue knows. A regimen whose drug the catalogue lacks keeps its ATC code only."""
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
    out = []
    with service.db.read() as conn:
        version = catalog_store.active(conn)
        for regimen in REGIMENS:
            rows = []
            if version is not None:
                word = min(tokens(regimen.name.split()[0]), key=len)
                rows = [
                    r
                    for r in catalog_store.search(conn, version, word, 200, ["package"])
                    if r.active and r.name == regimen.name
                ]
            if not rows:
                out.append(regimen)
                continue
            row = rng.choice(rows)
            out.append(replace(regimen, atc=row.atc or regimen.atc, fest=row.code))
    return out


def _weekly(amount: float, day: str) -> dict[str, Any]:
    """Once a week on a named day (methotrexate, alendronate), as the dosage editor's weekly
    mode writes it."""
    repeat = {"frequency": 1, "period": 1, "periodUnit": "wk", "dayOfWeek": [day]}
    return {
        "timing": {"repeat": repeat},
        "doseAndRate": [{"doseQuantity": {"value": amount, "unit": "tablett"}}],
    }


#: Named as the demo catalogue names them (``Brand Form Strength``), each dosed in a unit
#: its form takes (:func:`pll.domain.forms.units_for`).
REGIMENS = [
    Regimen("Paracet Tab 500 mg", "N02BE01", [_prn(2, "tablett", 6)], "3", "Smerter"),
    Regimen(
        "Metformin Nordfarma Tab 500 mg", "A10BA02", [_when("MORN", "EVE")], "1",
        "Diabetes type 2",
    ),
    Regimen("Lipitor Tab 20 mg", "C10AA05", [_when("EVE")], "1", "Hyperkolesterolemi"),
    Regimen("Norvasc Tab 5 mg", "C08CA01", [_when("MORN")], "1", "Hypertensjon"),
    Regimen("Triatec Kaps 5 mg", "C09AA05", [_when("MORN", unit="kapsel")], "1", "Hypertensjon"),
    Regimen("Levaxin Tab 50 mikrog", "H03AA01", [_when("MORN")], "1", "Hypotyreose"),
    Regimen("Somac Tab 20 mg", "A02BC02", [_when("MORN")], "1", "Refluks"),
    Regimen("Eliquis Tab 5 mg", "B01AF02", [_when("MORN", "EVE")], "1", "Atrieflimmer"),
    Regimen("Selo-Zok Tab 50 mg", "C07AB02", [_when("MORN")], "1", "Hypertensjon"),
    Regimen("Furix Tab 40 mg", "C03CA01", [_when("MORN")], "1", "Hjertesvikt"),
    Regimen("Zoloft Tab 50 mg", "N06AB06", [_when("MORN")], "1", "Depresjon"),
    Regimen("Imovane Tab 5 mg", "N05CF01", [_prn(1, "tablett", 1)], "3", "Søvnvansker"),
    Regimen(
        "Ventoline Inh aerosol 0,1 mg/dose", "R03AC02", [_prn(2, "inhalasjon", 8)], "3", "Astma"
    ),
    Regimen("Alendronat Nordfarma Tab 70 mg", "M05BA04", [_weekly(1, "sun")], "1", "Osteoporose"),
    Regimen(
        "Prednisolon Nordfarma Tab 5 mg",
        "H02AB06",
        [_for_days(1, 5, _when("MORN", amount=4)), _for_days(2, 5, _when("MORN", amount=2))],
        "2",
        "KOLS-forverring",
    ),
    Regimen(
        "Apocillin Tab 660 mg",
        "J01CE02",
        [
            {
                "timing": {
                    "repeat": {
                        "frequency": 4,
                        "period": 1,
                        "periodUnit": "d",
                        "boundsDuration": {
                            "value": 7,
                            "unit": "d",
                            "system": "http://unitsofmeasure.org",
                            "code": "d",
                        },
                    }
                },
                "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "tablett"}}],
            }
        ],
        "2",
        "Halsbetennelse",
    ),
    Regimen(
        "Locoid Krem 1 mg/g", "D07AB02", [_when("MORN", "EVE", unit="påføring")], "1", "Eksem"
    ),
    Regimen(
        "Insulatard Inj 100 IE/ml", "A10AC01", [_when("MORN", amount=20, unit="IE")], "1",
        "Diabetes type 2",
    ),
    Regimen(
        "Duphalac Mikst 667 mg/ml", "A06AD11", [_when("MORN", amount=15, unit="ml")], "1",
        "Forstoppelse",
    ),
]  # fmt: skip

#: Methotrexate once a week (the weekly drug a daily dose would make dangerous): always on
#: the first demo patient's list, the one the GP persona logs in to see.
METHOTREXATE = Regimen(
    "Metotreksat Nordfarma Tab 2,5 mg", "L04AX03", [_weekly(4, "mon")], "1", "Revmatoid artritt"
)
REGIMENS.append(METHOTREXATE)


def _persona_author(name: str) -> Author:
    p = PERSONAS[name]
    return Author(name=p.name, role=Role.DOCTOR, hpr=p.hpr, org_id=p.org_id, org_name=p.org_name)


def statement(patient_id: str, regimen: Regimen, start: str) -> dict[str, Any]:
    """An entry for ``regimen``, in use since ``start``; a course (*Kur*) ends when its
    dosage has run its length (``effectivePeriod.end``)."""
    period = {"start": start}
    if regimen.treatment == stories.COURSE:
        period = stories.course_period(regimen.dosage, date.fromisoformat(start))
    return {
        "resourceType": "MedicationStatement",
        "status": "active",
        "category": {"coding": [{"system": systems.TREATMENT_TYPE, "code": regimen.treatment}]},
        "medicationCodeableConcept": {"coding": _coding(regimen), "text": regimen.name},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectivePeriod": period,
        "reasonCode": [{"text": regimen.indication}],
        "dosage": regimen.dosage,
    }


def prescription(patient_id: str, regimen: Regimen) -> dict[str, Any]:
    """An e-prescription for a regimen, as a GP would issue it: dated by PLL the day it is
    issued (the visit), valid a year from then; the medicine's use may have started long
    before (the entry's start)."""
    return {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": _coding(regimen), "text": regimen.name},
        "subject": {"reference": f"Patient/{patient_id}"},
        "dispenseRequest": {
            "quantity": {"value": 1, "unit": PACKAGE},
            "numberOfRepeatsAllowed": 3,
        },
        "dosageInstruction": regimen.dosage,
    }


def regimen_ops(
    service: PLLService,
    patient_id: str,
    chosen: list[Regimen],
    start: str,
    course_start: str | None = None,
) -> list[Op]:
    """One change that puts ``chosen`` on a list; regular medicines get an e-prescription,
    linked to their entry. The medicines have been in use since ``start``; a course
    begins on ``course_start`` (the visit), when given."""
    ops: list[Op] = []
    for regimen in chosen:
        begun = course_start if course_start and regimen.treatment == stories.COURSE else start
        entry = statement(patient_id, regimen, begun)
        if regimen.treatment == "1":
            rx_id = service.ids()
            ops.append(Op("create", "MedicationRequest", rx_id, prescription(patient_id, regimen)))
            entry["basedOn"] = [{"reference": f"MedicationRequest/{rx_id}"}]
        ops.append(Op("create", "MedicationStatement", service.ids(), entry))
    return ops


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
