"""The FHIR API of the list: what doctors and journal systems do with it, over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from tests.conftest import Clock, LiveServer, snapshot
from tests.integration.builders import (
    DRUGS,
    FNR,
    etag,
    new_fnr,
    new_patient_with_list,
    ok,
    outcome_text,
    patient,
    prescription,
    statement,
)


@pytest.fixture
def gp(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client("gp") as client:
        yield client


def _add(gp: httpx.Client, pid: str, drug: int = 0, **kw: Any) -> dict[str, Any]:
    return ok(
        gp.post("/fhir/MedicationStatement", json=statement(f"Patient/{pid}", *DRUGS[drug], **kw)),
        201,
    )


def _put(client: httpx.Client, resource: dict[str, Any], status: int = 200) -> dict[str, Any]:
    rtype = resource["resourceType"]
    r = client.put(
        f"/fhir/{rtype}/{resource['id']}",
        json=resource,
        headers={"If-Match": f'W/"{resource["meta"]["versionId"]}"'},
    )
    return ok(r, status)


def _document(client: httpx.Client, pid: str) -> dict[str, Any]:
    return ok(client.get("/fhir/List", params={"patient": pid, "_include": "List:item"}))


def test_register_or_find_patient_by_fodselsnummer_and_d_nummer(gp: httpx.Client) -> None:
    fnr = new_fnr()
    created = gp.post("/fhir/Patient", json=patient(fnr))
    assert created.status_code == 201
    assert created.headers["Location"].endswith(f"/fhir/Patient/{created.json()['id']}/_history/1")
    again = gp.post("/fhir/Patient", json=patient(fnr))
    assert again.status_code == 200
    assert again.json()["id"] == created.json()["id"]
    found = ok(gp.get("/fhir/Patient", params={"identifier": f"{FNR}|{fnr}"}))
    assert [e["resource"]["id"] for e in found["entry"]] == [created.json()["id"]]
    dnr = str(int(fnr[0]) + 4) + fnr[1:]
    # A D-number shares the fødselsnummer's check digits only by accident, so compute a real one.
    from pll.domain.identifiers import DNR_SYSTEM, parse_person_identifier

    for individual in range(1000):
        candidate = dnr[:6] + f"{individual:03d}"
        try:
            valid = _with_check_digits(candidate)
            parse_person_identifier(DNR_SYSTEM, valid)
        except Exception:
            continue
        break
    r = gp.post(
        "/fhir/Patient",
        json={"resourceType": "Patient", "identifier": [{"system": DNR_SYSTEM, "value": valid}]},
    )
    assert r.status_code == 201, r.text
    wrong_system = gp.post(
        "/fhir/Patient",
        json={"resourceType": "Patient", "identifier": [{"system": FNR, "value": valid}]},
    )
    assert wrong_system.status_code == 400
    assert "D-nummer" in outcome_text(wrong_system) or "D-number" in outcome_text(wrong_system)


def _with_check_digits(nine: str) -> str:
    w1, w2 = (3, 7, 6, 1, 8, 9, 4, 5, 2), (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
    digits = [int(c) for c in nine]
    k1 = 11 - sum(a * b for a, b in zip(digits, w1, strict=True)) % 11
    k1 = 0 if k1 == 11 else k1
    digits.append(k1)
    k2 = 11 - sum(a * b for a, b in zip(digits, w2, strict=True)) % 11
    k2 = 0 if k2 == 11 else k2
    return nine + str(k1) + str(k2)


def test_whole_current_list_in_one_call(gp: httpx.Client) -> None:
    pid, list_id = new_patient_with_list(gp)
    rx = ok(gp.post("/fhir/MedicationRequest", json=prescription(f"Patient/{pid}", *DRUGS[0])), 201)
    _add(gp, pid, 0, based_on=[f"MedicationRequest/{rx['id']}"])
    _add(gp, pid, 1)
    doc = _document(gp, pid)
    kinds = [e["resource"]["resourceType"] for e in doc["entry"]]
    assert kinds == ["List", "MedicationStatement", "MedicationStatement", "MedicationRequest"]
    assert all(e["fullUrl"].startswith("http://127.0.0.1:") for e in doc["entry"])
    the_list = doc["entry"][0]["resource"]
    assert the_list["id"] == list_id
    assert the_list["meta"]["versionId"] == "4"
    by_identifier = ok(
        gp.get("/fhir/List", params={"patient.identifier": f"{FNR}|{_fnr_of(gp, pid)}"})
    )
    assert by_identifier["entry"][0]["resource"]["id"] == list_id
    assert ok(gp.get("/fhir/List", params={"patient": "nobody"}))["total"] == 0


def _fnr_of(client: httpx.Client, pid: str) -> str:
    return str(ok(client.get(f"/fhir/Patient/{pid}"))["identifier"][0]["value"])


def test_an_unchanged_write_is_not_a_change(server: LiveServer, gp: httpx.Client) -> None:
    pid, list_id = new_patient_with_list(gp)
    entry = _add(gp, pid)
    before = snapshot(server.db)
    again = _put(gp, entry)
    assert again["meta"] == entry["meta"]
    after = snapshot(server.db)
    # Only the audit trail of the write's reads may grow; no version anywhere moved.
    assert {k: v for k, v in after.items() if k != "audit_event"} == {
        k: v for k, v in before.items() if k != "audit_event"
    }
    assert ok(gp.get(f"/fhir/List/{list_id}"))["meta"]["versionId"] == "2"


def test_entry_lifecycle_pause_resume_discontinue_and_history(gp: httpx.Client) -> None:
    pid, list_id = new_patient_with_list(gp)
    entry = _add(gp, pid)
    paused = _put(gp, dict(entry, status="on-hold"))
    assert paused["meta"]["versionId"] == "2"
    resumed = _put(gp, dict(paused, status="active"))
    stopped = _put(
        gp, dict(resumed, status="stopped", statusReason=[{"text": "Ikke lenger indisert"}])
    )
    assert stopped["id"] == entry["id"]
    history = ok(gp.get(f"/fhir/MedicationStatement/{entry['id']}/_history"))
    assert [e["resource"]["status"] for e in history["entry"]] == [
        "stopped",
        "active",
        "on-hold",
        "active",
    ]
    assert history["entry"][-1]["request"]["method"] == "POST"
    v2 = ok(gp.get(f"/fhir/MedicationStatement/{entry['id']}/_history/2"))
    assert v2["status"] == "on-hold"
    assert gp.get(f"/fhir/MedicationStatement/{entry['id']}/_history/9").status_code == 404
    # Still on the list, discontinued, with its reason; refused when brought back.
    doc = _document(gp, pid)
    assert doc["entry"][1]["resource"]["status"] == "stopped"
    r = gp.put(
        f"/fhir/MedicationStatement/{entry['id']}",
        json=dict(stopped, status="active"),
        headers={"If-Match": etag_of(stopped)},
    )
    assert r.status_code == 409
    provenance = ok(
        gp.get("/fhir/Provenance", params={"target": f"MedicationStatement/{entry['id']}"})
    )
    activities = [p["resource"]["activity"]["text"] for p in provenance["entry"]]
    assert activities == ["discontinue-entry", "resume-entry", "pause-entry", "add-entry"]
    assert ok(gp.get(f"/fhir/List/{list_id}/_history/2"))["entry"][0]["item"]["reference"].endswith(
        "/_history/1"
    )


def etag_of(resource: dict[str, Any]) -> str:
    return f'W/"{resource["meta"]["versionId"]}"'


def test_discontinued_entries_stay_visible_for_90_days(gp: httpx.Client, clock: Clock) -> None:
    pid, list_id = new_patient_with_list(gp)
    keep = _add(gp, pid, 0)
    entry = _add(gp, pid, 1)
    _put(gp, dict(entry, status="stopped", statusReason=[{"text": "Seponert"}]))
    clock.advance(days=89)
    at_89 = gp.get(f"/fhir/List/{list_id}")
    assert len(ok(at_89)["entry"]) == 2
    clock.advance(days=2)
    at_91 = gp.get(f"/fhir/List/{list_id}")
    shown = ok(at_91)["entry"]
    assert [e["item"]["reference"].split("/")[1] for e in shown] == [keep["id"]]
    assert len(_document(gp, pid)["entry"]) == 2  # the List and the entry still in use
    assert ok(gp.get(f"/fhir/MedicationStatement/{entry['id']}"))["status"] == "stopped"
    # The drop-off is a version of its own: one ETag never means two documents (rule 1), and
    # the baton stays with the doctor who made the last change.
    assert etag(at_91) != etag(at_89)
    assert ok(gp.get(f"/fhir/List/{list_id}/_history/{etag(at_89)[3:-1]}"))["entry"][1]
    last = ok(gp.get("/fhir/Provenance", params={"target": f"List/{list_id}"}))["entry"][0][
        "resource"
    ]
    assert (last["activity"]["text"], last["agent"][0]["who"]["display"]) == (
        "expire-entries",
        "PLL (automatisk)",
    )
    assert ok(at_91)["source"]["identifier"]["value"] == "9144889"


def test_entered_in_error_is_removed_with_a_reason(gp: httpx.Client) -> None:
    pid, list_id = new_patient_with_list(gp)
    entry = _add(gp, pid)
    r = gp.put(
        f"/fhir/MedicationStatement/{entry['id']}",
        json=dict(entry, status="entered-in-error"),
        headers={"If-Match": etag_of(entry)},
    )
    assert r.status_code == 400
    _put(
        gp,
        dict(
            entry, status="entered-in-error", statusReason=[{"text": "Registrert på feil pasient"}]
        ),
    )
    assert "entry" not in ok(gp.get(f"/fhir/List/{list_id}"))
    prov = ok(gp.get("/fhir/Provenance", params={"target": f"List/{list_id}"}))
    assert prov["entry"][0]["resource"]["reason"][0]["text"] == "Registrert på feil pasient"


def test_prescriptions_renewal_chain_and_recall(gp: httpx.Client) -> None:
    pid, _ = new_patient_with_list(gp)
    first = ok(
        gp.post("/fhir/MedicationRequest", json=prescription(f"Patient/{pid}", *DRUGS[0])), 201
    )
    entry = _add(gp, pid, 0, based_on=[f"MedicationRequest/{first['id']}"])
    # A prescription is never on two active entries.
    r = gp.post(
        "/fhir/MedicationStatement",
        json=statement(f"Patient/{pid}", *DRUGS[0], based_on=[f"MedicationRequest/{first['id']}"]),
    )
    assert r.status_code == 409
    assert "never on two active entries" in outcome_text(r)
    # Renewal: the new prescription heads the chain, the old one is completed, the entry follows.
    renewed = ok(
        gp.post(
            "/fhir/MedicationRequest",
            json=prescription(
                f"Patient/{pid}", *DRUGS[0], prior=f"MedicationRequest/{first['id']}"
            ),
        ),
        201,
    )
    assert ok(gp.get(f"/fhir/MedicationRequest/{first['id']}"))["status"] == "completed"
    moved = ok(gp.get(f"/fhir/MedicationStatement/{entry['id']}"))
    assert moved["basedOn"] == [{"reference": f"MedicationRequest/{renewed['id']}"}]
    assert moved["meta"]["versionId"] == "2"
    again = gp.post(
        "/fhir/MedicationRequest",
        json=prescription(f"Patient/{pid}", *DRUGS[0], prior=f"MedicationRequest/{first['id']}"),
    )
    assert again.status_code == 409
    # Recall takes a reason; the content itself cannot be edited.
    edited = dict(renewed, note=[{"text": "endret"}])
    r = gp.put(
        f"/fhir/MedicationRequest/{renewed['id']}",
        json=edited,
        headers={"If-Match": etag_of(renewed)},
    )
    assert r.status_code == 400
    recalled = _put(gp, dict(renewed, status="stopped", statusReason={"text": "Feil styrke"}))
    assert recalled["status"] == "stopped"
    # Discontinuing an entry recalls its prescriptions.
    rx = ok(gp.post("/fhir/MedicationRequest", json=prescription(f"Patient/{pid}", *DRUGS[1])), 201)
    e2 = _add(gp, pid, 1, based_on=[f"MedicationRequest/{rx['id']}"])
    _put(gp, dict(e2, status="stopped", statusReason=[{"text": "Bivirkning"}]))
    assert ok(gp.get(f"/fhir/MedicationRequest/{rx['id']}"))["status"] == "stopped"


def test_diff_shows_prescriptions_and_entries_that_left_the_list(gp: httpx.Client) -> None:
    pid, list_id = new_patient_with_list(gp)
    entry = _add(gp, pid)
    rx = ok(gp.post("/fhir/MedicationRequest", json=prescription(f"Patient/{pid}", *DRUGS[1])), 201)
    start = int(ok(gp.get(f"/fhir/List/{list_id}"))["meta"]["versionId"])
    _put(gp, dict(rx, status="stopped", statusReason={"text": "Feil styrke"}))
    _put(gp, dict(entry, status="entered-in-error", statusReason=[{"text": "Feil pasient"}]))
    end = int(ok(gp.get(f"/fhir/List/{list_id}"))["meta"]["versionId"])
    diff = ok(gp.get(f"/fhir/List/{list_id}/$diff", params={"from": start, "to": end}))
    kinds = {
        p["name"]: {x["name"]: x.get("valueCode") for x in p["part"] if x["name"] == "change"}[
            "change"
        ]
        for p in diff["parameter"]
        if p["name"] in ("entry", "prescription")
    }
    assert kinds == {"entry": "removed", "prescription": "changed"}


def test_confirm_pause_and_resume_the_list(gp: httpx.Client, server: LiveServer) -> None:
    pid, list_id = new_patient_with_list(gp)
    _add(gp, pid)
    r = gp.post(f"/fhir/List/{list_id}/$confirm")
    assert r.status_code == 428
    r = gp.post(f"/fhir/List/{list_id}/$confirm", headers={"If-Match": 'W/"1"'})
    assert r.status_code == 412
    confirmed = ok(gp.post(f"/fhir/List/{list_id}/$confirm", headers={"If-Match": 'W/"2"'}))
    ext = {e["url"].rsplit("/", 1)[1]: e for e in confirmed["extension"]}
    assert "pll-confirmed" in ext
    assert confirmed["meta"]["versionId"] == "3"
    with server.client("hospital-doctor") as hospital:
        paused = ok(
            hospital.post(
                f"/fhir/List/{list_id}/$pause",
                json={
                    "resourceType": "Parameters",
                    "parameter": [{"name": "reason", "valueString": "Innlagt på sykehus"}],
                },
            )
        )
        assert any(e["url"].endswith("pll-paused") for e in paused["extension"])
        assert (
            hospital.post(
                f"/fhir/List/{list_id}/$pause",
                json={
                    "resourceType": "Parameters",
                    "parameter": [{"name": "reason", "valueString": "igjen"}],
                },
            ).status_code
            == 409
        )
        resumed = ok(hospital.post(f"/fhir/List/{list_id}/$resume", headers={"If-Match": 'W/"4"'}))
    assert not any(e["url"].endswith("pll-paused") for e in resumed["extension"])
    assert resumed["source"]["identifier"]["value"] == "9144897"
    diff = ok(gp.get(f"/fhir/List/{list_id}/$diff", params={"from": 3, "to": 4}))
    assert [p["name"] for p in diff["parameter"]] == ["from", "to", "list"]


def test_paging_through_entries(gp: httpx.Client) -> None:
    pid, _ = new_patient_with_list(gp)
    for i in range(5):
        _add(gp, pid, i)
    page = ok(gp.get("/fhir/MedicationStatement", params={"patient": pid, "_count": 2}))
    assert page["total"] == 5
    seen = [e["resource"]["id"] for e in page["entry"]]
    while next_link := next(
        (link["url"] for link in page["link"] if link["relation"] == "next"), None
    ):
        page = ok(gp.get(next_link))
        seen += [e["resource"]["id"] for e in page["entry"]]
    assert len(set(seen)) == 5


def test_metadata_tells_the_truth(server: LiveServer, gp: httpx.Client) -> None:
    cap = ok(httpx.get(f"{server.base}/fhir/metadata"))
    CapabilityStatement.model_validate(cap)
    resources = {r["type"]: r for r in cap["rest"][0]["resource"]}
    served = {t: {i["code"] for i in r["interaction"]} for t, r in resources.items()}
    assert served["List"] >= {"create", "read", "vread", "history-instance", "search-type"}
    assert served["MedicationStatement"] == {
        "create",
        "read",
        "update",
        "vread",
        "history-instance",
        "search-type",
    }
    # Nothing on the list is ever deleted; a patient's block is ended with DELETE.
    clinical = ("List", "MedicationStatement", "MedicationRequest", "Patient")
    assert "delete" not in set().union(*(served[t] for t in clinical))
    assert served["Consent"] == {"create", "read", "search-type", "delete"}
    assert served["AuditEvent"] == {"search-type"}
    # discrepancy cases: reported, read and followed; changed only by their operations
    assert served["Task"] == {"create", "read", "vread", "history-instance", "search-type"}
    assert {o["name"] for o in resources["Task"]["operation"]} == {
        "take",
        "comment",
        "resolve",
        "reject",
        "withdraw",
    }
    security = cap["rest"][0]["security"]["description"]
    assert "X-PLL-Access-Basis" in security
    assert all(code in security for code in ("HPAKUTT", "HPMOTTATTSAMTYKKE", "HPUNNTAK"))
    assert resources["List"]["searchInclude"] == ["List:item"]
    # Every advertised read answers "does not exist" for an unknown id (not "no such endpoint").
    for rtype, interactions in served.items():
        if "read" in interactions:
            r = gp.get(f"/fhir/{rtype}/unknown-id")
            assert r.status_code == 404, rtype
            assert "does not exist" in outcome_text(r), rtype
    # Every advertised search parameter is accepted; an unadvertised one is refused.
    for rtype, resource in resources.items():
        for param in resource.get("searchParam", []):
            r = gp.get(f"/fhir/{rtype}", params={param["name"]: "1"})
            assert "Unsupported search parameter" not in r.text, (rtype, param["name"])
        r = gp.get(f"/fhir/{rtype}", params={"_sort": "date"})
        if "search-type" in served[rtype]:
            assert "Unsupported search parameter" in outcome_text(r), rtype
    assert gp.get("/fhir/Observation/x").status_code == 404


def test_healthz(server: LiveServer) -> None:
    assert httpx.get(f"{server.base}/healthz").status_code == 200


def test_the_why_of_a_change_in_norwegian(gp: httpx.Client) -> None:
    pid, _ = new_patient_with_list(gp)
    entry = _add(gp, pid)
    why = {
        "resourceType": "Provenance",
        "reason": [{"text": "Legemiddelgjennomgang på sykehus, døgnpost Ålesund"}],
    }
    # Sent as UTF-8 bytes, as a journal system would.
    header = json.dumps(why, ensure_ascii=False).encode()
    r = gp.put(
        f"/fhir/MedicationStatement/{entry['id']}",
        json=dict(entry, status="on-hold"),
        headers={"If-Match": 'W/"1"', "X-Provenance": header},
    )
    ok(r)
    target = f"MedicationStatement/{entry['id']}/_history/2"
    prov = ok(gp.get("/fhir/Provenance", params={"target": target}))
    assert prov["total"] == 1
    reason = prov["entry"][0]["resource"]["reason"][0]["text"]
    assert reason == "Legemiddelgjennomgang på sykehus, døgnpost Ålesund"
    read = ok(gp.get(f"/fhir/Provenance/{prov['entry'][0]['resource']['id']}"))
    assert read == prov["entry"][0]["resource"]


def test_history_pages_stay_put_while_the_list_moves_on(gp: httpx.Client) -> None:
    pid, list_id = new_patient_with_list(gp)
    for i in range(4):
        _add(gp, pid, i)
    first = ok(gp.get(f"/fhir/List/{list_id}/_history", params={"_count": 2}))
    _add(gp, pid, 4)  # the list moves on between pages
    seen = [e["resource"]["meta"]["versionId"] for e in first["entry"]]
    page = first
    while next_link := next((x["url"] for x in page["link"] if x["relation"] == "next"), None):
        page = ok(gp.get(next_link))
        seen += [e["resource"]["meta"]["versionId"] for e in page["entry"]]
    assert seen == ["5", "4", "3", "2", "1"]


def test_a_paused_list_is_changed_by_nobody_until_it_is_resumed(
    gp: httpx.Client, server: LiveServer
) -> None:
    """Pause PLL (DESIGN §2): the list is not kept current while paused, so a change of an
    entry over REST is refused with 409 and nothing written, until a doctor resumes it."""
    pid, list_id = new_patient_with_list(gp)
    entry = _add(gp, pid)
    paused = ok(
        gp.post(
            f"/fhir/List/{list_id}/$pause",
            json={
                "resourceType": "Parameters",
                "parameter": [{"name": "reason", "valueString": "Innlagt på sykehus"}],
            },
        )
    )
    before = snapshot(server.db)
    r = gp.put(
        f"/fhir/MedicationStatement/{entry['id']}",
        json=dict(entry, status="on-hold"),
        headers={"If-Match": etag_of(entry)},
    )
    assert r.status_code == 409, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "paused" in outcome["issue"][0]["diagnostics"]
    assert _add_status(gp, pid) == 409
    assert snapshot(server.db) == before
    ok(gp.post(f"/fhir/List/{list_id}/$resume", headers={"If-Match": etag_of(paused)}))
    held = _put(gp, dict(entry, status="on-hold"))
    assert held["status"] == "on-hold"


def _add_status(gp: httpx.Client, pid: str) -> int:
    return gp.post(
        "/fhir/MedicationStatement", json=statement(f"Patient/{pid}", *DRUGS[1])
    ).status_code
