"""The doctor registers and ends e-multidose and marks entries for packing from the list page
(issue 18), over real HTTP on both databases: the same use cases as ``$multidose-register``,
``$multidose-end`` and a change of the entry, refusals in Norwegian with what was typed kept,
and nothing changed by a refusal."""

from __future__ import annotations

from typing import Any

import httpx

from pll.services.stats import Statistics
from pll.stats import organisations
from tests.conftest import Clock, LiveServer, snapshot
from tests.integration.builders import (
    DRUGS,
    EFFERVESCENT,
    fest_coded,
    multidose_catalogue,
    new_fnr,
    new_patient_with_list,
    ok,
    prescribed,
    prescription,
    statement,
)
from tests.integration.test_web import csrf, logged_in, opened
from tests.integration.test_web_errors import beside, no_english, text_of

BERGEN = "985563756"


def _patient(server: LiveServer) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """A patient with a list: Metformin tablets on a prescription in the morning (packable)
    and an effervescent paracetamol on a prescription (not packable); fnr, pid, entries."""
    multidose_catalogue(server.db)
    fnr = new_fnr()
    with server.client("gp") as api:
        pid, _ = new_patient_with_list(api, fnr)
        tablet = prescribed(api, pid, *DRUGS[0])
        code, atc, name = EFFERVESCENT
        ref = f"Patient/{pid}"
        rx = ok(
            api.post(
                "/fhir/MedicationRequest", json=fest_coded(prescription(ref, name, atc), code)
            ),
            201,
        )
        body = fest_coded(
            statement(ref, name, atc, based_on=[f"MedicationRequest/{rx['id']}"]), code
        )
        body["dosage"][0]["doseAndRate"][0]["doseQuantity"]["unit"] = "brusetablett"
        fizzy = ok(api.post("/fhir/MedicationStatement", json=body), 201)
    return fnr, pid, tablet, fizzy


def _state(server: LiveServer, pid: str) -> dict[str, Any]:
    with server.client("gp") as api:
        answer = ok(api.get(f"/fhir/Patient/{pid}/$multidose"))
    return {p["name"]: p for p in answer["parameter"]}


def _entry(server: LiveServer, entry_id: str) -> dict[str, Any]:
    with server.client("gp") as api:
        return ok(api.get(f"/fhir/MedicationStatement/{entry_id}"))


def _summary(r: httpx.Response) -> str:
    assert "Skjemaet ble ikke lagret" in r.text, r.text[:2000]
    return text_of(r.text.split('class="error-summary"', 1)[1].split("</section>", 1)[0])


def test_the_doctor_registers_by_organisation_number_and_ends_it(server: LiveServer) -> None:
    fnr, pid, _, _ = _patient(server)
    with logged_in(server, "gp") as gp:
        page = opened(gp, fnr)
        token = csrf(gp, page)
        before = snapshot(server.db, audit=False)
        typed = {
            "csrf": token,
            "apotek": "annet",
            "orgnr": "985563757",
            "apoteknavn": "Mitt apotek",
        }
        r = gp.post(f"{page}/multidose", data=typed)
        assert r.status_code == 400, r.text[:500]
        assert "er ikke et gyldig organisasjonsnummer" in beside(r.text, "orgnr")
        assert 'value="985563757"' in r.text
        assert 'value="Mitt apotek"' in r.text
        assert '<details id="e-multidose" class="list-multidose" open>' in r.text
        no_english(r.text)
        r = gp.post(f"{page}/multidose", data={**typed, "orgnr": BERGEN, "apoteknavn": ""})
        assert beside(r.text, "apoteknavn") == "Skriv apotekets navn."
        assert snapshot(server.db, audit=False) == before

        r = gp.post(f"{page}/multidose", data={**typed, "orgnr": BERGEN})
        assert r.status_code == 303, r.text[:500]
        shown = gp.get(page).text
        assert "E-multidose er registrert" in shown
        assert "Pasienten får multidose fra" in shown
        assert "Mitt apotek" in shown
    state = _state(server, pid)
    assert state["registered"]["valueBoolean"] is True
    assert state["pharmacy"]["valueReference"]["identifier"]["value"] == BERGEN

    # only the responsible doctor ends it: another doctor is refused in Norwegian
    with logged_in(server, "hospital-doctor") as other:
        page = opened(other, fnr)
        before = snapshot(server.db, audit=False)
        r = other.post(f"{page}/multidose/avslutt", data={"csrf": csrf(other, page)})
        assert r.status_code == 403, r.text[:500]
        assert "Bare pasientens multidoseansvarlige lege" in text_of(r.text)
        no_english(r.text)
        assert snapshot(server.db, audit=False) == before
    with logged_in(server, "gp") as gp:
        page = opened(gp, fnr)
        data = {"csrf": csrf(gp, page), "grunn": "Flyttet til sykehjem"}
        r = gp.post(f"{page}/multidose/avslutt", data=data)
        assert r.status_code == 303, r.text[:500]
        assert "E-multidose er avsluttet" in gp.get(page).text
    assert _state(server, pid)["registered"]["valueBoolean"] is False


def test_the_doctor_chooses_the_pharmacy_from_the_register(
    server: LiveServer, clock: Clock
) -> None:
    Statistics(server.db, clock).register(organisations.demo())
    fnr, pid, _, _ = _patient(server)
    with logged_in(server, "gp") as gp:
        page = opened(gp, fnr)
        shown = gp.get(page).text
        assert (
            f'<option value="{BERGEN}">Apotek 1 Bergen multidose (orgnr {BERGEN})</option>' in shown
        )
        r = gp.post(f"{page}/multidose", data={"csrf": csrf(gp, page), "apotek": BERGEN})
        assert r.status_code == 303, r.text[:500]
    state = _state(server, pid)
    assert state["pharmacy"]["valueReference"]["display"].startswith("Apotek 1 Bergen multidose")


def test_the_doctor_marks_what_can_be_packed_and_is_told_why_not(server: LiveServer) -> None:
    fnr, _, tablet, fizzy = _patient(server)
    with logged_in(server, "gp") as gp:
        page = opened(gp, fnr)
        ok_ = gp.post(
            f"{page}/multidose",
            data={
                "csrf": csrf(gp, page),
                "apotek": "annet",
                "orgnr": BERGEN,
                "apoteknavn": "Apotek 1 Bergen multidose",
            },
        )
        assert ok_.status_code == 303
        shown = gp.get(page).text
        assert f'aria-label="Pakk {DRUGS[0][0]} i multidose"' in shown

        def mark(entry: dict[str, Any], choice: str) -> httpx.Response:
            version = _entry(server, entry["id"])["meta"]["versionId"]
            data = {"csrf": csrf(gp, page), "version": version, "pakk": choice}
            return gp.post(f"{page}/legemiddel/{entry['id']}/multidose", data=data)

        before = snapshot(server.db, audit=False)
        r = mark(fizzy, "ja")
        assert r.status_code == 400, r.text[:500]
        said = _summary(r)
        assert "Kan ikke pakkes i multidose: legemiddelformen (Brusetablett)" in said
        no_english(r.text)
        assert snapshot(server.db, audit=False) == before

        r = mark(tablet, "ja")
        assert r.status_code == 303, r.text[:500]
        shown = gp.get(page).text
        assert "Legemidlet er merket for pakking i multidose." in shown
        assert f'aria-label="Ta {DRUGS[0][0]} ut av multidose"' in shown
        packed = _entry(server, tablet["id"])
        assert packed["extension"][0]["extension"] == [{"url": "mddispensed", "valueBoolean": True}]

        r = mark(tablet, "nei")
        assert r.status_code == 303, r.text[:500]
    unpacked = _entry(server, tablet["id"])
    assert unpacked["extension"][0]["extension"] == [{"url": "mddispensed", "valueBoolean": False}]


def test_the_dose_page_marks_for_multidose_with_a_fixed_time_dose(server: LiveServer) -> None:
    """The dose page offers "Pakkes i multidose" while the patient has e-multidose: a free-text
    dose with the box ticked is refused beside the box, with the text and the tick kept; a
    dose at fixed times is saved and marked in one change."""
    fnr, pid, tablet, _ = _patient(server)
    with server.client("gp") as api:
        ok(api.post(f"/fhir/Patient/{pid}/$multidose-register", json=_register_params()))
    with logged_in(server, "gp") as gp:
        page = opened(gp, fnr)
        form = f"{page}/legemiddel/{tablet['id']}/dose"
        shown = gp.get(form).text
        assert 'name="multidose-vist" value="1"' in shown
        assert 'id="multidose" name="multidose" value="ja">' in shown  # not marked yet
        before = snapshot(server.db, audit=False)
        typed = {
            "csrf": csrf(gp, form),
            "version": "1",
            "dose-mode": "text",
            "dose-text": "1 tablett når det passer",
            "multidose-vist": "1",
            "multidose": "ja",
        }
        r = gp.post(form, data=typed)
        assert r.status_code == 400, r.text[:500]
        said = beside(r.text, "multidose")
        assert said.startswith("Kan ikke pakkes i multidose: doseringen er fritekst")
        assert "1 tablett når det passer" in r.text
        assert 'value="ja" checked' in r.text
        no_english(r.text)
        assert snapshot(server.db, audit=False) == before

        fixed = {
            "csrf": csrf(gp, form),
            "version": "1",
            "dose-mode": "fixed",
            "dose-unit": "tablett",
            "dose-MORN": "1",
            "dose-EVE": "1",
            "multidose-vist": "1",
            "multidose": "ja",
        }
        r = gp.post(form, data=fixed)
        assert r.status_code == 303, r.text[:500]
    saved = _entry(server, tablet["id"])
    assert saved["meta"]["versionId"] == "2"  # one change: the dose and the mark
    assert saved["dosage"][0]["timing"]["repeat"]["when"] == ["MORN", "EVE"]
    assert saved["extension"][0]["extension"] == [{"url": "mddispensed", "valueBoolean": True}]


def _register_params() -> dict[str, Any]:
    reference = {
        "identifier": {"system": "urn:oid:2.16.578.1.12.4.1.4.101", "value": BERGEN},
        "display": "Apotek 1 Bergen multidose",
    }
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "pharmacy", "valueReference": reference}],
    }
