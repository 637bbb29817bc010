"""The relay baton under real concurrency: simultaneous writes, on both databases."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.conftest import LiveServer
from tests.integration.builders import DRUGS, new_patient_with_list, ok, statement


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
