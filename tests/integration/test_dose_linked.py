"""Every touched entry and every touched prescription answers for its own dose (issue 16,
DESIGN §3 rule 6), linked or not: the prescription is what the pharmacy dispenses, so a
renewal, a prescription sent in a Bundle beside its entry, or an SFM send's prescription
text is checked even where the entry's dose is fine. And free text is no way round the
checks. Over real HTTP, on both databases (catalogue ``tests/fixtures/fest/dose.xml``)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import LiveServer, snapshot
from tests.integration.builders import new_fnr, new_patient_with_list, ok, outcome_text
from tests.integration.test_dose_safety import (
    LYA,
    MTX,
    PARACET,
    WEEKLY,
    entry,
    finding_kinds,
    order,
    override,
    when,
)
from tests.integration.test_dose_safety import pll as dose_patient
from tests.integration.test_sfm import _prescribe_new, get_medication, send, send_from


@pytest.fixture
def pll(server: LiveServer) -> dict[str, str]:
    """A patient with a list, and the dose catalogue imported."""
    return dose_patient.__wrapped__(server)  # type: ignore[attr-defined,no-any-return]


def transaction(*resources: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": full,
                "resource": res,
                "request": {"method": "POST", "url": res["resourceType"]},
            }
            for full, res in resources
        ],
    }


def linked(pid: str, drug: tuple[str, str, str], st: dict[str, Any], rx: dict[str, Any]) -> Any:
    """A Bundle of a new entry based on its new prescription."""
    rx_url = f"urn:uuid:{uuid.uuid4()}"
    st = {**st, "basedOn": [{"reference": rx_url}]}
    return transaction((f"urn:uuid:{uuid.uuid4()}", st), (rx_url, rx))


def test_a_renewal_answers_for_its_own_dose(server: LiveServer, pll: dict[str, str]) -> None:
    pid = pll["pid"]
    with server.client("gp") as gp:
        rx = ok(gp.post("/fhir/MedicationRequest", json=order(pid, PARACET, when(1, "MORN"))), 201)
        st = entry(pid, PARACET, when(1, "MORN"))
        st["basedOn"] = [{"reference": f"MedicationRequest/{rx['id']}"}]
        ok(gp.post("/fhir/MedicationStatement", json=st), 201)
        renewal = order(pid, PARACET, when(99999, "MORN"))
        renewal["priorPrescription"] = {"reference": f"MedicationRequest/{rx['id']}"}
        before = snapshot(server.db, audit=False)
        r = gp.post("/fhir/MedicationRequest", json=renewal)
        assert r.status_code == 422, r.text
        assert finding_kinds(r) == {"implausible-dose"}
        assert "99999 tabletter per døgn" in outcome_text(r)
        assert snapshot(server.db, audit=False) == before
        ok(gp.post("/fhir/MedicationRequest", json=renewal, headers=override(r)), 201)


def test_a_bundle_checks_the_prescription_beside_its_weekly_entry(
    server: LiveServer, pll: dict[str, str]
) -> None:
    pid = pll["pid"]
    thrice = when(4, "MORN", "NOON", "EVE")
    bundle = linked(pid, MTX, entry(pid, MTX, WEEKLY), order(pid, MTX, thrice))
    with server.client("gp") as gp:
        before = snapshot(server.db, audit=False)
        r = gp.post("/fhir", json=bundle)
        assert r.status_code == 422, r.text
        assert "weekly-drug-dosed-often" in finding_kinds(r)
        assert snapshot(server.db, audit=False) == before


def test_a_cream_prescribed_in_tablets_beside_its_entry_is_refused(
    server: LiveServer, pll: dict[str, str]
) -> None:
    pid = pll["pid"]
    st = entry(pid, LYA, when(1, "MORN", unit="påføring"))
    bundle = linked(pid, LYA, st, order(pid, LYA, when(3, "MORN")))
    with server.client("gp") as gp:
        before = snapshot(server.db, audit=False)
        r = gp.post("/fhir", json=bundle)
        assert snapshot(server.db, audit=False) == before
    assert r.status_code == 422, r.text
    assert "doseres i påføring, ikke i tabletter" in outcome_text(r)
    assert r.json()["issue"][0]["expression"] == [
        "Bundle.entry[1].resource.dosageInstruction[0].doseAndRate[0].doseQuantity.unit"
    ]


def test_a_send_checks_the_prescription_text_not_only_the_entry(
    server: LiveServer, pll: dict[str, str]
) -> None:
    fnr = new_fnr()
    with server.client("gp") as gp:
        new_patient_with_list(gp, fnr)
        read = ok(get_medication(gp, fnr))

        def prescribe(bundle: dict[str, Any]) -> None:
            resept = _prescribe_new(bundle, PARACET)
            st = next(
                e["resource"]
                for e in bundle["entry"]
                if e["resource"].get("resourceType") == "MedicationStatement"
                and any(i.get("value") == resept for i in e["resource"].get("identifier", []))
            )
            # the entry's dosage is fine; the prescription's (dssn) is not
            st["dosage"] = [{"text": "1 tablett morgen"}]
            for sub in st["extension"][0]["extension"]:
                if sub["url"] == "dssn":
                    sub["valueString"] = "99999 tabletter morgen"

        body = send_from(read, prescribe)
        before = snapshot(server.db, audit=False)
        r = send(gp, body)
        assert r.status_code == 422, r.text
        assert "implausible-dose" in finding_kinds(r)
        assert snapshot(server.db, audit=False) == before


# -- free text ------------------------------------------------------------------------------


def test_free_text_methotrexate_must_say_weekly_and_a_cream_not_tablets(
    server: LiveServer, pll: dict[str, str]
) -> None:
    pid = pll["pid"]
    with server.client("gp") as gp:
        before = snapshot(server.db, audit=False)
        daily = gp.post(
            "/fhir/MedicationStatement", json=entry(pid, MTX, {"text": "1 tablett daglig"})
        )
        cream = gp.post(
            "/fhir/MedicationRequest", json=order(pid, LYA, {"text": "3 tabletter morgen"})
        )
        assert snapshot(server.db, audit=False) == before
        weekly = gp.post(
            "/fhir/MedicationStatement",
            json=entry(pid, MTX, {"text": "4 tabletter hver mandag"}),
        )
        # the doctor who means it overrides with a reason
        kept = gp.post(
            "/fhir/MedicationRequest",
            json=order(pid, LYA, {"text": "3 tabletter morgen"}),
            headers=override(cream),
        )
    assert daily.status_code == 422, daily.text
    assert finding_kinds(daily) == {"weekly-drug-dosed-often"}
    assert "fritekst som ikke sier at den er ukentlig («1 tablett daglig»)" in outcome_text(daily)
    assert cream.status_code == 422, cream.text
    assert finding_kinds(cream) == {"text-unit-does-not-fit-form"}
    assert weekly.status_code == 201, weekly.text
    assert kept.status_code == 201, kept.text


def test_check_on_demand_sees_free_text_methotrexate(
    server: LiveServer, pll: dict[str, str]
) -> None:
    pid = pll["pid"]
    body = entry(pid, MTX, {"text": "1 tablett daglig"})
    with server.client("gp") as gp:
        refused = gp.post("/fhir/MedicationStatement", json=body)
        ok(gp.post("/fhir/MedicationStatement", json=body, headers=override(refused)), 201)
        found = ok(gp.get(f"/fhir/List/{pll['list']}/$check"))
    kinds = {i["details"]["coding"][0]["code"] for i in found["issue"] if "details" in i}
    assert "weekly-drug-dosed-often" in kinds


# -- the prescription's quantity unit fits the form ------------------------------------------


def test_a_quantity_unit_the_form_does_not_take_is_refused(
    server: LiveServer, pll: dict[str, str]
) -> None:
    pid = pll["pid"]
    patches = order(pid, PARACET, when(1, "MORN"))
    patches["dispenseRequest"] = {"quantity": {"value": 3, "unit": "plaster"}}
    tablets = order(pid, PARACET, when(1, "MORN"))
    tablets["dispenseRequest"] = {"quantity": {"value": 30, "unit": "tablett"}}
    with server.client("gp") as gp:
        before = snapshot(server.db, audit=False)
        r = gp.post("/fhir/MedicationRequest", json=patches)
        assert snapshot(server.db, audit=False) == before
        ok(gp.post("/fhir/MedicationRequest", json=tablets), 201)
    assert r.status_code == 400, r.text
    assert r.json()["issue"][0]["expression"] == ["MedicationRequest.dispenseRequest.quantity.unit"]
    assert "give it in pakning, stk, tablett" in outcome_text(r)
