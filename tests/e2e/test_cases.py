"""Discrepancy cases in a real browser (issue 8): a nurse reports a discrepancy on one
medicine from the list page; the GP who last changed that medicine sees it on the list,
resolves it, and it leaves the list."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.e2e.conftest import Screen, login, open_patient
from tests.e2e.scenes import METFORMIN, SIMVASTATIN, entry_row, patient_with_medicines
from tests.integration.builders import ok

WHAT = "Pasienten har sluttet med metformin, men den står fortsatt på listen"


def test_a_nurse_reports_and_the_gp_resolves_on_the_list(server: LiveServer, screens) -> None:
    scene = patient_with_medicines(server, METFORMIN, SIMVASTATIN)

    # the home-care nurse reads the list and reports what does not match
    nurse: Screen = screens("nurse")
    login(nurse, "nurse")
    open_patient(nurse, scene.fnr)
    expect(nurse.page.locator("#baton")).to_contain_text("Kari Fastlege")
    nurse.click(nurse.page.get_by_text("Meld avvik i listen"))
    nurse.choose("#avvik-gjelder", f"MedicationStatement/{scene.entries[METFORMIN[2]]}/_history/1")
    nurse.type("#avvik-beskrivelse", WHAT)
    nurse.click(nurse.page.get_by_role("button", name="Meld avvik"))
    expect(nurse.page.locator(".notice").first).to_contain_text(
        "Avviket er meldt til Bergen legesenter (Kari Fastlege"
    )
    reported = nurse.page.locator("article.case")
    expect(reported).to_contain_text(METFORMIN[2])
    expect(reported).to_contain_text("Åpen")
    # the reporter may withdraw or comment, not handle it
    expect(reported.get_by_role("button", name="Trekk tilbake")).to_be_visible()
    expect(reported.get_by_role("button", name="Løst")).to_have_count(0)

    # the GP, who last changed metformin, sees it on the list: who reported what, when, to whom
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    case = gp.page.locator("article.case")
    expect(gp.page.get_by_role("heading", name="Åpne avvik (1)")).to_be_visible()
    expect(case).to_contain_text(METFORMIN[2])
    expect(case).to_contain_text(WHAT)
    expect(case).to_contain_text("Siri Sykepleier")
    expect(case).to_contain_text("Sendt til Bergen legesenter")
    expect(case).to_contain_text(re.compile(r"Meldt \d\d\.\d\d\.\d{4} kl\. \d\d:\d\d"))
    expect(entry_row(gp, "Metformin")).to_contain_text("Åpent avvik")  # marked on its row too
    expect(entry_row(gp, "Simvastatin")).not_to_contain_text("Åpent avvik")
    gp.shot("lege-avvik")

    gp.click(case.get_by_role("button", name="Ta saken"))
    expect(gp.page.locator("article.case")).to_contain_text("Under behandling")
    gp.type(gp.page.locator("article.case textarea"), "Metformin seponert etter samtale")
    gp.click(gp.page.locator("article.case").get_by_role("button", name="Løst"))
    expect(gp.page.locator(".notice").first).to_contain_text("Avviket er løst og lukket")
    expect(gp.page.locator("article.case")).to_have_count(0)  # closed: gone from the list
    expect(entry_row(gp, "Metformin")).not_to_contain_text("Åpent avvik")

    # what the browser did is what the API says
    with server.client("gp") as api:
        found = ok(api.get("/fhir/Task", params={"patient": scene.pid}))
    task = found["entry"][0]["resource"]
    assert task["status"] == "completed"
    assert task["focus"]["reference"].startswith(
        f"MedicationStatement/{scene.entries[METFORMIN[2]]}"
    )
    assert task["note"][-1]["text"] == "Metformin seponert etter samtale"

    # and the nurse no longer sees it either
    nurse.page.reload()
    expect(nurse.page.locator("article.case")).to_have_count(0)
