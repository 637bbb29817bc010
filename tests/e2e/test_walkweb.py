"""The pages a GP walking the web UI found wanting (issue 16), in a real browser: the
findings page names what is saved, shows a warning as a warning, leads back to the form
with what was typed and asks for a missing override reason beside its field."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.e2e.conftest import Screen, login, open_patient
from tests.e2e.scenes import SIMVASTATIN, WARFARIN, patient_with_medicines
from tests.integration.builders import ok


def test_the_findings_page_names_the_change_goes_back_to_it_and_asks_for_the_reason(
    server: LiveServer, screens, catalogue: None
) -> None:
    scene = patient_with_medicines(server, SIMVASTATIN, WARFARIN)
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    gp.page.get_by_role("link", name="Nytt legemiddel").click()
    gp.page.locator("#q").fill("Klaritromycin")
    gp.page.get_by_role("button", name="Søk").click()
    gp.page.get_by_role("radio", name=re.compile("^Klaritromycin Fjordpharma")).first.check()
    gp.page.locator("#dose-MORN").fill("1")
    gp.page.locator("#dose-EVE").fill("1")
    gp.page.get_by_role("button", name="Lagre").click()

    page = gp.page
    expect(page.get_by_role("heading", name="Beslutningsstøtten fant noe")).to_be_visible()
    expect(page.locator(".saving")).to_contain_text("Klaritromycin Fjordpharma")
    expect(page.locator(".saving")).to_contain_text("1 tablett morgen og kveld")
    warning = page.locator(".finding.warning").first
    expect(warning).to_contain_text("Warfarin")
    # a warning has its colour bar, like a severe finding
    bar = warning.evaluate("e => getComputedStyle(e).borderLeftStyle")
    assert bar == "solid"
    page.screenshot(path="/tmp/walkweb-findings.png", full_page=True)

    # saved without the reason: the message beside the field, nothing saved
    gp.expect_status(400)
    page.get_by_role("button", name="Lagre likevel").click()
    expect(page.locator("#override-reason-error")).to_contain_text("Skriv hvorfor du overstyrer")
    page.screenshot(path="/tmp/walkweb-findings-reason.png", full_page=True)

    # "Endre": the prescribing form again, the drug chosen and the dose as typed
    page.get_by_role("link", name="Endre").click()
    expect(page.get_by_role("heading", name="Nytt legemiddel")).to_be_visible()
    expect(page.locator("#dose-MORN")).to_have_value("1")
    expect(page.locator("#dose-EVE")).to_have_value("1")
    chosen = page.get_by_role("radio", name=re.compile("^Klaritromycin Fjordpharma")).first
    expect(chosen).to_be_checked()
    page.screenshot(path="/tmp/walkweb-findings-edit.png", full_page=True)


def test_a_dose_change_on_a_drug_discontinued_meanwhile_is_offered_as_a_new_prescription(
    server: LiveServer, screens, catalogue: None
) -> None:
    scene = patient_with_medicines(server, SIMVASTATIN)
    entry_id = scene.entries[SIMVASTATIN[2]]
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    page = gp.page
    page.goto(f"{server.base}/lege/pasient/{scene.pid}/legemiddel/{entry_id}/dose")
    page.locator("#dose-MORN").fill("2")
    _discontinue(server, entry_id)  # the hospital discontinues it meanwhile
    page.get_by_role("button", name=re.compile("^Lagre")).click()
    expect(page.get_by_role("heading", name=re.compile("er seponert av en annen"))).to_be_visible()
    expect(page.locator("main")).to_contain_text("Grunn: Muskelsmerter")
    expect(page.get_by_role("link", name="Gjør min endring på den nye versjonen")).to_have_count(0)
    page.screenshot(path="/tmp/walkweb-conflict-discontinued.png", full_page=True)
    page.get_by_role("link", name="Forskriv på nytt").click()
    expect(page.get_by_role("heading", name="Nytt legemiddel")).to_be_visible()
    expect(page.locator("#q")).to_have_value(SIMVASTATIN[2])
    expect(page.locator("#dose-MORN")).to_have_value("2")
    page.screenshot(path="/tmp/walkweb-represcribe.png", full_page=True)


def _discontinue(server: LiveServer, entry_id: str) -> None:
    with server.client("hospital-doctor") as hospital:
        current = ok(hospital.get(f"/fhir/MedicationStatement/{entry_id}"))
        current["status"] = "stopped"
        current["statusReason"] = [{"text": "Muskelsmerter"}]
        ok(
            hospital.put(
                f"/fhir/MedicationStatement/{entry_id}",
                json=current,
                headers={"If-Match": f'W/"{current["meta"]["versionId"]}"'},
            )
        )
