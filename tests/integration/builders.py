"""Small builders for the FHIR resources the integration tests send."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from pll.catalog.importer import import_fest
from pll.domain.identifiers import generate_synthetic_fnr
from pll.store.db import Database

FNR = "urn:oid:2.16.578.1.12.4.1.4.1"
ATC = "http://www.whocc.no/atc"
SMALL_FEST = Path(__file__).resolve().parents[1] / "fixtures" / "fest" / "small.xml"
_rng = random.Random(80)


def new_fnr() -> str:
    return generate_synthetic_fnr(_rng)


def patient(fnr: str | None = None) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": FNR, "value": fnr or new_fnr()}],
        "name": [{"family": "Testesen", "given": ["Tore"]}],
    }


def dose(amount: float, *when: str, unit: str = "tablett") -> list[dict[str, Any]]:
    return [
        {
            "timing": {"repeat": {"when": list(when)}},
            "doseAndRate": [{"doseQuantity": {"value": amount, "unit": unit}}],
        }
    ]


def statement(
    patient_ref: str,
    name: str,
    atc: str,
    amount: float = 1,
    *when: str,
    based_on: list[str] | None = None,
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {"coding": [{"system": ATC, "code": atc}], "text": name},
        "subject": {"reference": patient_ref},
        "dosage": dose(amount, *(when or ("MORN",))),
    }
    if based_on:
        res["basedOn"] = [{"reference": r} for r in based_on]
    return res


def prescription(patient_ref: str, name: str, atc: str, prior: str | None = None) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": ATC, "code": atc}], "text": name},
        "subject": {"reference": patient_ref},
        "dosageInstruction": dose(1, "MORN"),
    }
    if prior:
        res["priorPrescription"] = {"reference": prior}
    return res


#: The small FEST extract the test servers import (tablets, a few interactions).
FEST_SMALL = Path(__file__).parents[1] / "fixtures" / "fest" / "small.xml"

DRUGS = [
    ("Metformin tab 500 mg", "A10BA02"),
    ("Atorvastatin tab 20 mg", "C10AA05"),
    ("Amlodipin tab 5 mg", "C08CA01"),
    ("Sertralin tab 50 mg", "N06AB06"),
    ("Levaxin tab 50 mikrog", "H03AA01"),
]


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    data: dict[str, Any] = response.json()
    return data


def etag(response: httpx.Response) -> str:
    return response.headers["ETag"]


def new_list(client: httpx.Client, pid: str) -> dict[str, Any]:
    """Create a registered patient's PLL; returns the List."""
    return ok(
        client.post(
            "/fhir/List",
            json={
                "resourceType": "List",
                "status": "current",
                "mode": "working",
                "subject": {"reference": f"Patient/{pid}"},
            },
        ),
        201,
    )


def new_patient_with_list(client: httpx.Client, fnr: str | None = None) -> tuple[str, str]:
    """Register a patient and create their PLL; returns (patient id, list id)."""
    pid = ok(client.post("/fhir/Patient", json=patient(fnr)), 201)["id"]
    return pid, new_list(client, pid)["id"]


def outcome_text(response: httpx.Response) -> str:
    data = response.json()
    assert data["resourceType"] == "OperationOutcome", data
    return " ".join(i.get("diagnostics", "") for i in data["issue"])


def block_consent(hpr: str, pid: str, display: str | None = None) -> dict[str, Any]:
    """The patient's block on a named health worker: a Consent that denies them."""
    reference: dict[str, Any] = {
        "identifier": {"system": "urn:oid:2.16.578.1.12.4.1.4.4", "value": hpr}
    }
    if display:
        reference["display"] = display
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{pid}"},
        "provision": {
            "type": "deny",
            "actor": [{"role": {"coding": [{"code": "PRCP"}]}, "reference": reference}],
        },
    }


def reactions(client: httpx.Client, pid: str, atc: str, n: int) -> list[str]:
    """``n`` recorded reactions (CAVE) to one ATC group, each a blocking finding of its own
    against a medicine in the group; returns their ids."""
    return [
        ok(
            client.post(
                "/fhir/AllergyIntolerance",
                json={
                    "resourceType": "AllergyIntolerance",
                    "patient": {"reference": f"Patient/{pid}"},
                    "code": {"coding": [{"system": ATC, "code": atc}], "text": f"reaksjon {i}"},
                },
            ),
            201,
        )["id"]
        for i in range(n)
    ]


def small_catalogue_and_list(db: Database, client: httpx.Client) -> dict[str, str]:
    """The hand-written FEST catalogue (``tests/fixtures/fest/small.xml``) imported, and a
    new patient with an empty PLL: ``{"pid": ..., "list": ...}``."""
    with SMALL_FEST.open("rb") as extract:
        import_fest(db, extract, SMALL_FEST.name, now=datetime(2026, 11, 22, tzinfo=UTC))
    pid, list_id = new_patient_with_list(client)
    return {"pid": pid, "list": list_id}
