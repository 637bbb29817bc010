"""Bad input on purpose: each gets a clear 4xx OperationOutcome and changes nothing (rule 8)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import LiveServer, snapshot
from tests.integration.builders import (
    DRUGS,
    FNR,
    new_fnr,
    new_patient_with_list,
    ok,
    outcome_text,
    patient,
    prescription,
    statement,
)


@pytest.fixture
def listed(server: LiveServer) -> dict[str, Any]:
    """A patient with a PLL holding one entry."""
    with server.client() as gp:
        pid, list_id = new_patient_with_list(gp)
        entry = ok(
            gp.post("/fhir/MedicationStatement", json=statement(f"Patient/{pid}", *DRUGS[0])), 201
        )
    return {"pid": pid, "list": list_id, "entry": entry}


def _refused(
    server: LiveServer,
    method: str,
    url: str,
    status: int,
    *,
    body: Any = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    persona: str = "gp",
    audit: bool = True,
) -> tuple[str, list[str]]:
    """Send a request that must be refused; check its OperationOutcome and that nothing
    changed (``audit=False``: except the audit trail, for refusals that show data)."""
    before = snapshot(server.db, audit=audit)
    with server.client(persona) as client:
        r = client.request(method, url, json=body, content=content, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    expressions = [e for i in r.json()["issue"] for e in i.get("expression", [])]
    assert snapshot(server.db, audit=audit) == before, "a refused request changed the database"
    return outcome_text(r), expressions


def test_malformed_json_names_the_line(server: LiveServer) -> None:
    text, _ = _refused(
        server, "POST", "/fhir/Patient", 400, content=b'{"resourceType": "Patient",\n "x": }'
    )
    assert "not valid JSON at line 2" in text


def test_empty_body(server: LiveServer) -> None:
    text, _ = _refused(server, "POST", "/fhir/Patient", 400, content=b"")
    assert "empty" in text


def test_wrong_resource_type(server: LiveServer) -> None:
    text, expr = _refused(server, "POST", "/fhir/MedicationStatement", 400, body=patient())
    assert "Expected resourceType 'MedicationStatement', got 'Patient'" in text
    assert expr == ["resourceType"]


def test_unknown_element_is_located(server: LiveServer, listed: dict[str, Any]) -> None:
    body = statement(f"Patient/{listed['pid']}", *DRUGS[1])
    body["dosage"][0]["timing"]["repeat"]["colour"] = "blue"
    text, expr = _refused(server, "POST", "/fhir/MedicationStatement", 400, body=body)
    assert "Unknown element" in text
    assert expr == ["MedicationStatement.dosage[0].timing.repeat.colour"]


def test_fodselsnummer_with_a_wrong_check_digit(server: LiveServer) -> None:
    good = patient()["identifier"][0]["value"]
    bad = good[:10] + str((int(good[10]) + 1) % 10)
    text, expr = _refused(
        server,
        "POST",
        "/fhir/Patient",
        400,
        body={"resourceType": "Patient", "identifier": [{"system": FNR, "value": bad}]},
    )
    assert "check digit" in text
    assert expr == ["Patient.identifier[0].value"]


def test_unsupported_media_type(server: LiveServer) -> None:
    text, _ = _refused(
        server,
        "POST",
        "/fhir/Patient",
        415,
        content=b"<Patient/>",
        headers={"Content-Type": "application/fhir+xml"},
    )
    assert "application/fhir+json" in text


def test_unknown_entry(server: LiveServer, listed: dict[str, Any]) -> None:
    body = dict(listed["entry"], id="does-not-exist")
    text, _ = _refused(
        server,
        "PUT",
        "/fhir/MedicationStatement/does-not-exist",
        404,
        body=body,
        headers={"If-Match": 'W/"1"'},
    )
    assert "does not exist" in text
    _refused(server, "GET", "/fhir/MedicationStatement/does-not-exist", 404)


@pytest.mark.parametrize(
    ("status", "entry_status", "if_match", "says", "where"),
    [
        (428, "on-hold", None, 'If-Match: W/"1"', None),
        (412, "on-hold", 'W/"7"', "you hold version 7, the current version is 1", None),
        (400, "on-hold", "yesterday", "If-Match", "If-Match"),
        (400, "stopped", 'W/"1"', "reason", "MedicationStatement.statusReason"),
    ],
    ids=["missing-if-match", "stale-if-match", "garbled-if-match", "discontinue-without-reason"],
)
def test_a_refused_entry_change(
    server: LiveServer,
    listed: dict[str, Any],
    status: int,
    entry_status: str,
    if_match: str | None,
    says: str,
    where: str | None,
) -> None:
    entry = dict(listed["entry"], status=entry_status)
    headers = {"If-Match": if_match} if if_match else None
    # A stale version is answered with the current one, which is a read and logged.
    text, expr = _refused(
        server,
        "PUT",
        f"/fhir/MedicationStatement/{entry['id']}",
        status,
        body=entry,
        headers=headers,
        audit=status != 412,
    )
    assert says in text
    if where:
        assert expr == [where]


def test_bad_atc_code(server: LiveServer, listed: dict[str, Any]) -> None:
    text, expr = _refused(
        server,
        "POST",
        "/fhir/MedicationStatement",
        400,
        body=statement(f"Patient/{listed['pid']}", "Noe", "paracet"),
    )
    assert "not an ATC code" in text
    assert expr == ["MedicationStatement.medicationCodeableConcept.coding[0].code"]


def test_bad_dosage_is_located(server: LiveServer, listed: dict[str, Any]) -> None:
    body = statement(f"Patient/{listed['pid']}", *DRUGS[1])
    body["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"] = -1
    _, expr = _refused(server, "POST", "/fhir/MedicationStatement", 400, body=body)
    assert expr[0].startswith("MedicationStatement.dosage[0].doseAndRate[0].doseQuantity")


def test_entry_for_a_patient_without_a_list(server: LiveServer) -> None:
    with server.client() as gp:
        pid = ok(gp.post("/fhir/Patient", json=patient()), 201)["id"]
    text, _ = _refused(
        server,
        "POST",
        "/fhir/MedicationStatement",
        409,
        body=statement(f"Patient/{pid}", *DRUGS[0]),
    )
    assert "has no PLL yet" in text


def test_second_list_for_a_patient(server: LiveServer, listed: dict[str, Any]) -> None:
    text, _ = _refused(
        server,
        "POST",
        "/fhir/List",
        409,
        body={
            "resourceType": "List",
            "status": "current",
            "mode": "working",
            "subject": {"reference": f"Patient/{listed['pid']}"},
        },
    )
    assert "already has a PLL" in text


def test_transaction_with_one_bad_entry_writes_nothing(
    server: LiveServer, listed: dict[str, Any]
) -> None:
    ref = f"Patient/{listed['pid']}"
    bad = statement(ref, *DRUGS[2])
    bad["status"] = "stopped"  # a new entry cannot start discontinued
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": statement(ref, *DRUGS[1]),
                "request": {"method": "POST", "url": "MedicationStatement"},
            },
            {"resource": bad, "request": {"method": "POST", "url": "MedicationStatement"}},
            {
                "resource": dict(listed["entry"], status="on-hold"),
                "request": {
                    "method": "PUT",
                    "url": f"MedicationStatement/{listed['entry']['id']}",
                    "ifMatch": 'W/"1"',
                },
            },
        ],
    }
    text, expr = _refused(server, "POST", "/fhir", 400, body=bundle)
    assert "must have status 'active' or 'on-hold'" in text
    assert expr == ["Bundle.entry[1].resource.status"]


def test_transaction_with_an_unresolvable_reference(server: LiveServer) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "List",
                    "status": "current",
                    "mode": "working",
                    "subject": {"reference": "urn:uuid:0b8f0a5e-0000-4000-8000-000000000000"},
                },
                "request": {"method": "POST", "url": "List"},
            },
        ],
    }
    text, _ = _refused(server, "POST", "/fhir", 400, body=bundle)
    assert "does not name an entry of this transaction" in text


def test_unknown_search_parameter(server: LiveServer) -> None:
    text, expr = _refused(server, "GET", "/fhir/MedicationStatement?colour=blue", 400)
    assert "Unsupported search parameter" in text
    assert expr == ["colour"]


def test_bad_paging(server: LiveServer, listed: dict[str, Any]) -> None:
    text, _ = _refused(
        server, "GET", f"/fhir/MedicationStatement?patient={listed['pid']}&_count=0", 400
    )
    assert "_count" in text


def test_no_token(server: LiveServer) -> None:
    before = snapshot(server.db)
    import httpx

    r = httpx.post(f"{server.base}/fhir/Patient", json=patient())
    assert r.status_code == 401
    assert "DPoP" in r.headers["WWW-Authenticate"]
    assert "Bearer" in r.headers["WWW-Authenticate"]
    assert "access token" in outcome_text(r)
    assert snapshot(server.db) == before


def test_forged_token(server: LiveServer) -> None:
    import httpx

    token = server.token("gp")
    head, body, sig = token.split(".")
    r = httpx.get(
        f"{server.base}/fhir/Patient?identifier=x",
        headers={"Authorization": f"Bearer {head}.{body}.{sig[::-1]}"},
    )
    assert r.status_code == 401


@pytest.mark.parametrize("persona", ["nurse", "pharmacist"])
def test_only_prescribers_change_the_list(
    server: LiveServer, listed: dict[str, Any], persona: str
) -> None:
    entry = dict(listed["entry"], status="on-hold")
    text, _ = _refused(
        server,
        "PUT",
        f"/fhir/MedicationStatement/{entry['id']}",
        403,
        body=entry,
        headers={"If-Match": 'W/"1"'},
        persona=persona,
        audit=False,  # the refusal itself is logged (test_access.py checks the record)
    )
    assert "Only prescribers change the list" in text
    _refused(
        server,
        "POST",
        "/fhir/MedicationStatement",
        403,
        body=statement(f"Patient/{listed['pid']}", *DRUGS[1]),
        persona=persona,
        audit=False,
    )


def test_a_patient_reads_only_their_own_list(server: LiveServer, listed: dict[str, Any]) -> None:
    with server.client() as gp:
        fnr = gp.get(f"/fhir/Patient/{listed['pid']}").json()["identifier"][0]["value"]
    with server.client("patient", fnr) as me:
        assert me.get(f"/fhir/List/{listed['list']}").status_code == 200
    with server.client("patient", "17855116340") as stranger:
        r = stranger.get(f"/fhir/List/{listed['list']}")
        assert r.status_code == 403
        assert "only their own" in outcome_text(r)


def test_unknown_route_and_method_are_outcomes(server: LiveServer) -> None:
    import httpx

    r = httpx.get(f"{server.base}/fhir/Observation")
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome"
    r = httpx.delete(f"{server.base}/fhir/List/x")
    assert r.status_code == 405
    assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/List/x/_history/99999999999999999999",
        "/fhir/List/x/_history/%C2%B2",
        "/fhir/MedicationStatement/x/_history/3000000000",
        "/fhir/List/%00",
        "/fhir/List/" + "a" * 65,
        "/fhir/Provenance?target=List/%00",
        "/fhir/List/x/$diff?from=1&to=99999999999",
        "/fhir/List?patient=%00",
    ],
)
def test_odd_ids_and_versions_are_refused_cleanly(server: LiveServer, path: str) -> None:
    _, expressions = _refused(server, "GET", path, 400)
    assert expressions


def test_a_transaction_naming_one_entry_twice_is_refused(
    server: LiveServer, listed: dict[str, Any]
) -> None:
    entry = listed["entry"]
    url = f"MedicationStatement/{entry['id']}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": dict(entry, note=[{"text": "first"}]),
                "request": {"method": "PUT", "url": url, "ifMatch": 'W/"1"'},
            },
            {
                "resource": dict(entry, note=[{"text": "second"}]),
                "request": {"method": "PUT", "url": url, "ifMatch": 'W/"1"'},
            },
        ],
    }
    text, expr = _refused(server, "POST", "/fhir", 400, body=bundle)
    assert "names each resource once" in text
    assert expr == ["Bundle.entry[1].request"]


def test_a_bad_patient_in_a_transaction_is_located(server: LiveServer) -> None:
    bad = patient()
    bad["identifier"][0]["value"] = "12345678901"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            {"resource": bad, "request": {"method": "POST", "url": "Patient"}},
        ],
    }
    _, expr = _refused(server, "POST", "/fhir", 400, body=bundle)
    assert expr[0].startswith("Bundle.entry[1].resource.identifier[0]")


@pytest.mark.parametrize(
    "header",
    [
        '{"resourceType":"Provenance","reason":["x"]}',
        '{"resourceType":"Provenance","reason":{"text":"x"}}',
        '{"resourceType":"Provenance","reason":[{"coding":"abc"}]}',
        '{"resourceType":"Patient"}',
        "not json",
    ],
)
def test_malformed_x_provenance(server: LiveServer, listed: dict[str, Any], header: str) -> None:
    entry = dict(listed["entry"], status="on-hold")
    text, _ = _refused(
        server,
        "PUT",
        f"/fhir/MedicationStatement/{entry['id']}",
        400,
        body=entry,
        headers={"If-Match": 'W/"1"', "X-Provenance": header},
    )
    assert "X-Provenance" in text or "Provenance.reason" in text or "coding" in text


@pytest.mark.parametrize(
    "params",
    [
        [{"name": "reason", "valueString": "Innlagt"}, {"name": "foo", "valueString": "x"}],
        [{"name": "reason", "valueCode": "innlagt"}],
    ],
)
def test_list_operations_check_every_parameter(
    server: LiveServer, listed: dict[str, Any], params: list[dict[str, Any]]
) -> None:
    _refused(
        server,
        "POST",
        f"/fhir/List/{listed['list']}/$pause",
        400,
        body={"resourceType": "Parameters", "parameter": params},
    )


def test_a_period_that_ends_before_it_starts(server: LiveServer, listed: dict[str, Any]) -> None:
    body = statement(f"Patient/{listed['pid']}", *DRUGS[1])
    body["effectivePeriod"] = {"start": "2025-03-01", "end": "2025-02-01"}
    _, expr = _refused(server, "POST", "/fhir/MedicationStatement", 400, body=body)
    assert expr == ["MedicationStatement.effectivePeriod.end"]


def test_list_search_by_two_keys(server: LiveServer, listed: dict[str, Any]) -> None:
    _refused(server, "GET", f"/fhir/List?_id={listed['list']}&patient=someone-else", 400)


def test_a_patient_cannot_probe_whether_someone_has_a_list(
    server: LiveServer, listed: dict[str, Any]
) -> None:
    with server.client() as gp:
        someone = gp.get(f"/fhir/Patient/{listed['pid']}").json()["identifier"][0]["value"]
    nobody = new_fnr()
    with server.client("patient", new_fnr()) as me:
        for fnr in (someone, nobody):
            r = me.get(
                "/fhir/List", params={"patient.identifier": f"{FNR}|{fnr}", "_include": "List:item"}
            )
            assert r.status_code == 403, (fnr, r.text)


def test_values_coerced_by_the_model_are_refused(
    server: LiveServer, listed: dict[str, Any]
) -> None:
    body = prescription(f"Patient/{listed['pid']}", *DRUGS[1])
    body["dispenseRequest"] = {"numberOfRepeatsAllowed": "3"}
    body["substitution"] = {"allowedBoolean": "false"}
    text, expr = _refused(server, "POST", "/fhir/MedicationRequest", 400, body=body)
    assert "not valid FHIR JSON as sent" in text
    assert expr == ["MedicationRequest.dispenseRequest.numberOfRepeatsAllowed"]


@pytest.mark.parametrize("host", ['x","injected":"1', "evil.example/phish?", ""])
def test_a_strange_host_header_never_reaches_a_response(
    server: LiveServer, listed: dict[str, Any], host: str
) -> None:
    import http.client

    port = int(server.base.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("GET", f"/fhir/List?patient={listed['pid']}&_include=List:item", skip_host=True)
    conn.putheader("Host", host)
    conn.putheader("Authorization", f"Bearer {server.token('gp')}")
    conn.putheader("X-PLL-Access-Basis", "HPBEHANDLINGSRELASJON")
    conn.endheaders()
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    assert response.status == 200
    assert "injected" not in body
    assert "evil.example" not in body
    import json

    urls = [e["fullUrl"] for e in json.loads(body)["entry"]]
    assert all(u.startswith(f"http://127.0.0.1:{port}/fhir/") for u in urls)


@pytest.mark.parametrize("depth", [101, 1025, 1100, 100_000])
def test_json_nested_too_deeply_is_refused(server: LiveServer, depth: int) -> None:
    """orjson refuses past 1,024 levels, and the standard library's message-only reparse
    raised RecursionError (a 500); every recursive walk after parsing would too."""
    deep = b"[" * depth + b"]" * depth
    text, _ = _refused(server, "POST", "/fhir/Patient", 400, content=deep)
    assert "more than 100 levels deep" in text
    nested = b'{"resourceType":"Patient","extension":' * depth + b"[]" + b"}" * depth
    text, _ = _refused(server, "POST", "/fhir/Patient", 400, content=nested)
    assert "more than 100 levels deep" in text


def _resource_in(place: str, resource: Any, pid: str) -> tuple[str, str, dict[str, Any]]:
    """A body that carries ``resource`` nested where FHIR allows a resource."""
    if place == "contained":
        body = patient()
        body["contained"] = [resource]
        return "/fhir/Patient", "Patient.contained[0]", body
    if place == "bundle":
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"resource": resource, "request": {"method": "POST", "url": "Patient"}}],
        }
        return "/fhir", "Bundle.entry[0].resource", bundle
    parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "patient", "resource": resource}],
    }
    return (
        f"/fhir/Patient/{pid}/$multidose-register",
        "Parameters.parameter[0].resource",
        parameters,
    )


@pytest.mark.parametrize("place", ["contained", "bundle", "parameters"])
@pytest.mark.parametrize(
    ("resource", "problem"),
    [
        ({"resourceType": "Foo"}, "'Foo' is not a FHIR R4 resource type"),
        ({"resourceType": 1}, "1 is not a FHIR R4 resource type"),
        ({"resourceType": "Resource"}, "'Resource' is not a FHIR R4 resource type"),
        ({"resourceType": "HumanName"}, "'HumanName' is not a FHIR R4 resource type"),
    ],
)
def test_a_nested_resource_of_no_known_type_is_refused(
    server: LiveServer, listed: dict[str, Any], place: str, resource: Any, problem: str
) -> None:
    """The model library raised KeyError or TypeError for these (a 500)."""
    url, where, body = _resource_in(place, resource, listed["pid"])
    text, expr = _refused(server, "POST", url, 400, body=body)
    assert problem in text
    assert expr == [f"{where}.resourceType"]
