"""Small builders for the FHIR resources the integration tests send."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from pll.catalog.importer import import_fest
from pll.domain.identifiers import generate_synthetic_fnr
from pll.store import catalog as catalog_store
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


#: The FEST extract of the multidose tests (issue 18): the five tablets of :data:`DRUGS`, an
#: enteric capsule, and forms a multidose machine does not pack.
MULTIDOSE_FEST = Path(__file__).resolve().parents[1] / "fixtures" / "fest" / "multidose.xml"
FEST_SYSTEM = "http://ehelse.no/fhir/CodeSystem/FEST"
#: Varenr in :data:`MULTIDOSE_FEST` of each of :data:`DRUGS`, and of the other forms
PACKABLE_CODES = {atc: f"52000{i}" for i, (_, atc) in enumerate(DRUGS, start=1)}
CAPSULE = ("520006", "A02BC01", "Omeprazol Fjordpharma Kap 20 mg")
EFFERVESCENT = ("520007", "N02BE01", "Paracet Fjordpharma Brusetab 500 mg")
ORODISPERSIBLE = ("520008", "N06AX11", "Mirtazapin Fjordpharma Smeltetab 15 mg")
LIQUID = ("520009", "A06AD11", "Laktulose Fjordpharma Mikstur 670 mg/ml")


def multidose_catalogue(db: Database) -> None:
    """:data:`MULTIDOSE_FEST` imported as the catalogue in use (once: a test making two
    patients imports it for the first)."""
    with db.read() as conn:
        version = catalog_store.active(conn)
        if version is not None and catalog_store.drugs_by_code(conn, version, ["520001"]):
            return
    with MULTIDOSE_FEST.open("rb") as extract:
        import_fest(db, extract, MULTIDOSE_FEST.name, now=datetime(2026, 11, 22, tzinfo=UTC))


def fest_coded(resource: dict[str, Any], code: str | None = None) -> dict[str, Any]:
    """The resource's medicine named by its FEST code too (first, as SFM sends it); the
    code of its ATC in :data:`PACKABLE_CODES` unless given."""
    concept = resource["medicationCodeableConcept"]
    atc = next(c["code"] for c in concept["coding"] if c["system"] == ATC)
    fest = {"system": FEST_SYSTEM, "code": code or PACKABLE_CODES[atc]}
    concept["coding"] = [fest, *concept["coding"]]
    return resource


def prescribed(
    client: httpx.Client,
    pid: str,
    name: str,
    atc: str,
    *,
    code: str | None = None,
    extension: list[dict[str, Any]] | None = None,
    when: tuple[str, ...] = ("MORN",),
) -> dict[str, Any]:
    """A FEST-coded medicine prescribed and put on the list (the entry based on an active
    prescription, dosed at fixed times), with these extensions on the entry."""
    ref = f"Patient/{pid}"
    rx = ok(
        client.post("/fhir/MedicationRequest", json=fest_coded(prescription(ref, name, atc), code)),
        201,
    )
    body = fest_coded(
        statement(ref, name, atc, 1, *when, based_on=[f"MedicationRequest/{rx['id']}"]), code
    )
    if extension is not None:
        body["extension"] = extension
    return ok(client.post("/fhir/MedicationStatement", json=body), 201)
