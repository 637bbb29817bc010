"""The schedule shows what was given (issue 17) over real HTTP on both databases: records
that stand count as given for an as-needed dosage's daily maximum (one entered in error
does not), and each planned dose with a standing record is marked with it and its status
(completed, partial, not-done with the reason)."""

from __future__ import annotations

from typing import Any

import pytest

from pll.fhir.administration import EXT_PLANNED
from pll.fhir.validate import validate
from tests.conftest import LiveServer
from tests.integration.builders import DRUGS, ok
from tests.integration.test_administrations import NOT_GIVEN, given, med, setup, today

# the clock at 19:30 today, where every planned dose of the day but the night's may be recorded
pytestmark = pytest.mark.usefixtures("evening_round")


def parts(resource: dict[str, Any]) -> dict[str, Any]:
    ext = next(e for e in resource["extension"] if e["url"] == EXT_PLANNED)
    return {
        p["url"]: next(v for k, v in p.items() if k.startswith("value")) for p in ext["extension"]
    }


def test_recorded_doses_are_marked_and_as_needed_given_is_counted(server: LiveServer) -> None:
    prn = med(*DRUGS[2])
    prn["dosage"] = [
        {
            "text": "1 tablett ved behov, høyst 4 per døgn",
            "asNeededBoolean": True,
            "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablett"}}],
            "maxDosePerPeriod": {
                "numerator": {"value": 4, "unit": "tablett"},
                "denominator": {"value": 1, "unit": "døgn", "code": "d"},
            },
        }
    ]
    pid, list_id, (entry, as_needed) = setup(server, med(amount=2), prn)
    dose = {"dose": {"value": 1, "unit": "tablett"}}
    why = [{"text": "Smerter"}]
    with server.client("nursing-home-nurse") as nurse:
        partly = ok(
            nurse.post("/fhir/MedicationAdministration", json=given(pid, entry, dosage=dose)), 201
        )
        reason = [{"coding": [{"system": NOT_GIVEN, "code": "vomited"}]}]
        missed = ok(
            nurse.post(
                "/fhir/MedicationAdministration",
                json=given(pid, entry, "kveld/1", "not-done", statusReason=reason),
            ),
            201,
        )
        prn_body = given(pid, as_needed, None, dosage=dose, reasonCode=why)
        ok(nurse.post("/fhir/MedicationAdministration", json=prn_body), 201)
        wrong = ok(nurse.post("/fhir/MedicationAdministration", json=prn_body), 201)
        ok(
            nurse.put(
                f"/fhir/MedicationAdministration/{wrong['id']}",
                json={**wrong, "status": "entered-in-error", "statusReason": [{"text": "Feil"}]},
                headers={"If-Match": 'W/"1"'},
            )
        )
        bundle = ok(nurse.get(f"/fhir/List/{list_id}/$administration-schedule?date={today()}"))
    validate(bundle, "Bundle")
    requests = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "MedicationRequest"
    ]
    by_slot = {parts(r).get("slot"): parts(r) for r in requests if parts(r)["kind"] == "planned"}
    assert by_slot["morgen"]["recorded"] == {
        "reference": f"MedicationAdministration/{partly['id']}"
    }
    assert by_slot["morgen"]["recorded-status"] == "partial"
    assert by_slot["kveld"]["recorded"] == {"reference": f"MedicationAdministration/{missed['id']}"}
    assert by_slot["kveld"]["recorded-status"] == "not-done"
    assert by_slot["kveld"]["not-given"]["code"] == "vomited"
    (prn_item,) = [parts(r) for r in requests if parts(r)["kind"] == "as-needed"]
    # one standing record of 1 tablet: the one entered in error does not count
    assert prn_item["given"]["value"] == 1
    assert prn_item["remaining"]["value"] == 3


def test_an_unrecorded_dose_has_no_mark(server: LiveServer) -> None:
    _, list_id, _ = setup(server, med())
    with server.client("care-worker") as worker:
        bundle = ok(worker.get(f"/fhir/List/{list_id}/$administration-schedule?date={today()}"))
    planned = [
        parts(e["resource"])
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "MedicationRequest"
    ]
    assert len(planned) == 2
    assert all("recorded" not in p for p in planned)
