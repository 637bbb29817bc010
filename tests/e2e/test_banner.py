"""The patient always in view, in a real browser (issue 16): the patient banner with CAVE
on the doctor's list page and the findings page, a drug reaction registered from the page,
the emergency banner, confirming from the list page, and the error page."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.e2e.conftest import Screen, login, open_patient
from tests.e2e.scenes import METFORMIN, SIMVASTATIN, WARFARIN, patient_with_medicines
from tests.integration.builders import ATC, ok


def test_the_banner_shows_the_patient_and_cave_and_a_reaction_is_registered_from_the_page(
    server: LiveServer, screens, catalogue: None
) -> None:
    with_reaction = patient_with_medicines(server, METFORMIN, WARFARIN)
    without = patient_with_medicines(server, METFORMIN)
    with server.client("gp") as api:
        ok(
            api.post(
                "/fhir/AllergyIntolerance",
                json={
                    "resourceType": "AllergyIntolerance",
                    "patient": {"reference": f"Patient/{with_reaction.pid}"},
                    "code": {"coding": [{"system": ATC, "code": "J01FA"}], "text": "Makrolider"},
                    "criticality": "high",
                    "reaction": [{"manifestation": [{"text": "Anafylaksi"}]}],
                },
            ),
            201,
        )
    gp: Screen = screens("gp")
    login(gp, "gp")

    open_patient(gp, without.fnr)
    banner = gp.page.locator("#patient-banner")
    expect(banner).to_contain_text("Tore Testesen")
    expect(banner).to_contain_text(without.fnr)
    expect(banner).to_contain_text("Aldri bekreftet")
    expect(gp.page.locator("#cave")).to_have_text(
        re.compile(r"CAVE:\s*Ingen registrerte legemiddelreaksjoner")
    )
    gp.page.screenshot(path="/tmp/banner-list-without-cave.png", full_page=True)

    open_patient(gp, with_reaction.fnr)
    expect(gp.page.locator("#cave")).to_contain_text("Makrolider (Anafylaksi, høy kritikalitet)")
    gp.page.screenshot(path="/tmp/banner-list-with-cave.png", full_page=True)

    # the findings page: clarithromycin meets the macrolide reaction (and warfarin)
    gp.page.get_by_role("link", name="Nytt legemiddel").click()
    gp.page.locator("#q").fill("Klaritromycin")
    gp.page.get_by_role("button", name="Søk").click()
    gp.page.locator("input[name=drug]").first.check()
    gp.page.locator("#dose-MORN").fill("1")
    gp.page.get_by_role("button", name="Lagre").click()
    expect(gp.page.get_by_role("heading", name="Beslutningsstøtten fant noe")).to_be_visible()
    expect(gp.page.locator("#patient-banner")).to_contain_text("Tore Testesen")
    expect(gp.page.locator("#cave")).to_contain_text("Makrolider")
    gp.page.screenshot(path="/tmp/banner-findings.png", full_page=True)

    # a reaction registered from the page, the drug found in the catalogue
    gp.go(f"/lege/pasient/{with_reaction.pid}")
    gp.page.get_by_role("link", name="Legemiddelreaksjoner").click()
    gp.page.locator("#q").fill("Simvastatin")
    gp.page.get_by_role("button", name="Søk").click()
    # the substance once and its class, never one row per package (issue 16)
    expect(gp.page.locator("#reaction-search li")).to_have_count(2)
    gp.page.screenshot(path="/tmp/walkdemo-reaction-search.png", full_page=True)
    gp.page.locator("#reaction-search a").first.click()
    expect(gp.page.locator("#atc")).to_have_value(SIMVASTATIN[1])
    gp.page.locator("#reaction").fill("Muskelsmerter")
    gp.page.locator("#severity").select_option("moderate")
    gp.page.screenshot(path="/tmp/banner-reaction-form.png", full_page=True)
    gp.page.get_by_role("button", name="Registrer reaksjonen").click()
    expect(gp.page.locator(".notice").first).to_contain_text("er registrert")
    expect(gp.page.locator("#cave")).to_contain_text("Muskelsmerter, moderat")
    expect(gp.page.locator("#reaction-table")).to_contain_text("Simvastatin")
    gp.page.screenshot(path="/tmp/banner-reaction-registered.png", full_page=True)

    # typed wrong: the message beside the field, the input kept
    gp.page.locator("#what").fill("Penicillin")
    gp.page.locator("#atc").fill("pen")
    gp.expect_status(400)
    gp.page.get_by_role("button", name="Registrer reaksjonen").click()
    expect(gp.page.locator("#atc-error")).to_contain_text("er ikke en ATC-kode")
    expect(gp.page.locator("#what")).to_have_value("Penicillin")
    gp.page.screenshot(path="/tmp/banner-reaction-error.png", full_page=True)


def test_emergency_access_and_confirming_from_the_list_page(server: LiveServer, screens) -> None:
    scene = patient_with_medicines(server, METFORMIN, SIMVASTATIN)
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr, basis="HPAKUTT")
    emergency = gp.page.locator("#emergency-banner")
    expect(emergency).to_contain_text("nødrett")
    expect(emergency).to_contain_text("vises for pasienten")
    gp.page.screenshot(path="/tmp/banner-emergency.png", full_page=True)
    gp.page.get_by_role("link", name="Historikk").click()
    expect(gp.page.locator("#emergency-banner")).to_be_visible()
    gp.go("/lege")
    expect(gp.page.locator("#emergency-banner")).to_contain_text(scene.fnr)

    # confirming: the list page shows the entries and what changed beside the button
    open_patient(gp, scene.fnr)
    expect(gp.page.locator("#emergency-banner")).to_have_count(0)
    gp.count_reset()
    expect(gp.page.locator("table.entries")).to_contain_text("Metformin")
    expect(gp.page.locator("table.entries")).to_contain_text("Simvastatin")
    expect(gp.page.locator("#confirm-changes")).to_contain_text("Lagt til: Metformin")
    expect(gp.page.locator("#confirm-changes")).to_contain_text("Listen er aldri bekreftet")
    gp.page.screenshot(path="/tmp/ui2-confirm-first.png", full_page=True)
    gp.click(gp.page.get_by_role("button", name="Bekreft versjon 5"))
    expect(gp.page.locator("#confirmed")).to_contain_text("Kari Fastlege")
    expect(gp.page.locator("#banner-list")).to_contain_text("Sist bekreftet")
    assert gp.clicks == 1


def test_an_error_on_a_page_about_a_patient_still_shows_who_it_is(
    server: LiveServer, screens
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    gp.expect_status(400)
    gp.page.goto(gp.page.url + "/historikk?fra=abc")
    expect(gp.page.get_by_role("heading", name="Kunne ikke fullføre")).to_be_visible()
    expect(gp.page.locator("#patient-banner")).to_contain_text("Tore Testesen")
    expect(gp.page.locator("#patient-banner")).to_contain_text(scene.fnr)
    gp.page.screenshot(path="/tmp/ui2-error-banner.png", full_page=True)
