"""The pages a GP walking the web UI found wanting (issue 16), in a real browser: the
findings page names what is saved, shows a warning as a warning, leads back to the form
with what was typed and asks for a missing override reason beside its field."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.e2e.conftest import Screen, login, open_patient
from tests.e2e.scenes import SIMVASTATIN, WARFARIN, patient_with_medicines


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
