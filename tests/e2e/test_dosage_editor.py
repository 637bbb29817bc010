"""The dosage editor in a real browser (issue 16): a weekly dose prescribed through the editor
with the live preview before saving and the list after; only the chosen mode's fields show;
interval and tapering doses; free text that drops nothing. Clicks are counted for changing a
dose to weekly."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.e2e.conftest import Screen, login, open_patient
from tests.e2e.scenes import METFORMIN, entry_row, patient_with_medicines

WEEKLY = "2 tabletter 1 gang i uken (mandag)"


def test_a_weekly_dose_is_prescribed_through_the_editor(
    server: LiveServer, screens, catalogue: None
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    gp.page.get_by_role("link", name="Nytt legemiddel").click()
    gp.page.locator("#q").fill("Warfarin Nordfarma")
    gp.page.get_by_role("button", name="Søk").click()
    gp.page.get_by_role("radio", name=re.compile("^Warfarin Nordfarma")).first.check()
    # a tablet: the usual unit is chosen for the doctor
    expect(gp.page.locator("#dose-unit")).to_have_value("tablett")
    expect(gp.page.locator("#dose-MORN")).to_be_visible()
    expect(gp.page.locator("#dose-week")).to_be_hidden()

    gp.page.get_by_label("Ukentlig").check()
    expect(gp.page.locator("#dose-MORN")).to_be_hidden()
    expect(gp.page.locator("#dose-text")).to_be_hidden()
    gp.page.locator("#dose-week").fill("2")
    gp.page.get_by_label("mandag").check()
    expect(gp.page.locator("#dose-preview")).to_have_text(WEEKLY)
    gp.shot("editor-weekly")
    gp.page.get_by_role("button", name="Lagre").click()
    expect(gp.page.locator(".notice").first).to_contain_text("er lagt til")
    expect(entry_row(gp, "Warfarin")).to_contain_text(WEEKLY)
    gp.shot("editor-weekly-on-the-list")


def test_each_mode_shows_only_its_fields_and_free_text_drops_nothing(
    server: LiveServer, screens
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)

    # changing "1 tablett morgen" to weekly, counted: the old dose is replaced, not refused
    gp.count_reset()
    gp.click(entry_row(gp, "Metformin").get_by_role("link", name=re.compile("Endre dose")))
    expect(gp.page.locator("#dose-MORN")).to_have_value("1")
    gp.click(gp.page.get_by_label("Ukentlig"))
    gp.click("#dose-week")
    gp.type("#dose-week", "2")
    gp.click(gp.page.get_by_label("mandag"))
    expect(gp.page.locator("#dose-preview")).to_have_text(WEEKLY)
    gp.click(gp.page.get_by_role("button", name="Lagre ny dose"))
    expect(entry_row(gp, "Metformin")).to_contain_text(WEEKLY)
    assert (gp.clicks, gp.keys) == (5, 1), "change a dose to weekly"

    # the weekly dose opens again as weekly
    entry_row(gp, "Metformin").get_by_role("link", name=re.compile("Endre dose")).click()
    expect(gp.page.get_by_label("Ukentlig")).to_be_checked()
    expect(gp.page.locator("#dose-week")).to_have_value("2")
    expect(gp.page.get_by_label("mandag")).to_be_checked()

    # interval
    gp.page.get_by_label("Med intervall").check()
    expect(gp.page.locator("#dose-week")).to_be_hidden()
    gp.page.locator("#dose-int").fill("1")
    expect(gp.page.locator("#dose-preview")).to_have_text("1 tablett annenhver dag")
    gp.page.locator("#dose-int-every").fill("3")
    gp.page.locator("#dose-int-MORN").check()
    expect(gp.page.locator("#dose-preview")).to_have_text("1 tablett morgen hver 3. dag")
    gp.shot("editor-interval")

    # tapering: two steps shown, a third added, the middle one removed
    gp.page.locator("#dose-int").fill("")
    gp.page.locator("#dose-int-MORN").uncheck()
    gp.page.get_by_label("Nedtrapping").check()
    expect(gp.page.locator("#dose-step3-MORN")).to_be_hidden()
    gp.page.locator("#dose-step1-MORN").fill("2")
    gp.page.locator("#dose-step1-EVE").fill("2")
    gp.page.locator("#dose-step1-length").fill("3")
    gp.page.locator("#dose-step2-MORN").fill("1")
    gp.page.locator("#dose-step2-EVE").fill("1")
    gp.page.locator("#dose-step2-length").fill("3")
    gp.page.get_by_role("button", name="Legg til trinn").click()
    gp.page.locator("#dose-step3-MORN").fill("1")
    expect(gp.page.locator("#dose-preview")).to_have_text(
        "2 tabletter morgen og kveld i 3 dager, deretter 1 tablett morgen og kveld i 3 dager, "
        "deretter 1 tablett morgen"
    )
    gp.shot("editor-tapering")
    gp.page.locator("tr.step[data-step='2']").get_by_role("button", name="Fjern").click()
    expect(gp.page.locator("#dose-step2-MORN")).to_have_value("1")
    expect(gp.page.locator("#dose-step2-length")).to_have_value("")
    expect(gp.page.locator("#dose-step3-MORN")).to_be_hidden()
    expect(gp.page.locator("#dose-preview")).to_have_text(
        "2 tabletter morgen og kveld i 3 dager, deretter 1 tablett morgen"
    )

    # free text: the structured fields are hidden, and what was typed in them is not dropped
    gp.page.get_by_label("Fritekst").check()
    for hidden in ("#dose-MORN", "#dose-week", "#dose-int", "#dose-step1-MORN", "#dose-unit"):
        expect(gp.page.locator(hidden)).to_be_hidden()
    gp.page.locator("#dose-text").fill("Etter avtale med lege")
    expect(gp.page.locator("#dose-preview")).to_contain_text("ville ikke blitt lagret")
    expect(gp.page.get_by_role("button", name="Tøm feltene under «Nedtrapping»")).to_be_visible()
    gp.shot("editor-free-text")
    gp.expect_status(400)
    gp.page.get_by_role("button", name="Lagre ny dose").click()
    expect(gp.page.locator("#dose-step1-MORN-error")).to_contain_text(
        "Du har valgt «Fritekst», men har også fylt inn «Nedtrapping»"
    )
    expect(gp.page.locator("#dose-text")).to_have_value("Etter avtale med lege")
    expect(gp.page.get_by_label("Fritekst")).to_be_checked()
    gp.shot("editor-free-text-refused")
    # the steps typed are kept, hidden; the editor offers to clear them, then free text is saved
    expect(gp.page.locator("#dose-step1-MORN")).to_have_value("2")
    gp.page.get_by_role("button", name="Tøm feltene under «Nedtrapping»").click()
    expect(gp.page.locator("#dose-preview")).to_have_text("Etter avtale med lege")
    gp.page.get_by_role("button", name="Lagre ny dose").click()
    expect(entry_row(gp, "Metformin")).to_contain_text("Etter avtale med lege")
