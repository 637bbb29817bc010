"""Decision support on every change and on demand, over HTTP, on both databases (issue 4,
DESIGN §3 rule 6), with the hand-written FEST extract as the catalogue."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from pll.catalog.importer import import_fest
from tests.conftest import LiveServer, snapshot
from tests.integration.builders import (
    ok,
    outcome_text,
    small_catalogue_and_list,
)

SMALL = Path(__file__).resolve().parents[1] / "fixtures" / "fest" / "small.xml"
FEST = "http://ehelse.no/fhir/CodeSystem/FEST"
ATC = "http://www.whocc.no/atc"
WARFARIN = ("081234", "B01AA03", "Warfarin Nordfarma Tab 2,5 mg")
WARFARIN_GONE = ("081245", "B01AA03", "Warfarin Nordfarma Tab 2,5 mg")
SIMVA = ("046321", "C10AA01", "Simvastatin Fjordpharma Tab 20 mg")
SIMVA_OTHER = ("046332", "C10AA01", "Simvastatin Fjordpharma Tab 20 mg")
CLARITHRO = ("173456", "J01FA09", "Klaritromycin Fjordpharma Tab 500 mg")
SIMVASTATIN_SUBSTANCE = "ID_0386A3A9-21BD-4CFF-BA4F-CA5076F42492"


def entry(pid: str, drug: tuple[str, str, str]) -> dict[str, Any]:
    varenr, atc, name = drug
    return {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {
            "coding": [{"system": FEST, "code": varenr}, {"system": ATC, "code": atc}],
            "text": name,
        },
        "subject": {"reference": f"Patient/{pid}"},
        "dosage": [{"text": "1 tablett morgen"}],
    }


@pytest.fixture
def setup(server: LiveServer) -> dict[str, Any]:
    with server.client() as gp:
        return small_catalogue_and_list(server.db, gp)


def add(gp: httpx.Client, pid: str, drug: tuple[str, str, str], **headers: str) -> httpx.Response:
    return gp.post("/fhir/MedicationStatement", json=entry(pid, drug), headers=headers)


def kinds(outcome: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (i["severity"], i["details"]["coding"][0]["code"])
        for i in outcome["issue"]
        if "details" in i
    ]


def test_relevance_1_is_refused_without_an_override_and_kept_with_one(
    server: LiveServer, setup: dict[str, Any]
) -> None:
    pid = setup["pid"]
    with server.client() as gp:
        ok(add(gp, pid, SIMVA), 201)
        before = snapshot(server.db, audit=False)
        r = add(gp, pid, CLARITHRO)
        assert r.status_code == 422
        assert "X-PLL-Override" in outcome_text(r)
        assert ("error", "interaction") in kinds(r.json())
        assert snapshot(server.db, audit=False) == before  # nothing was saved
        blocking = _override_codes(r)["X-PLL-Override-Findings"].split(",")
        why = "Kort kur; statin pauses i 7 dager"
        # an override that does not name the finding overrides nothing
        r = add(gp, pid, CLARITHRO, **{"X-PLL-Override": why})
        assert r.status_code == 422
        assert blocking[0] in outcome_text(r)
        r = add(
            gp,
            pid,
            CLARITHRO,
            **{
                "X-PLL-Override": why,
                "X-PLL-Override-Findings": ", ".join(blocking),
                "Prefer": "return=OperationOutcome",
            },
        )
        assert r.status_code == 201
        assert ("error", "interaction") in kinds(r.json())
        assert r.headers["X-PLL-Findings"] != "0"
        history = ok(gp.get("/fhir/Provenance", params={"target": f"List/{setup['list']}"}))
    newest = history["entry"][0]["resource"]
    override = [e["valueString"] for e in newest.get("extension", [])]
    assert override
    assert "statin pauses" in override[0]
    assert "interaction" in override[0]


def test_relevance_2_and_3_warn_and_inform(server: LiveServer, setup: dict[str, Any]) -> None:
    pid = setup["pid"]
    prefer = {"Prefer": "return=OperationOutcome"}
    with server.client() as gp:
        ok(add(gp, pid, WARFARIN), 201)
        # warfarin and the macrolide class J01FA: relevance 2, a warning, accepted
        warned = ok(add(gp, pid, CLARITHRO, **prefer), 201)
        assert ("warning", "interaction") in kinds(warned)
        # warfarin and simvastatin: relevance 3, information
        refused = add(gp, pid, SIMVA)  # simvastatin + the macrolide: relevance 1
        override = _override_codes(refused)
        informed = ok(add(gp, pid, SIMVA, **override, **prefer), 201)
    assert ("information", "interaction") in kinds(informed)


def test_not_assessed_is_reported(server: LiveServer, setup: dict[str, Any]) -> None:
    bempedoic = ("", "C10AX15", "Bempedoinsyre tab 180 mg")
    body = entry(setup["pid"], bempedoic)
    body["medicationCodeableConcept"]["coding"] = [{"system": ATC, "code": "C10AX15"}]
    with server.client() as gp:
        r = gp.post(
            "/fhir/MedicationStatement", json=body, headers={"Prefer": "return=OperationOutcome"}
        )
    assert r.status_code == 201
    assert ("information", "interaction-not-assessed") in kinds(r.json())
    assert "ikke vurdert" in outcome_text(r)


def test_duplicates_by_substance_atc_and_exchange_group(
    server: LiveServer, setup: dict[str, Any]
) -> None:
    with server.client() as gp:
        ok(add(gp, setup["pid"], SIMVA), 201)
        r = ok(add(gp, setup["pid"], SIMVA_OTHER, Prefer="return=OperationOutcome"), 201)
    assert ("warning", "duplicate-therapy") in kinds(r)
    assert "samme virkestoff" in str(r)


def test_cave_by_atc_class_and_by_substance(server: LiveServer, setup: dict[str, Any]) -> None:
    pid = setup["pid"]

    def reaction(coding: dict[str, str], text: str) -> dict[str, Any]:
        return {
            "resourceType": "AllergyIntolerance",
            "patient": {"reference": f"Patient/{pid}"},
            "code": {"coding": [coding], "text": text},
        }

    with server.client() as gp:
        ok(
            gp.post(
                "/fhir/AllergyIntolerance",
                json=reaction({"system": ATC, "code": "J01FA"}, "makrolider"),
            ),
            201,
        )
        cave = ok(
            gp.post(
                "/fhir/AllergyIntolerance",
                json=reaction({"system": FEST, "code": SIMVASTATIN_SUBSTANCE}, "simvastatin"),
            ),
            201,
        )
        r = add(gp, pid, CLARITHRO)
        assert r.status_code == 422
        assert ("error", "cave") in kinds(r.json())
        assert "makrolider" in outcome_text(r)
        r = add(gp, pid, SIMVA)
        assert r.status_code == 422
        assert "samme virkestoff" in outcome_text(r)
        # the reaction is resolved: no longer checked
        resolved = dict(cave)
        resolved["clinicalStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "resolved",
                }
            ]
        }
        ok(
            gp.put(
                f"/fhir/AllergyIntolerance/{cave['id']}",
                json=resolved,
                headers={"If-Match": 'W/"1"'},
            )
        )
        ok(add(gp, pid, SIMVA), 201)
        listed = ok(gp.get("/fhir/AllergyIntolerance", params={"patient": pid}))
        assert listed["total"] == 2
        assert len(ok(gp.get(f"/fhir/AllergyIntolerance/{cave['id']}/_history"))["entry"]) == 2
    with server.client("nurse") as nurse:
        r = nurse.post(
            "/fhir/AllergyIntolerance", json=reaction({"system": ATC, "code": "N02"}, "x")
        )
        assert r.status_code == 403


def _flags(gp: httpx.Client, list_id: str) -> dict[str, str]:
    current = ok(gp.get(f"/fhir/List/{list_id}"))
    return {
        e["item"]["reference"].split("/")[1]: e["flag"]["coding"][0]["code"]
        for e in current.get("entry", [])
        if "flag" in e
    }


def test_a_withdrawn_drug_is_flagged(server: LiveServer, setup: dict[str, Any]) -> None:
    pid, list_id = setup["pid"], setup["list"]
    with server.client() as gp:
        r = ok(add(gp, pid, WARFARIN_GONE, Prefer="return=OperationOutcome"), 201)
        assert ("warning", "withdrawn") in kinds(r)
        simva = ok(add(gp, pid, SIMVA), 201)
        flags = _flags(gp, list_id)
        assert list(flags.values()) == ["fest-withdrawn"]  # the deregistered warfarin
        assert simva["id"] not in flags
        before = kinds(ok(gp.get(f"/fhir/List/{list_id}/$check")))
        assert before.count(("warning", "withdrawn")) == 1
        version = ok(gp.get(f"/fhir/List/{list_id}"))["meta"]["versionId"]
    # a newer extract without the simvastatin package: its entry is flagged on the list, as
    # a version of PLL's own
    newer = SMALL.read_text().replace("<Varenr>046321</Varenr>", "<Varenr>046399</Varenr>")
    import_fest(
        server.db, io.BytesIO(newer.encode()), "newer.xml", now=datetime(2026, 11, 23, tzinfo=UTC)
    )
    assert server.service.refresh_withdrawn() == (1, 2)
    assert server.service.refresh_withdrawn() == (0, 2)  # nothing more to flag
    with server.client() as gp:
        flags = _flags(gp, list_id)
        assert flags[simva["id"]] == "fest-withdrawn"
        assert len(flags) == 2
        current = ok(gp.get(f"/fhir/List/{list_id}"))
        assert int(current["meta"]["versionId"]) == int(version) + 1
        history = ok(gp.get("/fhir/Provenance", params={"target": f"List/{list_id}"}))
        newest = history["entry"][0]["resource"]
        assert newest["activity"]["coding"][0]["code"] == "fest-withdrawn"
        flagged = ok(gp.get(f"/fhir/List/{list_id}/$check"))
    withdrawn = [
        i
        for i in flagged["issue"]
        if i.get("details", {}).get("coding", [{}])[0].get("code") == "withdrawn"
    ]
    assert len(withdrawn) == 2
    assert any("Simvastatin" in i["diagnostics"] for i in withdrawn)


def test_a_check_on_a_hypothetical_change_writes_nothing(
    server: LiveServer, setup: dict[str, Any]
) -> None:
    pid = setup["pid"]
    with server.client() as gp:
        ok(add(gp, pid, SIMVA), 201)
        before = snapshot(server.db, audit=False)
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": entry(pid, CLARITHRO),
                    "request": {"method": "POST", "url": "MedicationStatement"},
                }
            ],
        }
        found = ok(gp.post("/fhir/List/$check", json=bundle))
        assert ("error", "interaction") in kinds(found)
        assert snapshot(server.db, audit=False) == before
    with server.client("nurse") as nurse:
        assert nurse.post("/fhir/List/$check", json=bundle).status_code == 403


def test_cds_hooks_cards(server: LiveServer, setup: dict[str, Any]) -> None:
    pid = setup["pid"]
    with server.client() as gp:
        ok(add(gp, pid, SIMVA), 201)
        services = ok(gp.get("/cds-services"))
        assert {s["hook"] for s in services["services"]} == {"order-select", "order-sign"}
        request = {
            "hook": "order-sign",
            "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "context": {
                "userId": "Practitioner/gp",
                "patientId": pid,
                "draftOrders": {
                    "resourceType": "Bundle",
                    "entry": [
                        {
                            "resource": {
                                "resourceType": "MedicationRequest",
                                "id": "draft-1",
                                "status": "draft",
                                "intent": "order",
                                "medicationCodeableConcept": entry(pid, CLARITHRO)[
                                    "medicationCodeableConcept"
                                ],
                                "subject": {"reference": f"Patient/{pid}"},
                            }
                        }
                    ],
                },
            },
        }
        cards = ok(gp.post("/cds-services/pll-medication-check", json=request))["cards"]
        assert [c["indicator"] for c in cards] == ["critical"]
        r = gp.post("/cds-services/pll-medication-check", json={"hook": "patient-view"})
        assert r.status_code == 400


def test_drug_lookup(server: LiveServer, setup: dict[str, Any]) -> None:
    with server.client() as gp:
        by_name = ok(gp.get("/fhir/Medication", params={"name": "KLARITRO"}))
        assert by_name["total"] == 3  # package, brand and generic
        codes = {
            c["code"]
            for e in by_name["entry"]
            for c in e["resource"]["code"]["coding"]
            if c["system"] == FEST
        }
        assert "173456" in codes
        words = ok(gp.get("/fhir/Medication", params={"name": "SIMVÁ 40"}))  # accents ignored
        assert [e["resource"]["code"]["text"] for e in words["entry"]] == ["Simvastatin Tab 40 mg"]
        by_atc = ok(gp.get("/fhir/Medication", params={"code": "C10AA"}))
        assert by_atc["total"] >= 4
        by_varenr = ok(gp.get("/fhir/Medication", params={"code": "081245"}))
        assert [e["resource"]["status"] for e in by_varenr["entry"]] == ["inactive"]
        by_substance = ok(gp.get("/fhir/Medication", params={"substance": "warfarin"}))
        assert by_substance["total"] == 4
        one = by_substance["entry"][0]["resource"]
        assert ok(gp.get(f"/fhir/Medication/{one['id']}"))["id"] == one["id"]
        assert gp.get("/fhir/Medication").status_code == 400
        assert gp.get("/fhir/Medication", params={"name": "%%%"}).status_code == 400


def _override_codes(r: httpx.Response) -> dict[str, str]:
    codes = [
        i["details"]["coding"][0]["display"]
        for i in r.json()["issue"]
        if i["severity"] == "error" and "details" in i
    ]
    return {"X-PLL-Override": "vurdert og akseptert", "X-PLL-Override-Findings": ",".join(codes)}


def test_changing_a_medicine_already_on_the_list_is_not_blocked_again(
    server: LiveServer, setup: dict[str, Any]
) -> None:
    """Once an interaction is accepted, pausing, resuming or re-dosing either drug is not
    refused again; a new entry with the drug is."""
    pid = setup["pid"]
    with server.client() as gp:
        ok(add(gp, pid, SIMVA), 201)
        r = add(gp, pid, CLARITHRO)
        clari = ok(add(gp, pid, CLARITHRO, **_override_codes(r)), 201)
        paused = dict(clari, status="on-hold")
        paused = ok(
            gp.put(
                f"/fhir/MedicationStatement/{clari['id']}",
                json=paused,
                headers={"If-Match": 'W/"1"'},
            )
        )
        redosed = dict(paused, dosage=[{"text": "1 tablett kveld"}])
        redosed = ok(
            gp.put(
                f"/fhir/MedicationStatement/{clari['id']}",
                json=redosed,
                headers={"If-Match": 'W/"2"'},
            )
        )
        resumed = dict(redosed, status="active")
        ok(
            gp.put(
                f"/fhir/MedicationStatement/{clari['id']}",
                json=resumed,
                headers={"If-Match": 'W/"3"'},
            )
        )
        # a second course of the same drug is a new entry: checked again
        assert add(gp, pid, CLARITHRO).status_code == 422


def test_a_prescription_without_an_entry_is_checked(
    server: LiveServer, setup: dict[str, Any]
) -> None:
    pid = setup["pid"]
    with server.client() as gp:
        ok(add(gp, pid, SIMVA), 201)
        rx = {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": entry(pid, CLARITHRO)["medicationCodeableConcept"],
            "subject": {"reference": f"Patient/{pid}"},
            "dosageInstruction": [{"text": "1 tablett 2 ganger daglig i 7 dager"}],
        }
        r = gp.post("/fhir/MedicationRequest", json=rx)
        assert r.status_code == 422
        assert ("error", "interaction") in kinds(r.json())


def test_an_entry_coded_by_the_package_fest_id_is_known(
    server: LiveServer, setup: dict[str, Any]
) -> None:
    body = entry(setup["pid"], WARFARIN)
    body["medicationCodeableConcept"]["coding"][0]["code"] = (
        "ID_CEA15866-21F0-4718-B7E5-52B0ECC5D717"
    )
    with server.client() as gp:
        r = gp.post(
            "/fhir/MedicationStatement", json=body, headers={"Prefer": "return=OperationOutcome"}
        )
    assert r.status_code == 201
    assert ("warning", "withdrawn") not in kinds(r.json())


def test_odd_codes_and_drafts_are_clear_errors_not_crashes(
    server: LiveServer, setup: dict[str, Any]
) -> None:
    pid = setup["pid"]
    with server.client() as gp:
        assert gp.get("/fhir/Medication", params={"code": "\x00"}).status_code == 400
        assert gp.get("/fhir/Medication", params={"substance": "\x00"}).status_code == 400
        body = entry(pid, WARFARIN)
        body["medicationCodeableConcept"]["coding"][0]["code"] = "A\x00B"
        assert gp.post("/fhir/MedicationStatement", json=body).status_code in (201, 400)
        draft = {
            "resourceType": "MedicationRequest",
            "id": "d1",
            "medicationCodeableConcept": {"coding": "J01FA09"},
        }
        request = {
            "hook": "order-select",
            "context": {
                "patientId": pid,
                "draftOrders": {"entry": [{"resource": draft}, {"resource": draft}]},
            },
        }
        r = gp.post("/cds-services/pll-medication-check", json=request)
        assert r.status_code == 400
        assert "twice" in outcome_text(r)
        request["context"]["draftOrders"]["entry"] = [{"resource": draft}]
        assert gp.post("/cds-services/pll-medication-check", json=request).status_code == 200


def test_recording_a_reaction_reports_the_drugs_already_on_the_list(
    server: LiveServer, setup: dict[str, Any]
) -> None:
    pid = setup["pid"]
    reaction = {
        "resourceType": "AllergyIntolerance",
        "patient": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": ATC, "code": "C10AA"}], "text": "statiner"},
    }
    with server.client() as gp:
        ok(add(gp, pid, SIMVA), 201)
        r = gp.post(
            "/fhir/AllergyIntolerance", json=reaction, headers={"Prefer": "return=OperationOutcome"}
        )
        assert r.status_code == 201
        assert r.headers["X-PLL-Findings"] == "1"
        assert kinds(r.json()) == [("error", "cave")]
        bad = dict(reaction, code={"coding": [{"system": ATC, "code": "amoxicillin"}]})
        assert gp.post("/fhir/AllergyIntolerance", json=bad).status_code == 400
        refuted = dict(reaction, verificationStatus={"coding": [{"code": "refuted"}]})
        r = gp.post("/fhir/AllergyIntolerance", json=refuted)
        assert r.headers["X-PLL-Findings"] == "0"  # not a reaction after all: not checked
