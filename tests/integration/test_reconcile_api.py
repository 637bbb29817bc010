"""Reconciliation (samstemming) over real HTTP on both databases: ``List/$compare`` against
a discharge list, the patient's own list and the dispensing history, then ``$reconcile``
taking the accepted differences and confirming the list as one change (DESIGN §3 rules 1, 2,
4, 8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from pll.fhir.validate import validate
from pll.store.schema import audit_event, outbox
from tests.conftest import LiveServer, snapshot
from tests.integration.builders import (
    ATC,
    DRUGS,
    FNR,
    dose,
    new_fnr,
    new_list,
    ok,
    outcome_text,
    patient,
    prescription,
    statement,
)

CONFIRMED = "http://pll.invalid/fhir/StructureDefinition/pll-confirmed"
METFORMIN, ATORVASTATIN, AMLODIPIN, SERTRALIN, LEVAXIN = DRUGS


def params(*parameters: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Parameters"}
    if parameters:
        body["parameter"] = list(parameters)
    return body


def source(code: str, resource: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"name": "source", "valueCode": code}]
    if resource is not None:
        out.append({"name": "resource", "resource": resource})
    return out


def accept(*ids: str) -> list[dict[str, Any]]:
    return [{"name": "accept", "valueString": i} for i in ids]


def line(pid: str, drug: tuple[str, str], amount: float = 1, *when: str, status: str = "active"):
    """A medicine of a source list, as another system writes it."""
    res = statement(f"Patient/{pid}", *drug, amount, *when)
    res["status"] = status
    return res


def bundle(*resources: dict[str, Any], kind: str = "collection") -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "Bundle", "type": kind}
    if resources:
        out["entry"] = [{"resource": r} for r in resources]
    return out


def contained_list(pid: str, *resources: dict[str, Any]) -> dict[str, Any]:
    contained = [{**r, "id": f"m{i}"} for i, r in enumerate(resources)]
    return {
        "resourceType": "List",
        "status": "current",
        "mode": "snapshot",
        "title": "Pasientens egen oversikt",
        "subject": {"reference": f"Patient/{pid}"},
        "contained": contained,
        "entry": [{"item": {"reference": f"#m{i}"}} for i in range(len(resources))],
    }


def differences(answer: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in answer["parameter"]:
        if p["name"] == "difference":
            out.append(
                {
                    q["name"]: next(v for k, v in q.items() if k.startswith("value"))
                    for q in p["part"]
                }
            )
    return out


def by_drug(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["drug"]["text"]: d for d in found}


def version_of(client: httpx.Client, list_id: str) -> int:
    return int(ok(client.get(f"/fhir/List/{list_id}"))["meta"]["versionId"])


def compared(client: httpx.Client, list_id: str, *parameters: dict[str, Any]) -> dict[str, Any]:
    r = client.post(f"/fhir/List/{list_id}/$compare", json=params(*parameters))
    answer = ok(r)
    validate(answer, "Parameters")
    assert r.headers["X-PLL-List-Version"] == str(answer["parameter"][1]["valueInteger"])
    return answer


def reconcile(
    client: httpx.Client,
    list_id: str,
    version: int | None,
    *parameters: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    headers = dict(headers or {})
    if version is not None:
        headers["If-Match"] = f'W/"{version}"'
    return client.post(
        f"/fhir/List/{list_id}/$reconcile", json=params(*parameters), headers=headers
    )


def entries(client: httpx.Client, pid: str) -> dict[str, dict[str, Any]]:
    """The patient's entries by drug name."""
    found = ok(client.get("/fhir/MedicationStatement", params={"patient": pid, "_count": 100}))
    return {
        e["resource"]["medicationCodeableConcept"]["text"]: e["resource"]
        for e in found.get("entry", [])
    }


def events(server: LiveServer) -> int:
    with server.db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one())


def new_patient(gp: httpx.Client) -> tuple[str, str, dict[str, dict[str, Any]]]:
    """A patient whose list has Metformin, Atorvastatin and Amlodipin, one tablet each
    morning."""
    pid = ok(gp.post("/fhir/Patient", json=patient()), 201)["id"]
    list_id = new_list(gp, pid)["id"]
    for drug in (METFORMIN, ATORVASTATIN, AMLODIPIN):
        ok(gp.post("/fhir/MedicationStatement", json=statement(f"Patient/{pid}", *drug)), 201)
    return pid, list_id, entries(gp, pid)


def discharge(pid: str) -> dict[str, Any]:
    """The hospital's list: Metformin doubled, Atorvastatin stopped, Sertralin started,
    Amlodipin left out."""
    stopped = line(pid, ATORVASTATIN, status="stopped")
    stopped["statusReason"] = [{"text": "Muskelsmerter"}]
    return bundle(line(pid, METFORMIN, 2, "MORN"), stopped, line(pid, SERTRALIN))


# -- the three sources -------------------------------------------------------------------------


def test_a_discharge_list_is_compared_and_the_accepted_differences_are_taken(
    server: LiveServer,
) -> None:
    with server.client("gp") as gp:
        pid, list_id, before = new_patient(gp)
        start = version_of(gp, list_id)
        untouched = snapshot(server.db, audit=False)
        answer = compared(gp, list_id, *source("discharge", discharge(pid)))
        assert snapshot(server.db, audit=False) == untouched  # comparing is a read
        found = by_drug(differences(answer))
        assert {name: d["kind"] for name, d in found.items()} == {
            METFORMIN[0]: "dosage-differs",
            ATORVASTATIN[0]: "status-differs",
            SERTRALIN[0]: "missing-on-list",
            AMLODIPIN[0]: "not-in-source",
        }
        assert found[SERTRALIN[0]]["text"] == f"{SERTRALIN[0]} står i epikrisen, men ikke på listen"
        metformin = found[METFORMIN[0]]
        assert metformin["entry"]["reference"] == (
            f"MedicationStatement/{before[METFORMIN[0]]['id']}/_history/1"
        )
        assert (metformin["listDosage"], metformin["sourceDosage"]) == (
            "1 tablett morgen",
            "2 tabletter morgen",
        )
        assert {"system": ATC, "code": METFORMIN[1]} in metformin["drug"]["coding"]
        sent = events(server)

        taken = [metformin["id"], found[SERTRALIN[0]]["id"]]
        r = reconcile(
            gp,
            list_id,
            start,
            *source("discharge", discharge(pid)),
            *accept(*taken),
            {"name": "reason", "valueString": "Samstemt etter utskrivning"},
        )
        lst = ok(r)
        assert lst["resourceType"] == "List"
        assert r.headers["X-PLL-List-Version"] == str(start + 1) == lst["meta"]["versionId"]
        assert r.headers["ETag"] == f'W/"{start + 1}"'
        confirmed = next(e for e in lst["extension"] if e["url"] == CONFIRMED)
        assert {"url": "version", "valueInteger": start + 1} in confirmed["extension"]
        assert events(server) == sent + 1  # one change, one event

        after = entries(gp, pid)
        assert after[METFORMIN[0]]["dosage"][0]["text"] == "2 tabletter morgen"
        assert after[SERTRALIN[0]]["status"] == "active"
        # what was not accepted is as it was
        for name in (ATORVASTATIN[0], AMLODIPIN[0]):
            assert after[name] == before[name]
        provenance = ok(gp.get(f"/fhir/Provenance/{list_id}-{start + 1}"))
        assert provenance["reason"] == [{"text": "Samstemt etter utskrivning"}]
        assert "confirm" in provenance["activity"]["text"]

        # the rest still stands, under the same ids
        left = differences(compared(gp, list_id, *source("discharge", discharge(pid))))
        assert {d["id"] for d in left} == {
            found[ATORVASTATIN[0]]["id"],
            found[AMLODIPIN[0]]["id"],
        }


def test_the_patients_own_list_as_a_list_with_contained_statements(server: LiveServer) -> None:
    with server.client("gp") as gp:
        pid, list_id, before = new_patient(gp)
        start = version_of(gp, list_id)
        reported = contained_list(
            pid,
            line(pid, METFORMIN, 1, "MORN"),
            line(pid, ATORVASTATIN, 1, "MORN", status="on-hold"),
        )
        found = by_drug(differences(compared(gp, list_id, *source("patient", reported))))
        assert {n: d["kind"] for n, d in found.items()} == {
            ATORVASTATIN[0]: "status-differs",
            AMLODIPIN[0]: "not-in-source",
        }
        assert found[AMLODIPIN[0]]["text"] == (
            f"{AMLODIPIN[0]} står på listen, men pasienten oppgir ikke at hen bruker den"
        )
        ok(
            reconcile(
                gp,
                list_id,
                start,
                *source("patient", reported),
                *accept(found[ATORVASTATIN[0]]["id"], found[AMLODIPIN[0]]["id"]),
            )
        )
        after = entries(gp, pid)
        assert after[ATORVASTATIN[0]]["status"] == "on-hold"
        assert after[AMLODIPIN[0]]["status"] == "stopped"
        assert after[AMLODIPIN[0]]["statusReason"] == [
            {"text": "Samstemming: pasienten oppgir at den ikke brukes"}
        ]
        assert after[METFORMIN[0]] == before[METFORMIN[0]]
        provenance = ok(gp.get(f"/fhir/Provenance/{list_id}-{start + 1}"))
        assert provenance["reason"] == [
            {"text": "Samstemt mot pasientens egen liste: 2 av 2 avvik tatt inn"}
        ]


def _dispense(rx_id: str, pid: str, drug: tuple[str, str], days_ago: int) -> dict[str, Any]:
    when = datetime.now(UTC) - timedelta(days=days_ago)
    return {
        "resourceType": "MedicationDispense",
        "status": "completed",
        "subject": {"reference": f"Patient/{pid}"},
        "authorizingPrescription": [{"reference": f"MedicationRequest/{rx_id}"}],
        "medicationCodeableConcept": {
            "coding": [{"system": ATC, "code": drug[1]}],
            "text": f"{drug[0]} 100 stk",
        },
        "quantity": {"value": 100, "unit": "tablett"},
        "whenHandedOver": when.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def test_the_dispensing_history(server: LiveServer) -> None:
    with server.client("gp") as gp, server.client("pharmacist") as pharmacy:
        pid = ok(gp.post("/fhir/Patient", json=patient()), 201)["id"]
        list_id = new_list(gp, pid)["id"]
        metformin_rx = ok(
            gp.post("/fhir/MedicationRequest", json=prescription(f"Patient/{pid}", *METFORMIN)), 201
        )
        linked = statement(
            f"Patient/{pid}", *METFORMIN, based_on=[f"MedicationRequest/{metformin_rx['id']}"]
        )
        ok(gp.post("/fhir/MedicationStatement", json=linked), 201)
        ok(
            gp.post("/fhir/MedicationStatement", json=statement(f"Patient/{pid}", *ATORVASTATIN)),
            201,
        )
        # prescribed and collected, but never put on the list
        levaxin_rx = ok(
            gp.post("/fhir/MedicationRequest", json=prescription(f"Patient/{pid}", *LEVAXIN)), 201
        )
        for rx, drug, days in ((metformin_rx, METFORMIN, 20), (levaxin_rx, LEVAXIN, 30)):
            ok(
                pharmacy.post(
                    "/fhir/MedicationDispense", json=_dispense(rx["id"], pid, drug, days)
                ),
                201,
            )

        answer = compared(gp, list_id, *source("dispensing"))
        found = differences(answer)
        assert [(d["kind"], d["drug"]["text"]) for d in found] == [
            ("missing-on-list", LEVAXIN[0]),  # what matters most comes first
            ("not-in-source", ATORVASTATIN[0]),
        ]
        assert found[0]["text"].startswith(f"{LEVAXIN[0]} er utlevert ")
        assert found[0]["sourceItem"].startswith("MedicationDispense/")
        assert found[1]["text"] == (
            f"{ATORVASTATIN[0]} står på listen, men er ikke utlevert siste 12 måneder"
        )
        # a pharmacist reads the list, so may compare it
        ok(pharmacy.post(f"/fhir/List/{list_id}/$compare", json=params(*source("dispensing"))))

        start = int(answer["parameter"][1]["valueInteger"])
        ok(reconcile(gp, list_id, start, *source("dispensing"), *accept(found[0]["id"])))
        levaxin = entries(gp, pid)[LEVAXIN[0]]
        assert levaxin["status"] == "active"
        assert levaxin["basedOn"] == [{"reference": f"MedicationRequest/{levaxin_rx['id']}"}]
        assert levaxin["dosage"][0]["text"] == "1 tablett morgen"
        left = differences(compared(gp, list_id, *source("dispensing")))
        assert [d["id"] for d in left] == [found[1]["id"]]


# -- confirming, and the relay baton -----------------------------------------------------------


def test_rejecting_every_difference_confirms_the_list_as_it_is(server: LiveServer) -> None:
    with server.client("gp") as gp:
        pid, list_id, before = new_patient(gp)
        start = version_of(gp, list_id)
        found = differences(compared(gp, list_id, *source("discharge", discharge(pid))))
        lst = ok(reconcile(gp, list_id, start, *source("discharge", discharge(pid))))
        assert lst["meta"]["versionId"] == str(start + 1)
        assert any(e["url"] == CONFIRMED for e in lst["extension"])
        assert entries(gp, pid) == before
        again = differences(compared(gp, list_id, *source("discharge", discharge(pid))))
        assert again == found
        provenance = ok(gp.get(f"/fhir/Provenance/{list_id}-{start + 1}"))
        assert provenance["reason"] == [{"text": "Samstemt mot epikrise: 0 av 4 avvik tatt inn"}]


def test_a_list_changed_since_the_comparison(server: LiveServer) -> None:
    with server.client("gp") as gp, server.client("hospital-doctor") as other:
        pid, list_id, before = new_patient(gp)
        start = version_of(gp, list_id)
        found = by_drug(differences(compared(gp, list_id, *source("discharge", discharge(pid)))))
        dosage = found[METFORMIN[0]]["id"]

        # without the version compared: 428
        r = reconcile(gp, list_id, None, *source("discharge", discharge(pid)), *accept(dosage))
        assert r.status_code == 428, r.text

        # another doctor changes the same entry: refused, naming who and what; nothing changes
        metformin = before[METFORMIN[0]]
        changed = {**metformin, "dosage": dose(1, "MORN", "EVE")}
        ok(
            other.put(
                f"/fhir/MedicationStatement/{metformin['id']}",
                json=changed,
                headers={"If-Match": 'W/"1"'},
            )
        )
        untouched = snapshot(server.db, audit=False)
        for accepted in ([dosage], []):
            r = reconcile(
                gp, list_id, start, *source("discharge", discharge(pid)), *accept(*accepted)
            )
            assert r.status_code == 412, r.text
            assert "Compare again" in outcome_text(r)
            assert snapshot(server.db, audit=False) == untouched
        r = reconcile(
            gp,
            list_id,
            start,
            *source("discharge", discharge(pid)),
            *accept(found[SERTRALIN[0]]["id"]),
        )
        assert r.status_code == 412, r.text
        assert f"MedicationStatement/{metformin['id']}" in outcome_text(r)
        assert "changed by Ola Sykehuslege" in outcome_text(r)
        assert "dosage: 1 tablett morgen → 1 tablett morgen og kveld" in outcome_text(r)
        assert r.json()["contained"][0]["id"] == metformin["id"]
        assert snapshot(server.db, audit=False) == untouched

        # compared again on the current version, it goes through
        now = version_of(gp, list_id)
        fresh = by_drug(differences(compared(gp, list_id, *source("discharge", discharge(pid)))))
        assert fresh[METFORMIN[0]]["id"] != dosage
        ok(
            reconcile(
                gp,
                list_id,
                now,
                *source("discharge", discharge(pid)),
                *accept(fresh[METFORMIN[0]]["id"]),
            )
        )


def test_a_change_that_the_comparison_does_not_concern_is_merged(server: LiveServer) -> None:
    with server.client("gp") as gp, server.client("hospital-doctor") as other:
        pid, list_id, before = new_patient(gp)
        start = version_of(gp, list_id)
        sent = bundle(line(pid, METFORMIN), line(pid, ATORVASTATIN), line(pid, SERTRALIN))
        found = by_drug(differences(compared(gp, list_id, *source("discharge", sent))))
        assert set(found) == {SERTRALIN[0], AMLODIPIN[0]}
        # Metformin agrees with the source before and after this change
        metformin = before[METFORMIN[0]]
        noted = {**metformin, "note": [{"text": "Tas med mat"}]}
        ok(
            other.put(
                f"/fhir/MedicationStatement/{metformin['id']}",
                json=noted,
                headers={"If-Match": 'W/"1"'},
            )
        )
        r = reconcile(
            gp, list_id, start, *source("discharge", sent), *accept(found[SERTRALIN[0]]["id"])
        )
        lst = ok(r)
        assert lst["meta"]["versionId"] == str(start + 2)
        after = entries(gp, pid)
        assert after[METFORMIN[0]]["note"] == [{"text": "Tas med mat"}]
        assert SERTRALIN[0] in after


def test_what_an_accepted_difference_brings_is_checked(server: LiveServer) -> None:
    """A medicine taken in from the source is checked like every new entry (rule 6): a CAVE
    conflict refuses the whole reconciliation until it is overridden with a reason."""
    with server.client("gp") as gp:
        pid, list_id, _ = new_patient(gp)
        cave = {
            "resourceType": "AllergyIntolerance",
            "patient": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": ATC, "code": "N06AB"}], "text": "SSRI"},
        }
        ok(gp.post("/fhir/AllergyIntolerance", json=cave), 201)
        start = version_of(gp, list_id)
        sent = discharge(pid)
        found = by_drug(differences(compared(gp, list_id, *source("discharge", sent))))
        taken = accept(found[SERTRALIN[0]]["id"])
        untouched = snapshot(server.db, audit=False)
        r = reconcile(gp, list_id, start, *source("discharge", sent), *taken)
        assert r.status_code == 422, r.text
        assert "SSRI" in outcome_text(r)
        assert snapshot(server.db, audit=False) == untouched
        codes = [
            i["details"]["coding"][0]["display"]
            for i in r.json()["issue"]
            if i["severity"] == "error" and "details" in i
        ]
        override = {
            "X-PLL-Override": "Vurdert: toleranse dokumentert under innleggelse",
            "X-PLL-Override-Findings": ",".join(codes),
        }
        r = reconcile(gp, list_id, start, *source("discharge", sent), *taken, headers=override)
        ok(r)
        assert int(r.headers["X-PLL-Findings"]) >= 1
        assert entries(gp, pid)[SERTRALIN[0]]["status"] == "active"


# -- who may, and bad input --------------------------------------------------------------------


def test_a_nurse_may_compare_but_only_a_doctor_reconciles(server: LiveServer) -> None:
    with server.client("gp") as gp, server.client("nurse") as nurse:
        pid, list_id, _ = new_patient(gp)
        start = version_of(gp, list_id)
        found = differences(compared(nurse, list_id, *source("discharge", discharge(pid))))
        assert len(found) == 4
        untouched = snapshot(server.db, audit=False)
        r = reconcile(
            nurse, list_id, start, *source("discharge", discharge(pid)), *accept(found[0]["id"])
        )
        assert r.status_code == 403, r.text
        assert "Only doctors" in outcome_text(r)
        assert snapshot(server.db, audit=False) == untouched
        with server.db.read() as conn:
            refused = (
                conn.execute(sa.select(audit_event.c.action).where(audit_event.c.outcome == "4"))
                .scalars()
                .all()
            )
        assert "reconcile" in refused


WHERE = {
    "dose must be greater than zero": (
        "Parameters.parameter[1].resource.entry[0].resource.dosage[0].doseAndRate[0]"
        ".doseQuantity.value"
    ),
    "The drug is missing": "Parameters.parameter[1].resource.entry[0].resource"
    ".medicationCodeableConcept",
    "names no resource contained": "Parameters.parameter[1].resource.entry[0].item.reference",
}


def _bad_requests(pid: str, start: int) -> list[tuple[str, dict[str, Any], int, str]]:
    """(operation, body, status, words): each must be refused and change nothing."""
    no_drug = line(pid, METFORMIN)
    del no_drug["medicationCodeableConcept"]
    by_reference = line(pid, METFORMIN)
    del by_reference["medicationCodeableConcept"]
    by_reference["medicationReference"] = {"reference": "Medication/x"}
    bad_dose = line(pid, METFORMIN)
    bad_dose["dosage"] = [
        {
            "timing": {"repeat": {"when": ["MORN"]}},
            "doseAndRate": [{"doseQuantity": {"value": -1, "unit": "tablett"}}],
        }
    ]
    someone_else = line(pid, METFORMIN)
    someone_else["subject"] = {"identifier": {"system": FNR, "value": new_fnr()}}
    request = prescription(f"Patient/{pid}", *METFORMIN)
    dangling = contained_list(pid, line(pid, METFORMIN))
    dangling["entry"][0]["item"]["reference"] = "#nowhere"
    outside = contained_list(pid, line(pid, METFORMIN))
    outside["entry"][0]["item"]["reference"] = "MedicationStatement/abc"
    empty_list = contained_list(pid)
    del empty_list["contained"], empty_list["entry"]
    unknown_element = line(pid, METFORMIN)
    unknown_element["colour"] = "blue"
    d = "discharge"
    return [
        ("$compare", params(), 400, "Say what to compare the list with"),
        (
            "$compare",
            params(*source("hospital", bundle(line(pid, METFORMIN)))),
            400,
            "Unknown source",
        ),
        (
            "$compare",
            params(*source("dispensing", bundle(line(pid, METFORMIN)))),
            400,
            "send no resource",
        ),
        ("$compare", params({"name": "source", "valueCode": d}), 400, "needs the list"),
        (
            "$compare",
            params(*source(d, patient())),
            400,
            "Expected resourceType 'Bundle' or 'List'",
        ),
        ("$compare", params(*source(d, bundle())), 400, "holds no MedicationStatement"),
        (
            "$compare",
            params(*source(d, bundle(line(pid, METFORMIN), kind="transaction"))),
            400,
            "not 'transaction'",
        ),
        ("$compare", params(*source(d, bundle(no_drug))), 400, "The drug is missing"),
        ("$compare", params(*source(d, bundle(by_reference))), 400, "medicationCodeableConcept"),
        ("$compare", params(*source(d, bundle(bad_dose))), 400, "dose must be greater than zero"),
        ("$compare", params(*source(d, bundle(request))), 400, "not as a MedicationRequest"),
        ("$compare", params(*source(d, bundle(someone_else))), 400, "another patient"),
        ("$compare", params(*source(d, bundle(unknown_element))), 400, "Unknown element"),
        ("$compare", params(*source("patient", dangling)), 400, "names no resource contained"),
        ("$compare", params(*source("patient", outside)), 400, "Contain the MedicationStatements"),
        ("$compare", params(*source("patient", empty_list)), 400, "The List is empty"),
        ("$compare", params({"name": "colour", "valueString": "blue"}), 400, "Unknown parameter"),
        (
            "$reconcile",
            params(*source(d, bundle(line(pid, METFORMIN))), *accept("nonsense")),
            400,
            "not the id of a difference",
        ),
        (
            "$reconcile",
            params(*source(d, bundle(line(pid, METFORMIN))), *accept("0123456789abcdef")),
            409,
            "0123456789abcdef",
        ),
        ("$reconcile", params(*source(d, bundle(no_drug))), 400, "The drug is missing"),
    ]


def test_bad_input_gets_a_clear_outcome_and_changes_nothing(server: LiveServer) -> None:
    with server.client("gp") as gp:
        pid, list_id, _ = new_patient(gp)
        start = version_of(gp, list_id)
        for operation, body, status, words in _bad_requests(pid, start):
            before = snapshot(server.db, audit=False)
            r = gp.post(
                f"/fhir/List/{list_id}/{operation}", json=body, headers={"If-Match": f'W/"{start}"'}
            )
            assert r.status_code == status, (words, r.text)
            assert words in outcome_text(r), (words, r.text)
            assert r.json()["issue"][0].get("expression"), (words, r.text)
            if words in WHERE:  # said where it stands in the request
                assert r.json()["issue"][0]["expression"] == [WHERE[words]], r.text
            assert snapshot(server.db, audit=False) == before, words
        r = gp.post("/fhir/List/no-such-list/$compare", json=params(*source("dispensing")))
        assert r.status_code == 404, r.text


def test_an_empty_list_with_a_reason_says_the_patient_uses_nothing(server: LiveServer) -> None:
    with server.client("gp") as gp:
        pid, list_id, _ = new_patient(gp)
        nothing = contained_list(pid)
        del nothing["contained"]
        del nothing["entry"]
        nothing["emptyReason"] = {"text": "Bruker ingen legemidler"}
        found = differences(compared(gp, list_id, *source("patient", nothing)))
        assert {d["kind"] for d in found} == {"not-in-source"}
        assert len(found) == 3


def test_a_document_bundle_from_the_hospital(server: LiveServer) -> None:
    with server.client("gp") as gp:
        pid, list_id, _ = new_patient(gp)
        fnr = ok(gp.get(f"/fhir/Patient/{pid}"))["identifier"][0]["value"]
        composition = {
            "resourceType": "Composition",
            "status": "final",
            "type": {"text": "Epikrise"},
            "subject": {"identifier": {"system": FNR, "value": fnr}},
            "date": "2026-01-10",
            "author": [{"display": "Haukeland universitetssjukehus"}],
            "title": "Epikrise",
        }
        document = bundle(
            composition,
            line(pid, METFORMIN),
            line(pid, ATORVASTATIN),
            line(pid, AMLODIPIN),
            kind="document",
        )
        document["identifier"] = {
            "system": "urn:ietf:rfc:3986",
            "value": "urn:uuid:0c3d1c9e-2a55-4a8c-9f0e-2b9a4f1d7e11",
        }
        document["timestamp"] = "2026-01-10T12:00:00Z"
        assert differences(compared(gp, list_id, *source("discharge", document))) == []


@pytest.mark.parametrize("operation", ["compare", "reconcile"])
def test_the_capability_statement_names_the_operations(server: LiveServer, operation: str) -> None:
    with server.client("gp") as gp:
        meta = ok(gp.get("/fhir/metadata"))
    lst = next(r for r in meta["rest"][0]["resource"] if r["type"] == "List")
    assert operation in {o["name"] for o in lst["operation"]}
