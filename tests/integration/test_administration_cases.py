"""Deviations (issue 17) over real HTTP on both databases: a nurse or care worker of the
unit reports a discrepancy on an entry straight from the schedule, and a missed or wrong
administration as a case of kind ``administration`` (focus the record, or the missed
planned dose by its identifier), routed as a case on the entry; the prescriber handles it
as every case. Refusals answer an OperationOutcome and write nothing (a refused caller is
logged)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from pll.fhir import cases as fhir_cases
from pll.fhir.administration import PLANNED_DOSE
from pll.fhir.validate import validate
from pll.store.schema import discrepancy_case, outbox
from tests.conftest import LiveServer, snapshot
from tests.integration.builders import (
    DRUGS,
    new_fnr,
    new_list,
    ok,
    outcome_text,
    patient,
    statement,
)
from tests.integration.test_administrations import given, setup, today
from tests.integration.test_care_units import audit_of

GP_ORG = "974600951"
KIND = fhir_cases.CASE_CODE_SYSTEM

# the clock at 19:30 today, where every planned dose of the day but the night's may be recorded
pytestmark = pytest.mark.usefixtures("evening_round")


def task(
    focus: dict[str, Any], code: str | None = None, text: str = "Glemt morgendose"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "focus": focus,
        "description": text,
    }
    if code:
        body["code"] = {"coding": [{"system": KIND, "code": code}]}
    return body


def schedule(client: httpx.Client, list_id: str) -> list[dict[str, Any]]:
    bundle = ok(client.get(f"/fhir/List/{list_id}/$administration-schedule?date={today()}"))
    return [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "MedicationRequest"
    ]


def test_a_care_worker_reports_an_entry_straight_from_the_schedule(server: LiveServer) -> None:
    pid, list_id, (entry,) = setup(server, statement("Patient/x", *DRUGS[0], 1, "MORN"))
    with server.client("care-worker") as worker:
        (planned,) = schedule(worker, list_id)
        # the entry version the schedule was planned from is the Task's focus as it stands
        focus = planned["supportingInformation"][0]["reference"]
        made = ok(
            worker.post("/fhir/Task", json=task({"reference": focus}, "discrepancy", "Uklar dose")),
            201,
        )
        validate(made, "Task")
        assert made["focus"]["reference"] == focus
        assert made["code"]["coding"][0]["code"] == "discrepancy"
        assert made["owner"]["identifier"]["value"] == GP_ORG
        assert made["requester"]["identifier"]["value"] == "9144943"
        # the reporter follows and withdraws their own case
        r = worker.post(f"/fhir/Task/{made['id']}/$withdraw")
        assert ok(r)["status"] == "cancelled"
    del pid, entry


def test_a_wrong_administration_is_a_case_the_prescriber_handles(server: LiveServer) -> None:
    pid, _, (entry,) = setup(server, statement("Patient/x", *DRUGS[0], 1, "MORN"))
    with server.client("nursing-home-nurse") as nurse:
        record = ok(nurse.post("/fhir/MedicationAdministration", json=given(pid, entry)), 201)
        made = ok(
            nurse.post(
                "/fhir/Task",
                json=task(
                    {"reference": f"MedicationAdministration/{record['id']}"},
                    text="Gitt til feil pasient",
                ),
            ),
            201,
        )
    validate(made, "Task")
    assert made["code"]["coding"][0] == {
        "system": KIND,
        "code": "administration",
        "display": "Avvik ved utdeling av legemidler",
    }
    assert made["focus"]["reference"] == f"MedicationAdministration/{record['id']}/_history/1"
    assert made["owner"]["identifier"]["value"] == GP_ORG  # the entry's last author
    with server.client("gp") as gp:
        taken = ok(gp.post(f"/fhir/Task/{made['id']}/$take"))
        assert taken["status"] == "in-progress"
        assert taken["focus"]["reference"] == made["focus"]["reference"]
        assert taken["code"]["coding"][0]["code"] == "administration"
        inbox = ok(gp.get("/fhir/Task", params={"owner": f"{fhir_cases.systems.ORGNR}|{GP_ORG}"}))
        assert [e["resource"]["id"] for e in inbox["entry"]] == [made["id"]]
    with server.db.read() as conn:
        row = conn.execute(
            sa.select(
                discrepancy_case.c.kind,
                discrepancy_case.c.administration_id,
                discrepancy_case.c.entry_id,
            )
        ).one()
        events = [
            orjson.loads(p)["focus"]
            for (p,) in conn.execute(
                sa.select(outbox.c.payload).where(outbox.c.kind.like("case-%"))
            )
        ]
    assert tuple(row) == ("administration", record["id"], entry["id"])
    assert events == [f"MedicationAdministration/{record['id']}"] * 2


def test_a_missed_planned_dose_is_reported_by_its_key(server: LiveServer) -> None:
    pid, list_id, (entry,) = setup(server, statement("Patient/x", *DRUGS[0], 1, "MORN"))
    with server.client("care-worker") as worker:
        (planned,) = schedule(worker, list_id)
        key = planned["identifier"][0]
        made = ok(worker.post("/fhir/Task", json=task({"identifier": key}, "administration")), 201)
    validate(made, "Task")
    assert made["focus"]["identifier"] == {
        "system": PLANNED_DOSE,
        "value": f"{entry['id']}/{today()}/morgen/1",
    }
    assert made["code"]["coding"][0]["code"] == "administration"
    assert made["owner"]["identifier"]["value"] == GP_ORG
    assert made["for"]["reference"] == f"Patient/{pid}"


def refused(server: LiveServer, client: httpx.Client, body: dict[str, Any], status: int) -> str:
    before = snapshot(server.db, audit=False)
    r = client.post("/fhir/Task", json=body)
    assert r.status_code == status, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert snapshot(server.db, audit=False) == before
    return outcome_text(r)


def test_refused_reports_write_nothing(server: LiveServer) -> None:
    pid, _, (entry,) = setup(server, statement("Patient/x", *DRUGS[0], 1, "MORN"))
    key = f"{entry['id']}/{today()}/morgen/1"
    with server.client("gp") as gp:  # a patient not registered with the care worker's unit
        other = ok(gp.post("/fhir/Patient", json=patient(new_fnr())), 201)["id"]
        new_list(gp, other)
        stranger = ok(
            gp.post("/fhir/MedicationStatement", json=statement(f"Patient/{other}", *DRUGS[0])), 201
        )
    with server.client("care-worker") as worker:
        text = refused(server, worker, task({"reference": "MedicationAdministration/nope"}), 400)
        assert "does not exist" in text
        not_planned = {"system": PLANNED_DOSE, "value": f"{entry['id']}/{today()}/middag/1"}
        assert "no planned dose" in refused(server, worker, task({"identifier": not_planned}), 400)
        bad = {"system": PLANNED_DOSE, "value": "not-a-key"}
        assert "not the key of a planned dose" in refused(
            server, worker, task({"identifier": bad}), 400
        )
        wrong_code = task({"identifier": {"system": PLANNED_DOSE, "value": key}}, "discrepancy")
        assert "has code" in refused(server, worker, wrong_code, 400)
        no_text = task({"identifier": {"system": PLANNED_DOSE, "value": key}}, text=" ")
        assert "description" in refused(server, worker, no_text, 400)
        elsewhere = {"system": PLANNED_DOSE, "value": f"{stranger['id']}/{today()}/morgen/1"}
        assert "not registered with yours" in refused(
            server, worker, task({"identifier": elsewhere}), 403
        )
    with server.db.read() as conn:
        assert conn.execute(sa.select(discrepancy_case.c.id)).all() == []
    del pid


def test_a_missed_dose_case_outside_the_charts_days_is_refused_no_5xx(server: LiveServer) -> None:
    _, _, (entry,) = setup(server, statement("Patient/x", *DRUGS[0], 1, "MORN"))
    with server.client("care-worker") as worker:
        for day in ("9999-12-31", "0001-01-01"):
            key = {"system": PLANNED_DOSE, "value": f"{entry['id']}/{day}/morgen/1"}
            said = refused(server, worker, task({"identifier": key}), 400)
            assert "outside the days the chart covers" in said


def test_a_case_naming_another_patients_record_is_refused_as_access_and_logged(
    server: LiveServer,
) -> None:
    """Access to the patient a record belongs to is decided before anything is told: a
    patient naming someone else's record with Task.for = themselves is refused (logged in
    that patient's access log), and the answer does not name that patient."""
    pid, _, (entry,) = setup(server, statement("Patient/x", *DRUGS[0], 1, "MORN"))
    with server.client("nursing-home-nurse") as nurse:
        record = ok(nurse.post("/fhir/MedicationAdministration", json=given(pid, entry)), 201)
    fnr = new_fnr()
    with server.client("gp") as gp:
        me = ok(gp.post("/fhir/Patient", json=patient(fnr)), 201)["id"]
    logged = len(audit_of(server, pid))
    with server.client("patient", fnr) as stranger:
        bad = task({"reference": f"MedicationAdministration/{record['id']}"})
        before = snapshot(server.db, audit=False)
        r = stranger.post("/fhir/Task", json={**bad, "for": {"reference": f"Patient/{me}"}})
        assert snapshot(server.db, audit=False) == before
    assert r.status_code == 403, r.text
    assert pid not in r.text
    assert len(audit_of(server, pid)) == logged + 1
