"""Prescriptions say when they expire, over the FHIR API and SFM ``$getMedication``, on both
databases. Dates are relative to the test's own today (the server's clock, moved by the
test), never to a fixed calendar day."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from pll.catalog.importer import import_fest
from pll.domain.prescriptions import add_duration, local_day
from pll.services.decision_support import FEST
from tests.conftest import Clock, LiveServer, snapshot
from tests.integration.builders import (
    DRUGS,
    FEST_SMALL,
    etag,
    new_fnr,
    new_patient_with_list,
    ok,
    outcome_text,
    prescription,
    statement,
)
from tests.integration.test_sfm import amendment_of, bundle_of, ext, get_medication, sub

EXPIRED = "http://pll.invalid/fhir/StructureDefinition/prescription-expired"
VALIDITY = "MedicationRequest.dispenseRequest.validityPeriod.end"


@pytest.fixture
def gp(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client("gp") as client:
        yield client


def _today(clock: Clock) -> date:
    return local_day(clock())


def _prescribe(gp: httpx.Client, pid: str, **dispense: Any) -> dict[str, Any]:
    body = prescription(f"Patient/{pid}", *DRUGS[0])
    if dispense:
        body["dispenseRequest"] = dispense
    return ok(gp.post("/fhir/MedicationRequest", json=body), 201)


def _on_list(gp: httpx.Client, pid: str) -> dict[str, Any]:
    """A prescription and the entry that holds it; returns the prescription."""
    rx = _prescribe(gp, pid)
    based_on = [f"MedicationRequest/{rx['id']}"]
    entry = statement(f"Patient/{pid}", *DRUGS[0], based_on=based_on)
    ok(gp.post("/fhir/MedicationStatement", json=entry), 201)
    return rx


def _expired_marker(resource: dict[str, Any]) -> list[Any]:
    return [e.get("valueDate") for e in resource.get("extension", []) if e["url"] == EXPIRED]


def test_a_new_prescription_is_valid_for_one_year_from_today(
    gp: httpx.Client, clock: Clock
) -> None:
    pid, _ = new_patient_with_list(gp)
    today = _today(clock)
    rx = _prescribe(gp, pid)
    assert rx["authoredOn"] == today.isoformat()
    assert rx["dispenseRequest"]["validityPeriod"] == {
        "start": today.isoformat(),
        "end": add_duration(today, "P1Y").isoformat(),
    }
    shorter = (today + timedelta(days=30)).isoformat()
    given = _prescribe(gp, pid, validityPeriod={"end": shorter}, numberOfRepeatsAllowed=3)
    assert given["dispenseRequest"]["validityPeriod"]["end"] == shorter
    assert given["dispenseRequest"]["numberOfRepeatsAllowed"] == 3
    assert _expired_marker(ok(gp.get(f"/fhir/MedicationRequest/{rx['id']}"))) == []


@pytest.mark.parametrize(
    ("dispense", "where", "words"),
    [
        ({"validityPeriod": {"end": "9999-12-31"}}, VALIDITY, "at the latest"),
        (
            {"numberOfRepeatsAllowed": 5000},
            "MedicationRequest.dispenseRequest.numberOfRepeatsAllowed",
            "from 0 to 99",
        ),
        (
            {"quantity": {"value": 0, "unit": "pakning"}},
            "MedicationRequest.dispenseRequest.quantity.value",
            "above 0",
        ),
    ],
)
def test_an_absurd_prescription_is_refused_and_changes_nothing(
    server: LiveServer, gp: httpx.Client, dispense: dict[str, Any], where: str, words: str
) -> None:
    pid, _ = new_patient_with_list(gp)
    before = snapshot(server.db, audit=False)
    body = prescription(f"Patient/{pid}", *DRUGS[0])
    body["dispenseRequest"] = dispense
    r = gp.post("/fhir/MedicationRequest", json=body)
    assert r.status_code == 400, r.text
    assert words in outcome_text(r)
    assert [i["expression"] for i in r.json()["issue"]] == [[where]]
    assert snapshot(server.db, audit=False) == before


def test_past_its_end_a_prescription_reads_as_expired_everywhere(
    gp: httpx.Client, clock: Clock
) -> None:
    pid, _ = new_patient_with_list(gp)
    rx = _on_list(gp, pid)
    end = rx["dispenseRequest"]["validityPeriod"]["end"]
    document = ok(gp.get("/fhir/List", params={"patient": pid, "_include": "List:item"}))
    assert not any(_expired_marker(e["resource"]) for e in document["entry"])

    clock.advance(days=367)
    read = ok(gp.get(f"/fhir/MedicationRequest/{rx['id']}"))
    assert _expired_marker(read) == [end]
    # the status stays as FHIR defines it, and the version is the same: nothing was written
    assert (read["status"], read["meta"]["versionId"]) == ("active", "1")
    found = ok(gp.get("/fhir/MedicationRequest", params={"patient": pid}))
    assert [_expired_marker(e["resource"]) for e in found["entry"]] == [[end]]
    document = ok(gp.get("/fhir/List", params={"patient": pid, "_include": "List:item"}))
    shown = [e["resource"] for e in document["entry"]]
    assert [_expired_marker(r) for r in shown if r["resourceType"] == "MedicationRequest"] == [
        [end]
    ]
    # the version as recorded is served as it was
    assert _expired_marker(ok(gp.get(f"/fhir/MedicationRequest/{rx['id']}/_history/1"))) == []


def test_an_expired_prescription_is_renewed_with_a_new_one_never_extended(
    server: LiveServer, gp: httpx.Client, clock: Clock
) -> None:
    pid, _ = new_patient_with_list(gp)
    rx = _on_list(gp, pid)
    clock.advance(days=400)
    read = gp.get(f"/fhir/MedicationRequest/{rx['id']}")
    expired = ok(read)
    today = _today(clock)
    before = snapshot(server.db, audit=False)
    # a later end written into the expired prescription is an edit, refused
    longer = dict(
        expired,
        dispenseRequest={"validityPeriod": {"start": today.isoformat(), "end": "2099-01-01"}},
    )
    r = gp.put(f"/fhir/MedicationRequest/{rx['id']}", json=longer, headers={"If-Match": etag(read)})
    assert r.status_code == 400, r.text
    assert "cannot be edited" in outcome_text(r)
    # a renewal that copies the old issue date would be expired already: refused
    copied = prescription(f"Patient/{pid}", *DRUGS[0], prior=f"MedicationRequest/{rx['id']}")
    copied["authoredOn"] = rx["authoredOn"]
    r = gp.post("/fhir/MedicationRequest", json=copied)
    assert r.status_code == 400, r.text
    assert "expired already" in outcome_text(r)
    assert snapshot(server.db, audit=False) == before
    # the renewal is a new prescription, valid a year from today
    renewal = prescription(f"Patient/{pid}", *DRUGS[0], prior=f"MedicationRequest/{rx['id']}")
    fresh = ok(gp.post("/fhir/MedicationRequest", json=renewal), 201)
    assert (
        fresh["dispenseRequest"]["validityPeriod"]["end"] == add_duration(today, "P1Y").isoformat()
    )
    assert _expired_marker(fresh) == []
    old = ok(gp.get(f"/fhir/MedicationRequest/{rx['id']}"))
    assert old["status"] == "completed"


def test_a_recall_sent_back_with_the_expired_marker_is_accepted(
    gp: httpx.Client, clock: Clock
) -> None:
    pid, _ = new_patient_with_list(gp)
    rx = _on_list(gp, pid)
    clock.advance(days=400)
    read = gp.get(f"/fhir/MedicationRequest/{rx['id']}")
    recall = dict(ok(read), status="stopped", statusReason={"text": "Behandlingen er avsluttet"})
    assert _expired_marker(recall)
    r = gp.put(f"/fhir/MedicationRequest/{rx['id']}", json=recall, headers={"If-Match": etag(read)})
    assert ok(r)["status"] == "stopped"
    history = ok(gp.get(f"/fhir/MedicationRequest/{rx['id']}/_history/2"))
    assert _expired_marker(history) == []


def test_get_medication_shows_the_expiry(
    server: LiveServer, gp: httpx.Client, clock: Clock
) -> None:
    fnr = new_fnr()
    pid, _ = new_patient_with_list(gp, fnr)
    rx = _on_list(gp, pid)
    end = rx["dispenseRequest"]["validityPeriod"]["end"]

    def statement_of_rx() -> dict[str, Any]:
        bundle = bundle_of(ok(get_medication(gp, fnr)))
        return next(
            e["resource"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "MedicationStatement"
        )

    valid = statement_of_rx()
    assert sub(amendment_of(valid), "expirationdate") == end
    assert ext(valid, EXPIRED) == []
    assert sub(sub(amendment_of(valid), "rfstatus"), "status")["coding"][0]["code"] == "E"

    clock.advance(days=367)
    expired = statement_of_rx()
    assert sub(amendment_of(expired), "expirationdate") == end
    assert [e["valueDate"] for e in ext(expired, EXPIRED)] == [end]
    # no longer dispensable (Ekspederbar)
    assert sub(amendment_of(expired), "rfstatus") is None


def test_a_drug_with_a_shorter_fest_validity_gets_it(
    server: LiveServer, gp: httpx.Client, clock: Clock
) -> None:
    """FEST's Reseptgyldighet decides a new prescription's validity: ten days for this
    antibiotic (a package takes its brand's), one year for a drug FEST gives none."""
    xml = FEST_SMALL.read_text(encoding="utf-8").replace(
        "<Varenavn>Klaritromycin Fjordpharma</Varenavn>",
        "<Varenavn>Klaritromycin Fjordpharma</Varenavn>"
        "<Reseptgyldighet><Varighet>P10D</Varighet></Reseptgyldighet>",
    )
    import_fest(server.db, io.BytesIO(xml.encode()), "small-p10d.xml", now=clock())
    pid, _ = new_patient_with_list(gp)
    today = _today(clock)
    body = prescription(f"Patient/{pid}", "Klaritromycin Fjordpharma Tab 500 mg", "J01FA09")
    body["medicationCodeableConcept"]["coding"].append({"system": FEST, "code": "173456"})
    rx = ok(gp.post("/fhir/MedicationRequest", json=body), 201)
    assert (
        rx["dispenseRequest"]["validityPeriod"]["end"] == (today + timedelta(days=10)).isoformat()
    )
    # a longer end than FEST allows is refused
    body["dispenseRequest"] = {"validityPeriod": {"end": (today + timedelta(days=30)).isoformat()}}
    r = gp.post("/fhir/MedicationRequest", json=body)
    assert r.status_code in (400, 422), r.text
    assert _prescribe(gp, pid)["dispenseRequest"]["validityPeriod"]["end"] == (
        add_duration(today, "P1Y").isoformat()
    )
