"""The relay-baton scene from the foundation issue, over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from pll.store.schema import audit_event
from tests.conftest import LiveServer, snapshot
from tests.integration.builders import DRUGS, etag, ok, outcome_text, patient, statement

HPR = "urn:oid:2.16.578.1.12.4.1.4.4"


def _create_pll_with_five_entries(server: LiveServer) -> tuple[str, list[dict[str, Any]]]:
    entries = [
        {
            "fullUrl": f"urn:uuid:00000000-0000-4000-8000-00000000000{i}",
            "resource": statement("urn:uuid:00000000-0000-4000-8000-0000000000aa", name, atc),
            "request": {"method": "POST", "url": "MedicationStatement"},
        }
        for i, (name, atc) in enumerate(DRUGS)
    ]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000aa",
                "resource": patient(),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {
                    "resourceType": "List",
                    "status": "current",
                    "mode": "working",
                    "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-0000000000aa"},
                },
                "request": {"method": "POST", "url": "List"},
            },
            *entries,
        ],
    }
    with server.client("gp") as gp:
        response = ok(gp.post("/fhir", json=bundle))
    assert response["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in response["entry"]]
    assert statuses == ["201 Created"] * 7
    list_id = response["entry"][1]["response"]["location"].split("/")[1]
    return list_id, [e["resource"] for e in response["entry"][2:]]


def test_two_doctors_change_one_list_and_a_stale_change_is_refused(server: LiveServer) -> None:
    list_id, held = _create_pll_with_five_entries(server)
    gp, hospital = server.client("gp"), server.client("hospital-doctor")
    first = ok(gp.get(f"/fhir/List/{list_id}"))
    assert first["meta"]["versionId"] == "1"
    assert len(first["entry"]) == 5

    # The hospital doctor, holding the versions the GP left, doubles the dose of entry 2.
    entry2 = dict(
        held[1],
        dosage=[
            dict(
                held[1]["dosage"][0],
                doseAndRate=[{"doseQuantity": {"value": 2, "unit": "tablett"}}],
            )
        ],
    )
    r = hospital.put(
        f"/fhir/MedicationStatement/{entry2['id']}", json=entry2, headers={"If-Match": 'W/"1"'}
    )
    changed2 = ok(r)
    assert etag(r) == 'W/"2"'
    assert changed2["dosage"][0]["text"] == "2 tabletter morgen"

    # The GP, holding the same old versions, discontinues entry 4: another entry, so no conflict.
    entry4 = dict(held[3], status="stopped", statusReason=[{"text": "Bivirkninger"}])
    r = gp.put(
        f"/fhir/MedicationStatement/{entry4['id']}", json=entry4, headers={"If-Match": 'W/"1"'}
    )
    assert ok(r)["status"] == "stopped"

    # The GP, still holding entry 2's old version, changes its dose: refused, nothing written.
    before = snapshot(server.db, audit=False)
    stale = dict(
        held[1],
        dosage=[
            dict(
                held[1]["dosage"][0],
                doseAndRate=[{"doseQuantity": {"value": 3, "unit": "tablett"}}],
            )
        ],
    )
    r = gp.put(
        f"/fhir/MedicationStatement/{stale['id']}", json=stale, headers={"If-Match": 'W/"1"'}
    )
    assert r.status_code == 412
    text = outcome_text(r)
    assert f"MedicationStatement/{stale['id']}" in text
    assert "current version is 2" in text
    assert "Ola Sykehuslege" in text
    # The refusal says what the other doctor changed and carries the current version.
    assert "Changed since your version: dosage: 1 tablett morgen → 2 tabletter morgen" in text
    assert r.json()["contained"][0]["meta"]["versionId"] == "2"
    assert snapshot(server.db, audit=False) == before
    # Handing back the current version is a read, and it is logged as one (rule 5).
    with server.db.read() as conn:
        last = conn.execute(sa.select(audit_event).order_by(audit_event.c.id.desc())).first()
    assert last is not None
    assert (last.action, last.resource_type, last.resource_id) == (
        "read",
        "MedicationStatement",
        stale["id"],
    )

    # The List moved on twice; the baton is with the GP, who made the last accepted change.
    last = ok(gp.get(f"/fhir/List/{list_id}"))
    assert last["meta"]["versionId"] == "3"
    assert last["source"]["identifier"] == {"system": HPR, "value": "9144889"}

    # History: every version with its author.
    history = ok(gp.get(f"/fhir/List/{list_id}/_history"))
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["3", "2", "1"]
    provenance = ok(gp.get("/fhir/Provenance", params={"target": f"List/{list_id}"}))
    authors = [p["resource"]["agent"][0]["who"]["identifier"]["value"] for p in provenance["entry"]]
    assert authors == ["9144889", "9144897", "9144889"]
    reasons = [p["resource"].get("reason", [{}])[0].get("text") for p in provenance["entry"]]
    assert reasons[0] == "Bivirkninger"

    # The diff from the first to the last version shows exactly the two accepted changes.
    diff = ok(gp.get(f"/fhir/List/{list_id}/$diff", params={"from": 1, "to": 3}))
    changes = [p for p in diff["parameter"] if p["name"] == "entry"]
    assert len(changes) == 2
    by_entry = {_part(c, "entry")["valueReference"]["reference"]: c for c in changes}
    dose_change = by_entry[f"MedicationStatement/{entry2['id']}"]
    assert _elements(dose_change) == {"dosage": ("1 tablett morgen", "2 tabletter morgen")}
    stop = by_entry[f"MedicationStatement/{entry4['id']}"]
    assert _elements(stop)["status"] == ("active", "stopped")
    assert not [p for p in diff["parameter"] if p["name"] == "list"]
    for client in (gp, hospital):
        client.close()


def _part(param: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in param["part"] if p["name"] == name)


def _elements(param: dict[str, Any]) -> dict[str, tuple[str | None, str | None]]:
    out = {}
    for p in param["part"]:
        if p["name"] == "element":
            parts = {x["name"]: x.get("valueString") for x in p["part"]}
            out[parts["name"]] = (parts.get("before"), parts.get("after"))
    return out
