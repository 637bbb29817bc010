"""Care units and their patients over real HTTP on both databases (issue 17; DESIGN §3
rules 4, 5, 8): a nurse of the unit registers and ends; anyone else is refused, logged, and
nothing is written; the care worker reads the list of a patient of their unit (logged) and
nothing else, and never writes; bad input is a 4xx that changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from pll.fhir.validate import validate
from pll.store.schema import audit_event, care_registration
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

ORGNR = "urn:oid:2.16.578.1.12.4.1.4.101"
ULLERN = "883416031"  # the nursing-home-nurse and care-worker personas' unit
BERGEN_HOME_CARE = "964338531"  # the nurse persona's unit
CARE_WORKER_HPR = "9144943"


def unit(orgnr: str = ULLERN, kind: str = "sykehjem", name: str | None = None) -> dict[str, Any]:
    parameter: list[dict[str, Any]] = [
        {"name": "organization", "valueIdentifier": {"system": ORGNR, "value": orgnr}},
        {"name": "kind", "valueCode": kind},
    ]
    if name:
        parameter.append({"name": "name", "valueString": name})
    return {"resourceType": "Parameters", "parameter": parameter}


def new_patient(gp: httpx.Client) -> tuple[str, str]:
    """A patient with a list holding one medicine: (patient id, list id)."""
    pid = ok(gp.post("/fhir/Patient", json=patient(new_fnr())), 201)["id"]
    lst = new_list(gp, pid)
    ok(gp.post("/fhir/MedicationStatement", json=statement(f"Patient/{pid}", *DRUGS[0])), 201)
    return pid, lst["id"]


def registrations(server: LiveServer, pid: str) -> list[tuple[Any, ...]]:
    with server.db.read() as conn:
        query = sa.select(
            care_registration.c.unit_orgnr, care_registration.c.kind, care_registration.c.ended_at
        ).where(care_registration.c.patient_id == pid)
        return [tuple(r) for r in conn.execute(query)]


def audit_of(server: LiveServer, pid: str) -> list[tuple[str, str, str]]:
    """(action, outcome, actor's HPR) of the patient's audit records, oldest first."""
    with server.db.read() as conn:
        query = (
            sa.select(audit_event.c.action, audit_event.c.outcome, audit_event.c.actor)
            .where(audit_event.c.patient_id == pid)
            .order_by(audit_event.c.id)
        )
        rows = conn.execute(query).all()
    return [(a, o, orjson.loads(actor).get("hpr", "")) for a, o, actor in rows]


def test_a_nurse_of_the_unit_registers_and_ends(server: LiveServer) -> None:
    with server.client("gp") as gp, server.client("nursing-home-nurse") as nurse:
        pid, _ = new_patient(gp)
        path = f"/fhir/Patient/{pid}/$care-unit-register"
        made = ok(nurse.post(path, json=unit(name="Ullern sykehjem")), 201)
        validate(made, "EpisodeOfCare")
        assert made["status"] == "active"
        assert made["managingOrganization"]["identifier"]["value"] == ULLERN
        assert made["type"][0]["coding"][0]["code"] == "sykehjem"
        # again: nothing new, the same registration
        again = ok(nurse.post(path, json=unit()), 200)
        assert again["id"] == made["id"]
        assert registrations(server, pid) == [(ULLERN, "sykehjem", None)]
        # the same unit as another kind: end it first
        r = nurse.post(path, json=unit(kind="hjemmetjeneste"))
        assert r.status_code == 409, r.text
        # and a second unit too: home care, registered by its own nurse
        with server.client("nurse") as home_nurse:
            ok(home_nurse.post(path, json=unit(BERGEN_HOME_CARE, "hjemmetjeneste")), 201)
        ended = ok(
            nurse.post(
                f"/fhir/Patient/{pid}/$care-unit-end",
                json={"resourceType": "Parameters", "parameter": [unit()["parameter"][0]]},
            )
        )
        validate(ended, "EpisodeOfCare")
        assert ended["status"] == "finished"
        assert ended["period"]["end"]
        rows = sorted((o, e is None) for o, _, e in registrations(server, pid))
        assert rows == [(ULLERN, False), (BERGEN_HOME_CARE, True)]
        actions = [(a, o) for a, o, _ in audit_of(server, pid)]
        assert ("care-unit-register", "0") in actions
        assert ("care-unit-end", "0") in actions


@pytest.mark.parametrize(
    ("persona", "status"),
    [("nurse", 403), ("pharmacist", 403), ("care-worker", 403), ("patient", 403)],
)
def test_anyone_but_the_units_nurse_or_doctor_is_refused_and_logged(
    server: LiveServer, persona: str, status: int
) -> None:
    with server.client("gp") as gp:
        pid, _ = new_patient(gp)
        fnr = ok(gp.get(f"/fhir/Patient/{pid}"))["identifier"][0]["value"]
    before = snapshot(server.db, audit=False)
    refused_before = [a for a in audit_of(server, pid) if a[1] == "4"]
    who = fnr if persona == "patient" else None
    with server.client(persona, pid=who) as client:
        r = client.post(f"/fhir/Patient/{pid}/$care-unit-register", json=unit())
    assert r.status_code == status, r.text
    assert outcome_text(r)
    assert snapshot(server.db, audit=False) == before
    refused = [a for a in audit_of(server, pid) if a[1] == "4"]
    assert len(refused) == len(refused_before) + 1
    assert refused[-1][0] == "care-unit-register"


def test_only_the_units_nurse_ends_its_registration(server: LiveServer) -> None:
    with server.client("gp") as gp, server.client("nursing-home-nurse") as nurse:
        pid, _ = new_patient(gp)
        ok(nurse.post(f"/fhir/Patient/{pid}/$care-unit-register", json=unit()), 201)
    before = snapshot(server.db, audit=False)
    end = {"resourceType": "Parameters", "parameter": [unit()["parameter"][0]]}
    with server.client("nurse") as other:
        r = other.post(f"/fhir/Patient/{pid}/$care-unit-end", json=end)
    assert r.status_code == 403, r.text
    assert "care unit 883416031" in outcome_text(r)
    assert r.json()["issue"][0]["expression"]
    assert snapshot(server.db, audit=False) == before
    assert audit_of(server, pid)[-1][:2] == ("care-unit-end", "4")


def test_the_care_worker_reads_only_the_units_patients_and_never_writes(
    server: LiveServer,
) -> None:
    with (
        server.client("gp") as gp,
        server.client("nursing-home-nurse") as nurse,
        server.client("care-worker") as care,
    ):
        pid, list_id = new_patient(gp)
        other_pid, other_list = new_patient(gp)
        ok(nurse.post(f"/fhir/Patient/{pid}/$care-unit-register", json=unit()), 201)

        # the unit's patient: read, and logged under the care worker's name
        shown = ok(care.get(f"/fhir/List/{list_id}"))
        assert shown["resourceType"] == "List"
        reads = [a for a in audit_of(server, pid) if a[2] == CARE_WORKER_HPR]
        assert reads
        assert reads[-1][1] == "0"
        bundle = ok(care.get(f"/fhir/List?patient={pid}&_include=List:item"))
        assert bundle["total"] == 1

        # another patient: refused and logged
        r = care.get(f"/fhir/List/{other_list}")
        assert r.status_code == 403, r.text
        assert "registered with their care unit" in outcome_text(r)
        assert audit_of(server, other_pid)[-1][1:] == ("4", CARE_WORKER_HPR)

        # never a change, even for the unit's own patient
        before = snapshot(server.db, audit=False)
        r = care.post("/fhir/MedicationStatement", json=statement(f"Patient/{pid}", *DRUGS[1]))
        assert r.status_code == 403, r.text
        assert snapshot(server.db, audit=False) == before

        # once the registration has ended, the list is closed to them again
        end = {"resourceType": "Parameters", "parameter": [unit()["parameter"][0]]}
        ok(nurse.post(f"/fhir/Patient/{pid}/$care-unit-end", json=end))
        assert care.get(f"/fhir/List/{list_id}").status_code == 403


def _bad(orgnr: str = ULLERN, kind: str = "sykehjem") -> dict[str, Any]:
    return unit(orgnr, kind)


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("{p}/$care-unit-register", _bad(kind="sykehus"), 400, "Unknown kind of care unit"),
        ("{p}/$care-unit-register", _bad("883416032"), 400, "check digit"),
        ("{p}/$care-unit-register", _bad("88341"), 400, "nine digits"),
        (
            "{p}/$care-unit-register",
            {"resourceType": "Parameters", "parameter": [{"name": "kind", "valueCode": "x"}]},
            400,
            "organization",
        ),
        ("{p}/$care-unit-end", _bad("883416032"), 400, "check digit"),
        ("{p}/$care-unit-end", _bad(), 409, "not registered"),
        ("/fhir/Patient/no-such-patient/$care-unit-register", _bad(), 404, "does not exist"),
    ],
)
def test_bad_input_gets_a_clear_outcome_and_changes_nothing(
    server: LiveServer, path: str, body: dict[str, Any], status: int, words: str
) -> None:
    with server.client("gp") as gp:
        pid, _ = new_patient(gp)
    if path.endswith("$care-unit-end"):
        body = {"resourceType": "Parameters", "parameter": [body["parameter"][0]]}
    before = snapshot(server.db, audit=False)
    with server.client("nursing-home-nurse") as nurse:
        r = nurse.post(path.format(p=f"/fhir/Patient/{pid}"), json=body)
    assert r.status_code == status, r.text
    assert words in outcome_text(r), r.text
    assert snapshot(server.db, audit=False) == before


def test_the_capability_statement_names_the_operations(server: LiveServer) -> None:
    with server.client("nursing-home-nurse") as client:
        meta = ok(client.get("/fhir/metadata"))
    patient_type = next(r for r in meta["rest"][0]["resource"] if r["type"] == "Patient")
    names = {o["name"] for o in patient_type["operation"]}
    assert {"care-unit-register", "care-unit-end"} <= names
