"""Patients the browser tests start from, set up over the FHIR API as a journal system would."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

from tests.conftest import LiveServer
from tests.e2e.conftest import Screen
from tests.integration.builders import new_fnr, new_patient_with_list, ok

FEST = "http://ehelse.no/fhir/CodeSystem/FEST"
ATC = "http://www.whocc.no/atc"
#: From tests/fixtures/fest/small.xml: (FEST id, ATC, name)
SIMVASTATIN = ("046321", "C10AA01", "Simvastatin Fjordpharma Tab 20 mg")
WARFARIN = ("081234", "B01AA03", "Warfarin Nordfarma Tab 2,5 mg")
METFORMIN = (None, "A10BA02", "Metformin tab 500 mg")


@dataclass
class Scene:
    fnr: str
    pid: str
    list_id: str
    #: entry ids by drug name
    entries: dict[str, str]
    #: prescription ids by drug name
    prescriptions: dict[str, str]


def _concept(drug: tuple[str | None, str, str]) -> dict[str, object]:
    fest, atc, name = drug
    coding = [{"system": ATC, "code": atc}]
    if fest:
        coding.insert(0, {"system": FEST, "code": fest})
    return {"coding": coding, "text": name}


def add_medicine(
    gp: httpx.Client, pid: str, drug: tuple[str | None, str, str], amount: int = 1
) -> tuple[str, str]:
    """An entry with its e-prescription, one tablet a day in the morning; (entry, rx) ids."""
    dosage = [
        {
            "timing": {"repeat": {"when": ["MORN"]}},
            "doseAndRate": [{"doseQuantity": {"value": amount, "unit": "tablett"}}],
        }
    ]
    rx = ok(
        gp.post(
            "/fhir/MedicationRequest",
            json={
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": _concept(drug),
                "subject": {"reference": f"Patient/{pid}"},
                # issued today (PLL dates it), so it is valid a year from the test's today
                "dosageInstruction": dosage,
            },
        ),
        201,
    )
    entry = ok(
        gp.post(
            "/fhir/MedicationStatement",
            json={
                "resourceType": "MedicationStatement",
                "status": "active",
                "category": {
                    "coding": [{"system": "urn:oid:2.16.578.1.12.4.1.1.9101", "code": "1"}]
                },
                "medicationCodeableConcept": _concept(drug),
                "subject": {"reference": f"Patient/{pid}"},
                "effectivePeriod": {"start": "2026-10-01"},
                "dosage": dosage,
                "basedOn": [{"reference": f"MedicationRequest/{rx['id']}"}],
            },
        ),
        201,
    )
    return entry["id"], rx["id"]


def patient_with_medicines(
    server: LiveServer, *drugs: tuple[str | None, str, str], fnr: str | None = None
) -> Scene:
    fnr = fnr or new_fnr()
    with server.client("gp") as gp:
        pid, list_id = new_patient_with_list(gp, fnr)
        entries, prescriptions = {}, {}
        for drug in drugs or (METFORMIN, SIMVASTATIN):
            entry_id, rx_id = add_medicine(gp, pid, drug)
            entries[drug[2]] = entry_id
            prescriptions[drug[2]] = rx_id
    return Scene(fnr, pid, list_id, entries, prescriptions)


def entry_row(screen: Screen, drug: str):  # type: ignore[no-untyped-def]
    """The list row of the entry whose drug's name begins with ``drug`` (its row header
    may name other drugs too, in an override note)."""
    return screen.page.locator(
        "tr", has=screen.page.get_by_role("rowheader", name=re.compile("^" + re.escape(drug)))
    )
