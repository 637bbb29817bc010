"""Prescriptions say what they are, in a real browser: an expired prescription is shown as
"Utløpt <date>" and flagged on the doctor's list and said on the patient's page; the
prescribing form's quantity, reit, start and stop are shown on the list; a refused field
keeps what was typed. Dates are relative to the test's own today (the server's clock)."""

from __future__ import annotations

import re
from datetime import date, timedelta

from playwright.sync_api import expect

from pll.domain.prescriptions import add_duration, local_day
from tests.conftest import Clock, LiveServer
from tests.e2e.conftest import Screen, login, open_patient
from tests.e2e.scenes import METFORMIN, patient_with_medicines
from tests.integration.builders import ok

FLAG = "Resepten er utløpt — pasienten kan være uten legemidlet"


def _row(screen: Screen, drug: str):  # type: ignore[no-untyped-def]
    return screen.page.locator(
        "tr", has=screen.page.get_by_role("rowheader", name=re.compile(drug))
    )


def _norwegian(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def test_an_expired_prescription_is_shown_as_expired_with_its_end(
    server: LiveServer, screens, clock: Clock
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    rx_id = scene.prescriptions[METFORMIN[2]]
    with server.client("gp") as api:
        rx = ok(api.get(f"/fhir/MedicationRequest/{rx_id}"))
    end = date.fromisoformat(rx["dispenseRequest"]["validityPeriod"]["end"])
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    expect(_row(gp, "Metformin").locator("td.prescription")).to_contain_text(
        f"Gyldig til {_norwegian(end)}"
    )
    expect(_row(gp, "Metformin")).not_to_contain_text(FLAG)

    # the day after its end (a login does not last that long: log in again)
    clock.advance(days=(end - local_day(clock())).days + 1)
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    cell = _row(gp, "Metformin").locator("td.prescription")
    expect(cell).to_contain_text(f"Utløpt {_norwegian(end)}")
    expect(cell).to_contain_text(FLAG)
    # the date shown is the validity end, never the issue date
    expect(cell).not_to_contain_text(_norwegian(date.fromisoformat(rx["authoredOn"])))
    gp.page.screenshot(path="/tmp/rx-expired-doctor.png", full_page=True)
    gp.shot("lege-utlopt-resept")

    me: Screen = screens("patient")
    login(me, "patient", scene.fnr)
    expect(me.page.locator("#using")).to_contain_text("Resepten er utløpt")
    me.page.screenshot(path="/tmp/rx-expired-patient.png", full_page=True)

    # a renewal is a new prescription, valid a year from (the moved) today
    gp.click(_row(gp, "Metformin").get_by_role("link", name=re.compile("Forny")))
    expect(gp.page.locator("main")).to_contain_text(f"Utløpt {_norwegian(end)}")
    gp.click(gp.page.get_by_role("button", name="Forny resept"))
    expect(gp.page.locator(".notice").first).to_contain_text("Resepten er fornyet")
    renewed_until = add_duration(local_day(clock()), "P1Y")
    cell = _row(gp, "Metformin").locator("td.prescription")
    expect(cell).to_contain_text(f"Gyldig til {_norwegian(renewed_until)}")
    expect(cell).not_to_contain_text(FLAG)


def test_the_prescribing_form_takes_quantity_reit_start_and_stop_and_the_list_shows_them(
    server: LiveServer, screens, catalogue: None, clock: Clock
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    today = local_day(clock())
    stop = today + timedelta(days=30)
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    gp.page.get_by_role("link", name="Nytt legemiddel").click()
    gp.page.locator("#q").fill("Klaritromycin")
    gp.page.get_by_role("button", name="Søk").click()
    gp.page.get_by_role("radio", name=re.compile("^Klaritromycin Fjordpharma")).first.check()
    gp.page.locator("#dose-MORN").fill("1")
    gp.page.locator("#dose-EVE").fill("1")
    # the defaults a GP expects: one package, no reit, from today
    expect(gp.page.locator("#rx-quantity")).to_have_value("1")
    expect(gp.page.locator("#rx-repeats")).to_have_value("0")
    expect(gp.page.locator("#rx-start")).to_have_value(today.isoformat())
    gp.page.locator("#rx-quantity").fill("2")
    gp.page.locator("#rx-repeats").fill("5000")
    gp.page.locator("#rx-stop").fill(stop.isoformat())
    gp.page.locator("#indication").fill("Pneumoni")
    gp.expect_status(400)
    gp.page.get_by_role("button", name="Lagre").click()

    # refused beside the field, in Norwegian, with everything typed kept
    expect(gp.page.locator("#rx-repeats-error")).to_contain_text("Reit")
    expect(gp.page.locator("#rx-repeats")).to_have_value("5000")
    expect(gp.page.locator("#rx-quantity")).to_have_value("2")
    expect(gp.page.locator("#rx-stop")).to_have_value(stop.isoformat())
    expect(gp.page.locator("#dose-EVE")).to_have_value("1")
    expect(gp.page.locator("#indication")).to_have_value("Pneumoni")
    expect(
        gp.page.get_by_role("radio", name=re.compile("^Klaritromycin Fjordpharma")).first
    ).to_be_checked()
    gp.page.screenshot(path="/tmp/rx-prescribe-refused.png", full_page=True)

    gp.page.locator("#rx-repeats").fill("3")
    gp.page.get_by_role("button", name="Lagre").click()
    gp.page.locator(".notice, #override-reason").first.wait_for()
    if gp.page.locator("#override-reason").count():
        # decision support asked first: the prescription's fields are carried along
        gp.page.locator("#override-reason").fill("Kortvarig kur")
        gp.page.get_by_role("button", name=re.compile("Lagre")).click()
    expect(gp.page.locator(".notice").first).to_contain_text("er lagt til")
    row = _row(gp, "Klaritromycin")
    expect(row).to_contain_text("2 pakninger, reit 3")
    expect(row).to_contain_text(f"Fra {_norwegian(today)} til {_norwegian(stop)}")
    expect(row).to_contain_text(f"Gyldig til {_norwegian(add_duration(today, 'P1Y'))}")
    gp.page.screenshot(path="/tmp/rx-prescribed-list.png", full_page=True)

    with server.client("gp") as api:
        found = ok(api.get("/fhir/MedicationRequest", params={"patient": scene.pid}))
    new = next(
        e["resource"]
        for e in found["entry"]
        if "Klaritromycin" in e["resource"]["medicationCodeableConcept"]["text"]
    )
    assert new["dispenseRequest"]["quantity"] == {"value": 2, "unit": "pakning"}
    assert new["dispenseRequest"]["numberOfRepeatsAllowed"] == 3


def test_a_prescription_stored_before_with_no_date_reads_expired_after_the_upgrade(
    server: LiveServer, screens, clock: Clock
) -> None:
    """A list stored by the code before expiry, its prescription with neither ``authoredOn``
    nor a validity: after the upgrade it is expired a year after PLL recorded it."""
    from tests.integration.test_expiry_upgrade import _store_as_before, _upgrade_from_0011

    scene = patient_with_medicines(server, METFORMIN)
    end = add_duration(local_day(clock()), "P1Y")
    _store_as_before(server, scene.pid, undated=True)
    _upgrade_from_0011(server)
    clock.advance(days=(end - local_day(clock())).days + 1)
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    cell = _row(gp, "Metformin").locator("td.prescription")
    expect(cell).to_contain_text(f"Utløpt {_norwegian(end)}")
    expect(cell).to_contain_text(FLAG)
    gp.page.screenshot(path="/tmp/rxfix-undated-doctor.png", full_page=True)
    # the renewal form says a year only where FEST gives no shorter validity
    gp.click(_row(gp, "Metformin").get_by_role("link", name=re.compile("Forny")))
    expect(gp.page.locator("main")).to_contain_text("reseptgyldighet i FEST er kortere")
    gp.page.screenshot(path="/tmp/rxfix-renew-hint.png", full_page=True)
