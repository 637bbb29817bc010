"""The demo's medicines: regimens drawn from common Norwegian prescriptions (ATC codes from
the WHO index), named as the demo catalogue names them, and the entries and e-prescriptions
that put them on a list. Everything is invented.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from pll.catalog.fest import tokens
from pll.domain.prescriptions import PACKAGE
from pll.fhir import systems
from pll.services import demo_stories as stories
from pll.services.decision_support import FEST
from pll.services.lists import Op, PLLService
from pll.store import catalog as catalog_store


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
