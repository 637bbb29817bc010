"""Dose and form checked on every change (issue 16, DESIGN §3 rule 6), at every entry point:
the REST API, SFM Basis ``$sendMedication`` and the web UI's form posts, over real HTTP, on
both databases. The catalogue is ``tests/fixtures/fest/dose.xml`` (a cream, methotrexate
and a tablet)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from pll.catalog.importer import import_fest
from tests.conftest import LiveServer, snapshot
from tests.e2e.scenes import patient_with_medicines
from tests.integration.builders import new_fnr, new_patient_with_list, ok, outcome_text
from tests.integration.test_sfm import _prescribe_new, get_medication, send, send_from
from tests.integration.test_web import csrf, logged_in, opened

DOSE_FEST = Path(__file__).resolve().parents[1] / "fixtures" / "fest" / "dose.xml"
FEST = "http://ehelse.no/fhir/CodeSystem/FEST"
ATC = "http://www.whocc.no/atc"
LYA = ("510001", "D07AC01", "Lya Krem 0,1 %")
MTX = ("510002", "L04AX03", "Metotreksat Fjordpharma Tab 2,5 mg")
PARACET = ("510003", "N02BE01", "Paracet Fjordpharma Tab 500 mg")
#: the package's FEST id, as the prescribing page's drug picker sends it
LYA_ID = "ID_D0510001-0000-4000-8000-000000000002"
WHY = "Vurdert av lege: riktig dose for denne pasienten"


def when(amount: float, *times: str, unit: str = "tablett") -> dict[str, Any]:
    return {
        "sequence": 1,
        "timing": {"repeat": {"when": list(times)}},
        "doseAndRate": [{"doseQuantity": {"value": amount, "unit": unit}}],
    }


WEEKLY = {
    "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}},
    "doseAndRate": [{"doseQuantity": {"value": 4, "unit": "tablett"}}],
}
AS_NEEDED_4_MAX_2 = {
    "asNeededBoolean": True,
    "doseAndRate": [{"doseQuantity": {"value": 4, "unit": "tablett"}}],
    "maxDosePerPeriod": {"numerator": {"value": 2}, "denominator": {"value": 1, "unit": "døgn"}},
}


def concept(drug: tuple[str, str, str]) -> dict[str, Any]:
    varenr, atc, name = drug
    return {
        "coding": [{"system": FEST, "code": varenr}, {"system": ATC, "code": atc}],
        "text": name,
    }


def entry(pid: str, drug: tuple[str, str, str], *dosage: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": concept(drug),
        "subject": {"reference": f"Patient/{pid}"},
        "dosage": list(dosage),
    }


def order(pid: str, drug: tuple[str, str, str], *dosage: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": concept(drug),
        "subject": {"reference": f"Patient/{pid}"},
        "dosageInstruction": list(dosage),
    }


def override(r: httpx.Response, reason: str = WHY) -> dict[str, str]:
    """The override of exactly the blocking findings a refusal showed."""
    codes = [
        i["details"]["coding"][0]["display"]
        for i in r.json()["issue"]
        if i["severity"] == "error" and "details" in i
    ]
    assert codes, r.text
    return {"X-PLL-Override": reason, "X-PLL-Override-Findings": ",".join(codes)}


def finding_kinds(r: httpx.Response) -> set[str]:
    return {
        i["details"]["coding"][0]["code"]
        for i in r.json()["issue"]
        if i["severity"] == "error" and "details" in i
    }


def kept_overrides(gp: httpx.Client, list_id: str) -> list[str]:
    provenance = ok(gp.get("/fhir/Provenance", params={"target": f"List/{list_id}"}))
    return [
        x["valueString"] for e in provenance["entry"] for x in e["resource"].get("extension", [])
    ]


@pytest.fixture
def pll(server: LiveServer) -> dict[str, str]:
    with DOSE_FEST.open("rb") as extract:
        import_fest(server.db, extract, DOSE_FEST.name, now=datetime(2026, 11, 22, tzinfo=UTC))
    with server.client("gp") as gp:
        pid, list_id = new_patient_with_list(gp)
    return {"pid": pid, "list": list_id}


# -- REST API -------------------------------------------------------------------------------


def test_a_maximum_below_one_dose_is_refused_where_it_is(
    server: LiveServer, pll: dict[str, str]
) -> None:
    pid = pll["pid"]
    before = snapshot(server.db, audit=False)
    with server.client("gp") as gp:
        r = gp.post("/fhir/MedicationStatement", json=entry(pid, PARACET, AS_NEEDED_4_MAX_2))
        rx = gp.post("/fhir/MedicationRequest", json=order(pid, PARACET, AS_NEEDED_4_MAX_2))
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["MedicationStatement.dosage[0].maxDosePerPeriod"]
    assert "Én dose (4 tabletter) er mer enn maksimum 2 tabletter per døgn" in outcome_text(r)
    assert rx.status_code == 400
    assert rx.json()["issue"][0]["expression"] == [
        "MedicationRequest.dosageInstruction[0].maxDosePerPeriod"
    ]
    assert snapshot(server.db, audit=False) == before


def test_a_unit_that_does_not_fit_the_form_is_refused_even_with_an_override(
    server: LiveServer, pll: dict[str, str]
) -> None:
    pid = pll["pid"]
    said = "Lya Krem 0,1 % er krem, salve eller gel (Krem) og doseres i påføring, ikke i tabletter."
    forced = {"X-PLL-Override": WHY, "X-PLL-Override-Findings": "x"}
    with server.client("gp") as gp:
        before = snapshot(server.db, audit=False)
        r = gp.post(
            "/fhir/MedicationStatement", json=entry(pid, LYA, when(3, "MORN")), headers=forced
        )
        rx = gp.post("/fhir/MedicationRequest", json=order(pid, LYA, when(3, "MORN")))
        assert snapshot(server.db, audit=False) == before
        # in its own unit it is taken; re-dosing it in tablets is refused again
        fine = ok(
            gp.post(
                "/fhir/MedicationStatement",
                json=entry(pid, LYA, when(1, "MORN", "EVE", unit="påføring")),
            ),
            201,
        )
        fine["dosage"] = [when(3, "MORN")]
        redosed = gp.put(
            f"/fhir/MedicationStatement/{fine['id']}",
            json=fine,
            headers={"If-Match": f'W/"{fine["meta"]["versionId"]}"'},
        )
    assert r.status_code == 422
    assert outcome_text(r) == said
    assert r.json()["issue"][0]["expression"] == [
        "MedicationStatement.dosage[0].doseAndRate[0].doseQuantity.unit"
    ]
    assert rx.status_code == 422
    assert rx.json()["issue"][0]["expression"] == [
        "MedicationRequest.dosageInstruction[0].doseAndRate[0].doseQuantity.unit"
    ]
    assert redosed.status_code == 422
    assert outcome_text(redosed) == said


def test_an_implausible_amount_needs_an_override_which_is_kept(
    server: LiveServer, pll: dict[str, str]
) -> None:
    pid, body = pll["pid"], entry(pll["pid"], PARACET, when(99999, "MORN"), when(1, "EVE"))
    with server.client("gp") as gp:
        before = snapshot(server.db, audit=False)
        r = gp.post("/fhir/MedicationStatement", json=body)
        assert r.status_code == 422
        assert finding_kinds(r) == {"implausible-dose"}
        assert "100000 tabletter per døgn; mer enn 20 tabletter per døgn er usannsynlig" in (
            outcome_text(r)
        )
        assert "(5000 ganger grensen)" in outcome_text(r)
        assert snapshot(server.db, audit=False) == before
        saved = ok(gp.post("/fhir/MedicationStatement", json=body, headers=override(r)), 201)
        kept = kept_overrides(gp, pll["list"])
        # pausing an entry whose strange dose was accepted is not blocked again
        saved["status"] = "on-hold"
        paused = gp.put(
            f"/fhir/MedicationStatement/{saved['id']}",
            json=saved,
            headers={"If-Match": f'W/"{saved["meta"]["versionId"]}"'},
        )
        rx = gp.post("/fhir/MedicationRequest", json=order(pid, PARACET, when(30, "MORN")))
    assert saved["dosage"][0]["text"] == "99999 tabletter morgen og 1 tablett kveld"
    assert any(WHY in k and "implausible-dose" in k for k in kept)
    assert paused.status_code == 200, paused.text
    assert rx.status_code == 422
    assert finding_kinds(rx) == {"implausible-dose"}


def test_re_dosing_an_entry_to_an_implausible_amount_is_stopped(server: LiveServer) -> None:
    with DOSE_FEST.open("rb") as extract:
        import_fest(server.db, extract, DOSE_FEST.name, now=datetime(2026, 11, 22, tzinfo=UTC))
    scene = patient_with_medicines(server, PARACET)
    entry_id = scene.entries[PARACET[2]]
    with server.client("gp") as gp:
        current = ok(gp.get(f"/fhir/MedicationStatement/{entry_id}"))
        current["dosage"] = [when(99999, "MORN")]
        headers = {"If-Match": f'W/"{current["meta"]["versionId"]}"'}
        before = snapshot(server.db, audit=False)
        r = gp.put(f"/fhir/MedicationStatement/{entry_id}", json=current, headers=headers)
        assert r.status_code == 422
        assert snapshot(server.db, audit=False) == before
        ok(
            gp.put(
                f"/fhir/MedicationStatement/{entry_id}",
                json=current,
                headers={**headers, **override(r)},
            )
        )


def test_methotrexate_dosed_daily_needs_an_override_and_weekly_does_not(
    server: LiveServer, pll: dict[str, str]
) -> None:
    pid = pll["pid"]
    with server.client("gp") as gp:
        daily = gp.post("/fhir/MedicationStatement", json=entry(pid, MTX, when(4, "MORN")))
        rx = gp.post("/fhir/MedicationRequest", json=order(pid, MTX, when(4, "MORN")))
        weekly = gp.post(
            "/fhir/MedicationStatement",
            json=entry(pid, MTX, WEEKLY),
            headers={"Prefer": "return=OperationOutcome"},
        )
    assert daily.status_code == 422
    assert finding_kinds(daily) == {"weekly-drug-dosed-often"}
    assert "Metotreksat Fjordpharma Tab 2,5 mg (metotreksat) gis normalt én gang i uken" in (
        outcome_text(daily)
    )
    assert rx.status_code == 422
    assert weekly.status_code == 201, weekly.text
    assert "weekly-drug-dosed-often" not in weekly.text


# -- SFM Basis $sendMedication ---------------------------------------------------------------


def _with_dosage_text(bundle: dict[str, Any], resept: str, text: str) -> None:
    st = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"].get("resourceType") == "MedicationStatement"
        and any(i.get("value") == resept for i in e["resource"].get("identifier", []))
    )
    st["dosage"] = [{"text": text}]
    for amendment in st["extension"]:
        for sub in amendment["extension"]:
            if sub["url"] == "dssn":
                sub["valueString"] = text


def test_a_send_with_an_implausible_amount_needs_an_override(
    server: LiveServer, pll: dict[str, str]
) -> None:
    fnr = new_fnr()
    with server.client("gp") as gp:
        new_patient_with_list(gp, fnr)
        read = ok(get_medication(gp, fnr))

        def prescribe(bundle: dict[str, Any]) -> None:
            resept = _prescribe_new(bundle, PARACET)
            _with_dosage_text(bundle, resept, "99999 tabletter morgen")

        body = send_from(read, prescribe)
        before = snapshot(server.db, audit=False)
        r = send(gp, body)
        assert r.status_code == 422, r.text
        assert "implausible-dose" in finding_kinds(r)
        assert "99999 tabletter per døgn" in outcome_text(r)
        assert snapshot(server.db, audit=False) == before
        accepted = send(gp, body, headers=override(r))
    assert accepted.status_code == 200, accepted.text


# -- the web UI ------------------------------------------------------------------------------


def test_the_web_refuses_a_cream_in_tablets_and_an_implausible_dose_without_a_reason(
    server: LiveServer, pll: dict[str, str]
) -> None:
    scene = patient_with_medicines(server, PARACET)
    entry_id = scene.entries[PARACET[2]]
    with logged_in(server, "gp") as web:
        page = opened(web, scene.fnr)
        token = csrf(web, page)
        with server.client("gp") as gp:
            version = ok(gp.get(f"/fhir/MedicationStatement/{entry_id}"))["meta"]["versionId"]
        before = snapshot(server.db, audit=False)
        cream = web.post(
            f"{page}/ny",
            data={
                "csrf": token,
                "q": "Lya",  # the search the drug was chosen from, as the page sends it
                "drug": LYA_ID,
                "dose-mode": "fixed",
                "dose-unit": "tablett",
                "dose-MORN": "3",
                "treatment": "1",
            },
        )
        # the editor offers a cream only its own unit: the form comes back, refused beside
        # the unit, with what was typed
        assert cream.status_code == 400, cream.text
        assert '<p class="field-error" id="dose-unit-error">' in cream.text
        assert "doseres i påføring, ikke i «tablett»" in cream.text
        contradiction = web.post(
            f"{page}/legemiddel/{entry_id}/dose",
            data={"csrf": token, "version": version, "dose-mode": "prn", "dose-prn": "4"}
            | {"dose-max": "2", "dose-unit": "tablett"},
        )
        assert contradiction.status_code == 400, contradiction.text
        assert "Én dose (4 tabletter) er mer enn maksimum 2 tabletter per døgn" in (
            contradiction.text
        )
        dose = {"csrf": token, "version": version, "dose-mode": "fixed", "dose-MORN": "99999"}
        dose |= {"dose-unit": "tablett"}
        asked = web.post(f"{page}/legemiddel/{entry_id}/dose", data=dose)
        assert asked.status_code == 200, asked.text
        assert "Beslutningsstøtten fant noe" in asked.text
        assert "99999 tabletter per døgn" in asked.text
        assert snapshot(server.db, audit=False) == before
        saved = web.post(
            f"{page}/legemiddel/{entry_id}/dose",
            data={
                **dose,
                "override-reason": WHY,
                "override-code": f"dose-{PARACET[0]}-99999-tablett",
            },
        )
        assert saved.status_code == 303, saved.text
    with server.client("gp") as gp:
        now = ok(gp.get(f"/fhir/MedicationStatement/{entry_id}"))
        assert now["dosage"][0]["text"] == "99999 tabletter morgen"
        assert any(WHY in k for k in kept_overrides(gp, scene.list_id))


def test_a_change_answers_for_its_own_doses_only(server: LiveServer, pll: dict[str, str]) -> None:
    """A medicine added beside one whose strange dose was accepted earlier is not blocked
    by that dose."""
    pid = pll["pid"]
    with server.client("gp") as gp:
        body = entry(pid, PARACET, when(30, "MORN"))
        ok(
            gp.post(
                "/fhir/MedicationStatement",
                json=body,
                headers=override(gp.post("/fhir/MedicationStatement", json=body)),
            ),
            201,
        )
        r = gp.post("/fhir/MedicationStatement", json=entry(pid, MTX, WEEKLY))
    assert r.status_code == 201, r.text
