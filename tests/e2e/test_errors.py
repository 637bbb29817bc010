"""A refused form keeps its input, in a real browser (issue 16): the message in Norwegian
beside the field, the value typed still there, the focus on the field; the browser's own
English checks ("Please fill out this field") never speak first."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.e2e.conftest import Screen, login, open_patient
from tests.e2e.scenes import METFORMIN, SIMVASTATIN, patient_with_medicines

SHOTS = "/tmp/errors-{}.png"


def test_a_refused_form_keeps_what_was_typed_with_the_message_beside_the_field(
    server: LiveServer, screens
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    gp: Screen = screens("gp")
    login(gp, "gp")

    # a mistyped fødselsnummer: the number stays, the reason is beside it, in Norwegian
    wrong = scene.fnr[:10] + str((int(scene.fnr[10]) + 1) % 10)
    gp.expect_status(400)
    open_patient(gp, wrong)
    field = gp.page.locator("#fnr")
    expect(field).to_have_value(wrong)
    expect(field).to_be_focused()
    expect(gp.page.locator("#fnr-error")).to_have_text(
        "Feil: Fødselsnummeret er feilskrevet: andre kontrollsiffer (siffer 11) stemmer ikke."
    )
    expect(gp.page.locator(".error-summary")).to_contain_text("Skjemaet ble ikke lagret")
    gp.page.screenshot(path=SHOTS.format("fnr"), full_page=True)

    # an empty field: the server answers (the browser does not stop it in English)
    field.fill("")
    gp.expect_status(400)
    gp.page.get_by_role("button", name="Åpne pasientens legemiddelliste").click()
    expect(gp.page.locator("#fnr-error")).to_contain_text("Skriv pasientens fødselsnummer")

    # "Endre dose" with an amount that is no amount: both amounts stay as typed
    open_patient(gp, scene.fnr)
    gp.page.get_by_role("link", name=re.compile("Endre dose")).first.click()
    gp.page.locator("#dose-MORN").fill("2")
    gp.page.locator("#dose-EVE").fill("2,5,0")
    gp.expect_status(400)
    gp.page.get_by_role("button", name="Lagre ny dose").click()
    expect(gp.page.locator("#dose-EVE")).to_have_value("2,5,0")
    expect(gp.page.locator("#dose-MORN")).to_have_value("2")
    expect(gp.page.locator("#dose-EVE")).to_be_focused()
    expect(gp.page.locator("#dose-EVE-error")).to_contain_text("Kveld: «2,5,0» er ikke en mengde")
    gp.page.screenshot(path=SHOTS.format("dose"), full_page=True)
    # corrected, it is saved
    gp.page.locator("#dose-EVE").fill("1")
    gp.page.get_by_role("button", name="Lagre ny dose").click()
    expect(gp.page.locator(".notice").first).to_contain_text("Dosen er endret")


def test_reconciliation_says_taking_in_a_missing_medicine_discontinues_it_and_asks_why(
    server: LiveServer, screens
) -> None:
    scene = patient_with_medicines(server, METFORMIN, SIMVASTATIN)
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    gp.go(f"/lege/pasient/{scene.pid}/samstemming")
    gp.page.locator("input[name=origin][value=patient]").check()
    gp.page.locator("#patient-list").fill("Metformin tab 500 mg; 1 tablett morgen")
    gp.page.get_by_role("button", name="Sammenlign").click()
    row = gp.page.locator("tr", has=gp.page.get_by_role("rowheader", name=SIMVASTATIN[2]))
    expect(row).to_contain_text("Ikke i kilden")
    row.get_by_label("Seponer — ikke i kilden").check()
    gp.expect_status(400)
    gp.page.get_by_role("button", name="Bekreft listen").click()
    row = gp.page.locator("tr", has=gp.page.get_by_role("rowheader", name=SIMVASTATIN[2]))
    expect(row.get_by_label("Seponer — ikke i kilden")).to_be_checked()
    expect(row.locator(".field-error")).to_contain_text("Velg eller skriv grunnen")
    gp.page.screenshot(path=SHOTS.format("reconcile"), full_page=True)
    row.get_by_label("Grunn til seponering").select_option("Manglende effekt")
    gp.page.get_by_role("button", name="Bekreft listen").click()
    expect(gp.page.locator(".notice").first).to_contain_text("Listen er samstemt og bekreftet")
