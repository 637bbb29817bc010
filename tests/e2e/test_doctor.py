"""The prescribing module in a real browser (issue 7): a GP opens a patient, sees the list,
prescribes, changes a dose, renews, recalls, discontinues and confirms; decision support
before saving; a relay-baton conflict; history. Clicks are counted for the common tasks."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.e2e.conftest import Screen, login, open_patient
from tests.e2e.scenes import METFORMIN, SIMVASTATIN, entry_row, patient_with_medicines
from tests.integration.builders import ok

MAX_CLICKS = 4


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
    expect(entry_row(gp, "Metformin")).to_contain_text("1 tablett morgen")
    gp.shot("lege-liste")
    counts: dict[str, tuple[int, int]] = {}

    # change a dose: 2 tablets morning and evening (click into the morning field, replace
    # what is there, Tab past midday to the evening)
    gp.count_reset()
    gp.click(entry_row(gp, "Metformin").get_by_role("link", name=re.compile("Endre dose")))
    gp.click("#dose-MORN")
    gp.press("Control+A")
    gp.type("#dose-MORN", "2")
    gp.press("Tab")
    gp.press("Tab")
    gp.type("#dose-EVE", "2")
    expect(gp.page.locator("#dose-preview")).to_have_text("2 tabletter morgen og kveld")
    gp.shot("lege-endre-dose")
    gp.click(gp.page.get_by_role("button", name="Lagre ny dose"))
    expect(gp.page.locator(".notice").first).to_contain_text("Dosen er endret")
    expect(entry_row(gp, "Metformin")).to_contain_text("2 tabletter morgen og kveld")
    counts["endre dose"] = (gp.clicks, gp.keys)

    # renew a prescription
    gp.count_reset()
    gp.click(entry_row(gp, "Metformin").get_by_role("link", name=re.compile("Forny")))
    gp.click(gp.page.get_by_role("button", name="Forny resept"))
    expect(gp.page.locator(".notice").first).to_contain_text("Resepten er fornyet")
    counts["forny resept"] = (gp.clicks, gp.keys)

    # discontinue with a reason
    gp.count_reset()
    gp.click(entry_row(gp, "Simvastatin").get_by_role("link", name=re.compile("Seponer")))
    gp.click(gp.page.get_by_label("Bivirkning"))
    gp.shot("lege-seponer")
    gp.click(gp.page.get_by_role("button", name="Seponer"))
    expect(gp.page.locator(".notice").first).to_contain_text("seponert")
    expect(gp.page.locator("table.ended")).to_contain_text("Bivirkning")
    counts["seponer med grunn"] = (gp.clicks, gp.keys)

    # confirm the list: the list page shows what is confirmed, and what changed since the
    # last confirmation beside the button, which names the version: one click
    gp.count_reset()
    expect(gp.page.locator("#confirm-changes")).to_contain_text("Seponert: Simvastatin")
    gp.shot("lege-bekreft")
    gp.page.screenshot(path="/tmp/ui2-confirm-changes.png", full_page=True)
    gp.click(gp.page.get_by_role("button", name=re.compile(r"Bekreft versjon \d+")))
    expect(gp.page.locator("#confirmed")).to_contain_text("Kari Fastlege")
    counts["bekreft listen"] = (gp.clicks, gp.keys)

    print("\nclicks and keystrokes once the patient is open:", counts)  # noqa: T201
    for task, (clicks, _) in counts.items():
        assert clicks <= MAX_CLICKS, (task, clicks)
    assert counts["bekreft listen"][0] <= 1, counts

    # what the browser did is what the API says
    with server.client("gp") as api:
        bundle = ok(api.get("/fhir/MedicationStatement", params={"patient": scene.pid}))
        statuses = {
            e["resource"]["medicationCodeableConcept"]["text"]: e["resource"]["status"]
            for e in bundle["entry"]
        }
    assert statuses == {METFORMIN[2]: "active", SIMVASTATIN[2]: "stopped"}


def test_prescribing_searches_fest_previews_the_dosage_and_shows_findings_before_saving(
    server: LiveServer, screens, catalogue: None
) -> None:
    scene = patient_with_medicines(server, SIMVASTATIN)
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    gp.page.get_by_role("link", name="Nytt legemiddel").click()
    gp.page.locator("#q").fill("Klaritromycin")
    gp.page.get_by_role("button", name="Søk").click()
    gp.page.get_by_label(re.compile("Klaritromycin Fjordpharma Tab 500 mg Tablett")).check()
    gp.page.locator("#dose-MORN").fill("1")
    gp.page.locator("#dose-EVE").fill("1")
    expect(gp.page.locator("#dose-preview")).to_have_text("1 tablett morgen og kveld")
    # another mode with these times filled in would drop them: the preview says so at once
    gp.page.get_by_label("Ved behov").check()
    expect(gp.page.locator("#dose-preview")).to_contain_text("ville ikke blitt lagret")
    gp.page.locator("#dose-prn").fill("2")
    gp.page.locator("#dose-max").fill("6")
    gp.page.get_by_label("Faste tider").check()
    expect(gp.page.locator("#dose-preview")).to_contain_text("«Ved behov» (Mengde per dose: 2")
    gp.page.get_by_role("button", name="Tøm feltene under «Ved behov»").click()
    expect(gp.page.locator("#dose-preview")).to_have_text("1 tablett morgen og kveld")
    gp.page.locator("#indication").fill("Pneumoni <script>alert(1)</script>")
    gp.shot("lege-forskriv")
    gp.page.get_by_role("button", name="Lagre").click()

    # the interaction with simvastatin appears before anything is saved
    expect(gp.page.get_by_role("heading", name="Beslutningsstøtten fant noe")).to_be_visible()
    expect(gp.page.locator(".findings")).to_contain_text("imvastatin")
    gp.shot("lege-beslutningsstotte")
    with server.client("gp") as api:
        listed = ok(api.get("/fhir/MedicationStatement", params={"patient": scene.pid}))
    assert listed["total"] == 1  # nothing saved yet
    gp.page.locator("#override-reason").fill("Kortvarig kur, simvastatin pauses i kuren")
    gp.page.get_by_role("button", name="Lagre likevel").click()
    expect(gp.page.locator(".notice").first).to_contain_text("er lagt til")
    row = entry_row(gp, "Klaritromycin")
    expect(row).to_contain_text("1 tablett morgen og kveld")
    # user text is shown as text, never run
    expect(row).to_contain_text("Pneumoni <script>alert(1)</script>")

    with server.client("gp") as api:
        history = ok(api.get(f"/fhir/List/{scene.list_id}/_history"))
    newest = history["entry"][0]["resource"]
    assert newest["meta"]["versionId"] == "4"
    provenance = ok(api_get(server, f"/fhir/Provenance?target=List/{scene.list_id}"))
    overrides = [
        ext["valueString"]
        for e in provenance["entry"]
        for ext in e["resource"].get("extension", [])
    ]
    assert any("Kortvarig kur" in o for o in overrides), overrides


def api_get(server: LiveServer, path: str):  # type: ignore[no-untyped-def]
    with server.client("gp") as api:
        return api.get(path)


def test_a_conflicting_change_is_shown_and_redone_on_the_current_version(
    server: LiveServer, screens
) -> None:
    scene = patient_with_medicines(server, METFORMIN, SIMVASTATIN)
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    entry_row(gp, "Metformin").get_by_role("link", name=re.compile("Endre dose")).click()
    gp.page.locator("#dose-MORN").fill("2")

    # meanwhile the hospital changes the same medicine, and another one
    with server.client("hospital-doctor") as hospital:
        for name, amount in ((METFORMIN[2], 3), (SIMVASTATIN[2], 2)):
            entry_id = scene.entries[name]
            current = api_read(hospital, f"/fhir/MedicationStatement/{entry_id}")
            current["dosage"] = [
                {
                    "timing": {"repeat": {"when": ["EVE"]}},
                    "doseAndRate": [{"doseQuantity": {"value": amount, "unit": "tablett"}}],
                }
            ]
            r = hospital.put(
                f"/fhir/MedicationStatement/{entry_id}",
                json=current,
                headers={"If-Match": f'W/"{current["meta"]["versionId"]}"'},
            )
            ok(r)

    gp.page.get_by_role("button", name="Lagre ny dose").click()
    expect(gp.page.get_by_role("heading", name=re.compile("er endret av en annen"))).to_be_visible()
    expect(gp.page.locator("main")).to_contain_text("Ola Sykehuslege")
    expect(gp.page.locator("table.diff")).to_contain_text("3 tabletter kveld")
    gp.shot("lege-konflikt")
    # the form opens again on the new version with the GP's values; the GP saves it
    gp.page.get_by_role("link", name="Gjør min endring på den nye versjonen").click()
    expect(gp.page.locator("#dose-MORN")).to_have_value("2")
    gp.page.get_by_role("button", name="Lagre ny dose").click()
    expect(gp.page.locator(".notice").first).to_contain_text("Dosen er endret")
    expect(entry_row(gp, "Metformin")).to_contain_text("2 tabletter morgen")
    # the hospital's change to the other medicine was kept (merged, never overwritten)
    expect(entry_row(gp, "Simvastatin")).to_contain_text("2 tabletter kveld")
    expect(gp.page.locator("#baton")).to_contain_text("Kari Fastlege")


def api_read(client, path: str):  # type: ignore[no-untyped-def]
    return ok(client.get(path))


def test_history_shows_a_readable_difference_between_any_two_versions(
    server: LiveServer, screens
) -> None:
    scene = patient_with_medicines(server, METFORMIN, SIMVASTATIN)
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    # pause one medicine and recall the other's prescription, then compare versions
    entry_row(gp, "Metformin").get_by_role("button", name=re.compile("Pause")).click()
    expect(entry_row(gp, "Metformin")).to_contain_text("Pauset")
    entry_row(gp, "Simvastatin").get_by_role("link", name=re.compile("Tilbakekall")).click()
    gp.page.get_by_label("Feil i resepten").check()
    gp.page.get_by_role("button", name="Tilbakekall").click()
    expect(gp.page.locator(".notice").first).to_contain_text("tilbakekalt")
    expect(entry_row(gp, "Simvastatin")).to_contain_text("Tilbakekalt")
    entry_row(gp, "Metformin").get_by_role("button", name=re.compile("Gjenoppta")).click()
    expect(entry_row(gp, "Metformin")).to_contain_text("I bruk")

    gp.page.get_by_role("link", name="Historikk").click()
    # versions: 1 the list, 2-5 two medicines with prescriptions, 6 pause, 7 recall, 8 resume
    gp.page.locator("#fra").select_option("5")
    gp.page.locator("#til").select_option("8")
    gp.page.get_by_role("button", name="Vis forskjellen").click()
    difference = gp.page.locator(".difference")
    expect(difference).to_contain_text("Metformin")
    expect(difference).to_contain_text("Simvastatin")
    gp.shot("lege-historikk")
    expect(gp.page.locator("main")).to_contain_text("Kari Fastlege")
