"""The relay baton under real concurrency: simultaneous writes, on both databases."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.conftest import LiveServer
from tests.integration.builders import DRUGS, new_patient_with_list, ok, patient, statement


def _put(server: LiveServer, persona: str, resource: dict[str, Any], amount: float) -> int:
    body = dict(
        resource,
        dosage=[
            dict(
                resource["dosage"][0],
                doseAndRate=[{"doseQuantity": {"value": amount, "unit": "tablett"}}],
            )
        ],
    )
    with server.client(persona) as client:
        r = client.put(
            f"/fhir/MedicationStatement/{resource['id']}", json=body, headers={"If-Match": 'W/"1"'}
        )
    return r.status_code


def test_simultaneous_changes_to_one_entry_exactly_one_wins(server: LiveServer) -> None:
    with server.client() as gp:
        pid, list_id = new_patient_with_list(gp)
        entry = ok(
            gp.post("/fhir/MedicationStatement", json=statement(f"Patient/{pid}", *DRUGS[0])), 201
        )
    personas = ["gp", "hospital-doctor"] * 4
    with ThreadPoolExecutor(len(personas)) as pool:
        codes = list(
            pool.map(lambda i: _put(server, personas[i], entry, i + 2), range(len(personas)))
        )
    assert sorted(codes) == [200] + [412] * (len(personas) - 1)
    with server.client() as gp:
        assert ok(gp.get(f"/fhir/MedicationStatement/{entry['id']}"))["meta"]["versionId"] == "2"
        assert ok(gp.get(f"/fhir/List/{list_id}"))["meta"]["versionId"] == "3"


def test_simultaneous_changes_to_different_entries_all_succeed(server: LiveServer) -> None:
    with server.client() as gp:
        pid, list_id = new_patient_with_list(gp)
        entries = [
            ok(gp.post("/fhir/MedicationStatement", json=statement(f"Patient/{pid}", *d)), 201)
            for d in DRUGS
        ]
    with ThreadPoolExecutor(len(entries)) as pool:
        codes = list(pool.map(lambda e: _put(server, "hospital-doctor", e, 3), entries))
    assert codes == [200] * len(entries)
    with server.client() as gp:
        history = ok(gp.get(f"/fhir/List/{list_id}/_history"))
    # One list version per accepted change, none lost: 1 create + 5 adds + 5 changes.
    assert history["total"] == 11
    assert sorted(int(e["resource"]["meta"]["versionId"]) for e in history["entry"]) == list(
        range(1, 12)
    )


def test_two_journal_systems_creating_the_same_list_at_once(server: LiveServer) -> None:
    with server.client() as gp:
        pid = ok(gp.post("/fhir/Patient", json=patient()), 201)["id"]
    body = {
        "resourceType": "List",
        "status": "current",
        "mode": "working",
        "subject": {"reference": f"Patient/{pid}"},
    }

    def create(_: int) -> int:
        with server.client("gp") as client:
            return client.post("/fhir/List", json=body).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = sorted(pool.map(create, range(6)))
    assert codes == [201] + [409] * 5


def test_registering_the_same_patient_at_once_gives_one_patient(server: LiveServer) -> None:
    same = patient()

    def register(_: int) -> str:
        with server.client("gp") as client:
            r = client.post("/fhir/Patient", json=same)
            assert r.status_code in (200, 201), r.text
            return str(r.json()["id"])

    with ThreadPoolExecutor(6) as pool:
        ids = set(pool.map(register, range(6)))
    assert len(ids) == 1
