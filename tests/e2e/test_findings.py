"""Findings, overrides and the relay baton in a real browser (issue 16): an override reason
typed on the findings page is visible in the history and on the entry; two doctors change
the same entry and the loser sees both values side by side and redoes the change on the
new version after looking at it."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.e2e.conftest import Screen, login, open_patient
from tests.e2e.scenes import METFORMIN, SIMVASTATIN, entry_row, patient_with_medicines

REASON = "Kortvarig kur, simvastatin pauses i kuren"


def test_an_override_reason_is_visible_in_the_history_and_on_the_entry(
    server: LiveServer, screens, catalogue: None
) -> None:
    scene = patient_with_medicines(server, SIMVASTATIN)
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    gp.page.get_by_role("link", name="Nytt legemiddel").click()
    gp.page.locator("#q").fill("Klaritromycin")
    gp.page.get_by_role("button", name="Søk").click()
    gp.page.get_by_role("radio", name=re.compile("^Klaritromycin Fjordpharma")).first.check()
    gp.page.locator("#dose-MORN").fill("1")
    gp.page.get_by_role("button", name="Lagre").click()
    expect(gp.page.get_by_role("heading", name="Beslutningsstøtten fant noe")).to_be_visible()
    gp.page.locator("#override-reason").fill(REASON)
    gp.page.get_by_role("button", name="Lagre likevel").click()

    # after saving: the interaction is a severe notice, apart from the green success one
    expect(gp.page.locator(".notice.error").first).to_contain_text("Interaksjon")
    expect(gp.page.locator(".notice:not(.error)").first).to_contain_text("er lagt til")
    expect(entry_row(gp, "Klaritromycin")).to_contain_text(f"Overstyrt: {REASON} (Interaksjon")
    expect(entry_row(gp, "Simvastatin")).to_contain_text(f"Overstyrt: {REASON}")
    gp.page.screenshot(path="/tmp/findings-list.png", full_page=True)

    gp.page.get_by_role("link", name="Historikk").click()
    newest = gp.page.locator("table").last.locator("tbody tr").first
    expect(newest).to_contain_text(f"Overstyrt: {REASON} (Interaksjon Simvastatin")
    expect(gp.page.locator("ul.difference")).to_contain_text("Overstyrt i versjon")
    gp.page.screenshot(path="/tmp/findings-history.png", full_page=True)


def test_two_doctors_change_one_entry_and_the_second_sees_both_values(
    server: LiveServer, screens
) -> None:
    scene = patient_with_medicines(server, METFORMIN, SIMVASTATIN)
    gp: Screen = screens("gp")
    hospital: Screen = screens("hospital-doctor")
    for screen, persona in ((gp, "gp"), (hospital, "hospital-doctor")):
        login(screen, persona)
        open_patient(screen, scene.fnr)
        entry_row(screen, "Metformin").get_by_role("link", name=re.compile("Endre dose")).click()

    hospital.page.locator("#dose-MORN").fill("")
    hospital.page.locator("#dose-EVE").fill("3")
    hospital.page.get_by_role("button", name="Lagre ny dose").click()
    expect(hospital.page.locator(".notice").first).to_contain_text("Dosen er endret")

    gp.page.locator("#dose-MORN").fill("2")
    gp.page.get_by_role("button", name="Lagre ny dose").click()
    expect(
        gp.page.get_by_role(
            "heading", name=re.compile("Metformin tab 500 mg er endret av en annen")
        )
    ).to_be_visible()
    row = gp.page.locator("table.conflict tbody tr", has_text="Dosering")
    expect(row.locator("td.theirs")).to_have_text("3 tabletter kveld")
    expect(row.locator("td.mine")).to_have_text("2 tabletter morgen")
    expect(gp.page.locator("main")).to_contain_text("Ola Sykehuslege")
    gp.page.screenshot(path="/tmp/findings-conflict.png", full_page=True)

    gp.page.get_by_role("link", name="Gjør min endring på den nye versjonen").click()
    expect(gp.page.locator("#dose-MORN")).to_have_value("2")
    expect(gp.page.locator("#baton-note")).to_contain_text(
        "Stafettpinnen holdes av Ola Sykehuslege"
    )
    expect(gp.page.locator("#reopened-note")).to_be_visible()
    gp.page.screenshot(path="/tmp/findings-reopened.png", full_page=True)
    gp.page.get_by_role("button", name="Lagre ny dose").click()
    expect(entry_row(gp, "Metformin")).to_contain_text("2 tabletter morgen")
    expect(gp.page.locator("#baton")).to_contain_text("Kari Fastlege")
