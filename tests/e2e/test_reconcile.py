"""Samstemming in the browser (issue 7): the list beside another source, each difference
taken or left, then the list confirmed; the same service as ``List/$reconcile``."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.e2e.conftest import Screen, login, open_patient
from tests.e2e.scenes import FEST, METFORMIN, SIMVASTATIN, WARFARIN, patient_with_medicines
from tests.integration.builders import ok

ATC = "http://www.whocc.no/atc"
SERTRALIN = (None, "N06AB06", "Sertralin tab 50 mg")


def _statement(drug: tuple[str | None, str, str], dosage: str) -> dict[str, object]:
    coding = [{"system": ATC, "code": drug[1]}]
    if drug[0]:
        coding.insert(0, {"system": FEST, "code": drug[0]})
    return {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {"coding": coding, "text": drug[2]},
        "subject": {"display": "Pasienten"},
        "dosage": [{"text": dosage}],
    }


def _decide(screen: Screen, drug: str, choice: str) -> None:
    row = screen.page.locator("table.differences tr", has_text=drug)
    row.get_by_label(choice).check()


def _compare_with_discharge(screen: Screen, discharge: Mapping[str, Any]) -> None:
    screen.page.get_by_role("link", name="Samstem").click()
    screen.page.get_by_label(re.compile("epikrise")).check()
    screen.page.set_input_files(
        "#discharge",
        files=[
            {
                "name": "epikrise.json",
                "mimeType": "application/fhir+json",
                "buffer": json.dumps(discharge).encode(),
            }
        ],
    )
    screen.page.get_by_role("button", name="Sammenlign").click()


def test_a_discharge_list_is_compared_side_by_side_and_the_list_confirmed(
    server: LiveServer, screens
) -> None:
    scene = patient_with_medicines(server, METFORMIN, SIMVASTATIN)
    discharge = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": _statement(METFORMIN, "2 tabletter morgen")},
            {"resource": _statement(WARFARIN, "1 tablett kveld")},
        ],
    }
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    _compare_with_discharge(gp, discharge)

    expect(
        gp.page.get_by_role("heading", name=re.compile("Samstemming mot epikrise"))
    ).to_be_visible()
    table = gp.page.locator("table.differences")
    expect(table).to_contain_text("Ulik dosering")
    expect(table).to_contain_text("Mangler på listen")
    expect(table).to_contain_text("Ikke i kilden")
    gp.shot("lege-samstemming")
    _decide(gp, "Metformin", "Ta inn")
    _decide(gp, "Warfarin", "Ta inn")
    _decide(gp, "Simvastatin", "Avvis")
    gp.page.get_by_role("button", name="Bekreft listen").click()

    expect(gp.page.locator(".notice").first).to_contain_text("2 avvik tatt inn, 1 avvist")
    expect(gp.page.locator("#confirmed")).to_contain_text("Kari Fastlege")
    with server.client("gp") as api:
        bundle = ok(api.get("/fhir/MedicationStatement", params={"patient": scene.pid}))
    on_list = {
        e["resource"]["medicationCodeableConcept"]["text"]: (
            e["resource"]["status"],
            e["resource"]["dosage"][0]["text"],
        )
        for e in bundle["entry"]
    }
    assert on_list == {
        METFORMIN[2]: ("active", "2 tabletter morgen"),
        SIMVASTATIN[2]: ("active", "1 tablett morgen"),
        WARFARIN[2]: ("active", "1 tablett kveld"),
    }


def test_the_dispensing_history_and_the_patients_own_list_are_sources_too(
    server: LiveServer, screens
) -> None:
    scene = patient_with_medicines(server, METFORMIN, SIMVASTATIN)
    with server.client("pharmacist") as pharmacy:
        ok(
            pharmacy.post(
                "/fhir/MedicationDispense",
                json={
                    "resourceType": "MedicationDispense",
                    "status": "completed",
                    "subject": {"reference": f"Patient/{scene.pid}"},
                    "authorizingPrescription": [
                        {"reference": f"MedicationRequest/{scene.prescriptions[METFORMIN[2]]}"}
                    ],
                    "medicationCodeableConcept": {
                        "coding": [{"system": ATC, "code": METFORMIN[1]}],
                        "text": "Metformin tab 500 mg 100 stk",
                    },
                    "quantity": {"value": 100, "unit": "tablett"},
                    "whenHandedOver": "2026-11-01T10:00:00Z",
                },
            ),
            201,
        )
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    gp.page.get_by_role("link", name="Samstem").click()
    gp.page.get_by_role("button", name="Sammenlign").click()  # dispensings are the default
    table = gp.page.locator("table.differences")
    expect(table).to_contain_text("ikke utlevert siste 12 måneder")
    expect(table).not_to_contain_text("Metformin")
    _decide(gp, "Simvastatin", "Avvis")
    gp.page.get_by_role("button", name="Bekreft listen").click()
    expect(gp.page.locator(".notice").first).to_contain_text("0 avvik tatt inn, 1 avvist")

    gp.page.get_by_role("link", name="Samstem").click()
    gp.page.get_by_label(re.compile("pasienten sier")).check()
    gp.page.locator("#patient-list").fill(
        "Metformin tab 500 mg; 1 tablett morgen\nParacet 500 mg; 2 tabletter ved behov"
    )
    gp.page.get_by_role("button", name="Sammenlign").click()
    expect(gp.page.locator("table.differences")).to_contain_text("Paracet")
    _decide(gp, "Paracet", "Ta inn")
    _decide(gp, "Simvastatin", "Avvis")
    gp.page.get_by_role("button", name="Bekreft listen").click()
    expect(gp.page.locator("table.entries").first).to_contain_text("Paracet 500 mg")


def test_a_severe_finding_from_the_discharge_list_is_overridden_with_a_reason(
    server: LiveServer, screens
) -> None:
    """A medicine taken in from the source is checked like every new one (DESIGN §3 rule 6):
    the doctor's findings page asks for the reason, which is kept with the change."""
    scene = patient_with_medicines(server, METFORMIN)
    with server.client("gp") as api:
        cave = {
            "resourceType": "AllergyIntolerance",
            "patient": {"reference": f"Patient/{scene.pid}"},
            "code": {"coding": [{"system": ATC, "code": "N06AB"}], "text": "SSRI"},
        }
        ok(api.post("/fhir/AllergyIntolerance", json=cave), 201)
    discharge = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": _statement(METFORMIN, "1 tablett morgen")},
            {"resource": _statement(SERTRALIN, "1 tablett morgen")},
        ],
    }
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    _compare_with_discharge(gp, discharge)
    _decide(gp, "Sertralin", "Ta inn")
    gp.page.get_by_role("button", name="Bekreft listen").click()

    expect(gp.page.get_by_role("heading", name="Beslutningsstøtten fant noe")).to_be_visible()
    expect(gp.page.locator(".findings")).to_contain_text("SSRI")
    gp.page.locator("#override-reason").fill("Toleranse dokumentert under innleggelsen")
    gp.page.get_by_role("button", name="Lagre likevel").click()

    expect(gp.page.locator(".notice").first).to_contain_text("1 avvik tatt inn, 0 avvist")
    expect(gp.page.locator("table.entries").first).to_contain_text("Sertralin")
    with server.client("gp") as api:
        provenance = ok(api.get("/fhir/Provenance", params={"target": f"List/{scene.list_id}"}))
    overrides = [
        ext["valueString"]
        for e in provenance["entry"]
        for ext in e["resource"].get("extension", [])
    ]
    assert any("Toleranse dokumentert" in o for o in overrides), overrides
