"""The patient's pages in a real browser (issue 7, helsenorge view): the list in plain
language, what changed, who looked (an emergency access highlighted), blocking and unblocking
the GP, a proxy acting for the patient, and no one reading another person's list
(DESIGN §3 rule 5)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
from playwright.sync_api import expect

from pll.services.access import register_proxy
from tests.conftest import LiveServer
from tests.e2e.conftest import Screen, login, open_patient
from tests.e2e.scenes import METFORMIN, SIMVASTATIN, WARFARIN, patient_with_medicines
from tests.integration.builders import dose, ok

GP_HPR = "9144889"
PROXY_PID = "09857215521"


def _update(gp: httpx.Client, path: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Change a resource as a journal system does: read it, change it, put it back."""
    body = ok(gp.get(path))
    change(body)
    ok(gp.put(path, json=body, headers={"If-Match": f'W/"{body["meta"]["versionId"]}"'}))


def _list_operation(gp: httpx.Client, list_id: str, name: str, **params: str) -> None:
    version = ok(gp.get(f"/fhir/List/{list_id}"))["meta"]["versionId"]
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": k, "valueString": v} for k, v in params.items()],
    }
    ok(
        gp.post(
            f"/fhir/List/{list_id}/${name}",
            json=body if params else None,
            headers={"If-Match": f'W/"{version}"'},
        )
    )


def _tab(screen: Screen, name: str) -> None:
    screen.page.get_by_role("navigation", name="Sidene om listen").get_by_role(
        "link", name=name
    ).click()


def _set(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda body: body.update(values)


def test_the_patient_sees_their_medicines_in_plain_language(
    server: LiveServer, screens: Any
) -> None:
    scene = patient_with_medicines(server, METFORMIN, SIMVASTATIN, WARFARIN)
    entry = "/fhir/MedicationStatement/{}".format
    with server.client("gp") as gp:
        _update(
            gp,
            entry(scene.entries[METFORMIN[2]]),
            _set(dosage=dose(2, "MORN", "EVE"), reasonCode=[{"text": "diabetes type 2"}]),
        )
        _update(
            gp,
            entry(scene.entries[SIMVASTATIN[2]]),
            _set(status="on-hold", statusReason=[{"text": "muskelsmerter"}]),
        )
        _update(
            gp,
            entry(scene.entries[WARFARIN[2]]),
            _set(status="stopped", statusReason=[{"text": "Bivirkning"}]),
        )
        _list_operation(gp, scene.list_id, "confirm")
        ok(gp.post(f"/fhir/Patient/{scene.pid}/$paper-multidose"))
        _list_operation(gp, scene.list_id, "pause", reason="Innlagt på sykehus")

    me: Screen = screens("patient")
    login(me, "patient", scene.fnr)
    expect(me.page.get_by_role("heading", name="Mine legemidler")).to_be_visible()
    assert me.page.url.endswith(f"/pasient/{scene.pid}")
    expect(me.page.locator("#using")).to_contain_text(
        "Metformin tab 500 mg — 2 tabletter morgen og kveld — mot diabetes type 2 — "
        "brukt siden 1. oktober 2026"
    )
    paused = me.page.locator("#paused-medicines")
    expect(paused).to_contain_text("Simvastatin Fjordpharma Tab 20 mg")
    expect(paused).to_contain_text("Grunn: muskelsmerter")
    ended = me.page.locator("#ended")
    expect(ended).to_contain_text("Warfarin Nordfarma Tab 2,5 mg")
    expect(ended).to_contain_text("Grunn: Bivirkning")
    expect(me.page.locator("#using")).not_to_contain_text("Warfarin")
    expect(me.page.locator("#confirmed")).to_contain_text("Kari Fastlege")
    expect(me.page.locator("#paper")).to_contain_text("multidose bestilt på papir")
    expect(me.page.locator("#paused")).to_contain_text("Innlagt på sykehus")
    me.shot("pasient-mine-legemidler")

    # each of those changes, in plain words, newest first, ten to a page
    _tab(me, "Hva er endret")
    changes = me.page.locator("#changes")
    for line in (
        "Hele listen ble satt på pause (grunn: Innlagt på sykehus).",
        "Listen ble gått gjennom og bekreftet som riktig.",
        "Warfarin Nordfarma Tab 2,5 mg ble avsluttet (grunn: Bivirkning).",
        "Resepten på Warfarin Nordfarma Tab 2,5 mg ble trukket tilbake",
        "Simvastatin Fjordpharma Tab 20 mg ble satt på pause (grunn: muskelsmerter).",
        "Det Metformin tab 500 mg brukes mot, er nå «diabetes type 2».",
    ):
        expect(changes).to_contain_text(line)
    expect(changes).not_to_contain_text("Legemiddellisten ble opprettet.")
    me.page.get_by_role("link", name="Eldre endringer").click()
    expect(me.page.locator("#changes")).to_contain_text("Legemiddellisten ble opprettet.")

    # the page is the patient's only: a doctor is turned away
    gp_screen: Screen = screens("gp")
    login(gp_screen, "gp")
    gp_screen.expect_status(403)
    answer = gp_screen.page.goto(f"{server.base}/pasient/{scene.pid}")
    assert answer is not None
    assert answer.status == 403


def test_what_changed_shows_the_gps_dose_change_in_plain_words(
    server: LiveServer, screens: Any
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    me: Screen = screens("patient")
    login(me, "patient", scene.fnr)
    with server.client("gp") as gp:
        _update(
            gp,
            f"/fhir/MedicationStatement/{scene.entries[METFORMIN[2]]}",
            _set(dosage=dose(2, "MORN", "EVE")),
        )
    _tab(me, "Hva er endret")
    newest = me.page.locator("#changes > section").first
    expect(newest).to_contain_text(
        "Dosen av Metformin tab 500 mg ble endret fra «1 tablett morgen» til "
        "«2 tabletter morgen og kveld»."
    )
    expect(newest).to_contain_text("Kari Fastlege, lege ved Bergen legesenter")
    changes = me.page.locator("#changes")
    expect(changes).to_contain_text("Nytt legemiddel: Metformin tab 500 mg, 1 tablett morgen.")
    expect(changes).to_contain_text("Ny e-resept på Metformin tab 500 mg.")
    expect(changes).to_contain_text("Legemiddellisten ble opprettet.")
    me.shot("pasient-endringer")


def test_the_patient_sees_who_looked_and_blocks_the_gp_except_in_an_emergency(
    server: LiveServer, screens: Any
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    expect(gp.page.get_by_role("heading", name=re.compile("legemiddelliste"))).to_be_visible()

    # who looked: the GP, on the basis of a treatment relationship
    me: Screen = screens("patient")
    login(me, "patient", scene.fnr)
    _tab(me, "Hvem har sett listen")
    gp_row = me.page.locator("tr", has_text="Kari Fastlege").first
    expect(gp_row).to_contain_text("åpnet legemiddellisten")
    expect(gp_row).to_contain_text("Behandlingsrelasjon")
    expect(gp_row).to_contain_text("Bergen legesenter")
    expect(gp_row).to_contain_text(f"HPR-nummer {GP_HPR}")
    me.shot("pasient-innsyn")

    # block her, straight from the log: the form comes filled in
    gp_row.get_by_role("link", name=re.compile("Sperr")).click()
    expect(me.page.locator("#hpr")).to_have_value(GP_HPR)
    me.page.get_by_role("button", name="Sperr", exact=True).click()
    expect(me.page.locator(".notice").first).to_contain_text("er sperret")
    expect(me.page.locator("#active-blocks")).to_contain_text(GP_HPR)
    me.shot("pasient-sperring")

    # the GP is refused ...
    gp.expect_status(403)
    open_patient(gp, scene.fnr)
    expect(gp.page.get_by_role("heading", name="Ingen tilgang")).to_be_visible()
    gp.expect_status(403)
    answer = gp.page.goto(gp.page.url)
    assert answer is not None
    assert answer.status == 403
    gp.shot("lege-blokkert")

    # ... except in an emergency, which the patient then sees highlighted
    open_patient(gp, scene.fnr, "HPAKUTT")
    expect(gp.page.locator("#entry-" + scene.entries[METFORMIN[2]])).to_contain_text("Metformin")
    _tab(me, "Hvem har sett listen")
    expect(me.page.locator("#emergency-summary")).to_be_visible()
    emergency = me.page.locator("tr.emergency", has_text="Kari Fastlege").first
    expect(emergency).to_contain_text("Nødtilgang")
    expect(emergency).to_contain_text("til tross for pasientens sperre")
    refused = me.page.locator("tr", has_text="Avvist").first
    expect(refused).to_contain_text("Kari Fastlege")
    expect(refused).to_contain_text("prøvde å se legemiddellisten")
    me.shot("pasient-innsyn-nodtilgang")

    # unblocking lets the GP in again
    _tab(me, "Sperr helsepersonell")
    me.page.get_by_role("button", name=re.compile("Opphev")).click()
    expect(me.page.locator(".notice").first).to_contain_text("opphevet")
    expect(me.page.locator("#no-blocks")).to_be_visible()
    open_patient(gp, scene.fnr)
    expect(gp.page.locator("#entry-" + scene.entries[METFORMIN[2]])).to_contain_text("Metformin")


def test_a_block_is_escaped_checked_and_needs_the_forms_token(
    server: LiveServer, screens: Any
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    me: Screen = screens("patient")
    login(me, "patient", scene.fnr)
    me.go(f"/pasient/{scene.pid}/sperring")
    # not an HPR number: a clear message, nothing blocked
    me.page.locator("#hpr").fill("12ab")
    me.expect_status(400)
    me.page.get_by_role("button", name="Sperr", exact=True).click()
    expect(me.page.locator("#hpr-error")).to_contain_text("1 til 9 sifre")
    expect(me.page.locator("#no-blocks")).to_be_visible()
    # what the patient types is shown as text, never run
    me.page.locator("#hpr").fill("9144897")
    me.page.locator("#name").fill("<script>alert(1)</script> Ola")
    me.page.get_by_role("button", name="Sperr", exact=True).click()
    expect(me.page.locator("#active-blocks")).to_contain_text("<script>alert(1)</script> Ola")
    # a post without the form's anti-forgery token is refused and changes nothing
    forged = me.page.request.post(
        f"{server.base}/pasient/{scene.pid}/sperring",
        form={"hpr": GP_HPR, "name": "Kari"},
        max_redirects=0,
    )
    assert forged.status == 403
    with server.client("patient", scene.fnr) as api:
        blocks = ok(api.get("/fhir/Consent", params={"patient": scene.pid}))
    assert blocks["total"] == 1


def test_a_proxy_acts_for_the_patient_and_no_one_reads_another_persons_list(
    server: LiveServer, screens: Any
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    other = patient_with_medicines(server, SIMVASTATIN)
    register_proxy(server.db, PROXY_PID, scene.fnr, add=True)

    proxy: Screen = screens("proxy")
    login(proxy, "proxy")
    expect(proxy.page.get_by_role("heading", name=re.compile("Hvem vil du se"))).to_be_visible()
    expect(proxy.page.locator("main")).to_contain_text("Meg selv")
    proxy.page.get_by_role("link", name=f"Fødselsnummer {scene.fnr}").click()
    expect(proxy.page.locator("#acting-for")).to_contain_text(scene.fnr)
    expect(proxy.page.locator("#using")).to_contain_text("Metformin tab 500 mg")
    proxy.shot("fullmektig-legemidler")

    # changing the id in the address: refused, for the proxy and for the patient
    me: Screen = screens("patient")
    login(me, "patient", scene.fnr)
    for screen in (proxy, me):
        for page in ("", "/endringer", "/innsyn", "/sperring"):
            screen.expect_status(403)
            answer = screen.page.goto(f"{server.base}/pasient/{other.pid}{page}")
            assert answer is not None
            assert answer.status == 403, (screen.name, page)
            expect(screen.page.get_by_role("heading", name="Ingen tilgang")).to_be_visible()
    expect(me.page.locator("main")).not_to_contain_text("Simvastatin")

    # the patient sees that their proxy looked
    me.go(f"/pasient/{scene.pid}/innsyn")
    expect(
        me.page.locator("tr", has_text="Fullmektig Nordmann (fullmektig)").first
    ).to_contain_text("åpnet legemiddellisten")
