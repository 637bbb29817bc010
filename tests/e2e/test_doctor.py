"""The prescribing module in a real browser (issue 7): a GP opens a patient, sees the list,
prescribes, changes a dose, renews, recalls, discontinues and confirms; decision support
before saving; a relay-baton conflict; history. Clicks are counted for the common tasks."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.e2e.conftest import Screen, login, open_patient
from tests.e2e.scenes import METFORMIN, SIMVASTATIN, patient_with_medicines
from tests.integration.builders import ok

MAX_CLICKS = 4


def _row(screen: Screen, drug: str):  # type: ignore[no-untyped-def]
    return screen.page.locator(
        "tr", has=screen.page.get_by_role("rowheader", name=re.compile(drug))
    )


def test_a_gp_sees_the_list_and_does_the_common_tasks_in_few_clicks(
    server: LiveServer, screens, catalogue: None
) -> None:
    scene = patient_with_medicines(server, METFORMIN, SIMVASTATIN)
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    expect(
        gp.page.get_by_role("heading", name=re.compile("Pasientens legemiddelliste"))
    ).to_be_visible()
    expect(gp.page.locator("#baton")).to_contain_text("Kari Fastlege")
    expect(_row(gp, "Metformin")).to_contain_text("1 tablett morgen")
    gp.shot("lege-liste")
    counts: dict[str, tuple[int, int]] = {}

    # change a dose: 2 tablets morning and evening
    gp.count_reset()
    gp.click(_row(gp, "Metformin").get_by_role("link", name=re.compile("Endre dose")))
    gp.page.locator("#dose-MORN").fill("")
    gp.type("#dose-MORN", "2")
    gp.type("#dose-EVE", "2")
    expect(gp.page.locator("#dose-preview")).to_have_text("2 tabletter morgen og kveld")
    gp.shot("lege-endre-dose")
    gp.click(gp.page.get_by_role("button", name="Lagre ny dose"))
    expect(gp.page.locator(".notice").first).to_contain_text("Dosen er endret")
    expect(_row(gp, "Metformin")).to_contain_text("2 tabletter morgen og kveld")
    counts["endre dose"] = (gp.clicks, gp.keys)

    # renew a prescription
    gp.count_reset()
    gp.click(_row(gp, "Metformin").get_by_role("link", name=re.compile("Forny")))
    gp.click(gp.page.get_by_role("button", name="Forny resept"))
    expect(gp.page.locator(".notice").first).to_contain_text("Resepten er fornyet")
    counts["forny resept"] = (gp.clicks, gp.keys)

    # discontinue with a reason
    gp.count_reset()
    gp.click(_row(gp, "Simvastatin").get_by_role("link", name=re.compile("Seponer")))
    gp.click(gp.page.get_by_label("Bivirkning"))
    gp.shot("lege-seponer")
    gp.click(gp.page.get_by_role("button", name="Seponer"))
    expect(gp.page.locator(".notice").first).to_contain_text("seponert")
    expect(gp.page.locator("table.ended")).to_contain_text("Bivirkning")
    counts["seponer med grunn"] = (gp.clicks, gp.keys)

    # confirm the list
    gp.count_reset()
    gp.click(gp.page.get_by_role("button", name="Bekreft listen"))
    expect(gp.page.locator("#confirmed")).to_contain_text("Kari Fastlege")
    counts["bekreft listen"] = (gp.clicks, gp.keys)

    print("\nclicks and keystrokes once the patient is open:", counts)  # noqa: T201
    for task, (clicks, _) in counts.items():
        assert clicks <= MAX_CLICKS, (task, clicks)

    # what the browser did is what the API says
    with server.client("gp") as api:
        bundle = ok(api.get("/fhir/MedicationStatement", params={"patient": scene.pid}))
        statuses = {
            e["resource"]["medicationCodeableConcept"]["text"]: e["resource"]["status"]
            for e in bundle["entry"]
        }
    assert statuses == {METFORMIN[2]: "active", SIMVASTATIN[2]: "stopped"}
