"""The doctor registers e-multidose and marks entries for packing in the browser (issue 18):
the registration form on the list page, "Pakk i multidose" on a tablet, and the reason in
Norwegian when an effervescent tablet cannot be packed."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.e2e.conftest import Screen, login, open_patient
from tests.e2e.scenes import entry_row
from tests.integration.test_web_multidose_doctor import BERGEN, _entry, _patient


def test_the_doctor_registers_e_multidose_and_marks_a_tablet(server: LiveServer, screens) -> None:  # type: ignore[no-untyped-def]
    fnr, _, tablet, _ = _patient(server)
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, fnr)

    # no register of pharmacies here: the doctor gives the pharmacy by organisation number
    gp.page.locator("#e-multidose > summary").click()
    gp.type("#orgnr", BERGEN)
    gp.type("#apoteknavn", "Apotek 1 Bergen multidose")
    gp.shot("lege-e-multidose-registrer")
    gp.click(gp.page.get_by_role("button", name="Registrer e-multidose"))
    expect(gp.page.locator(".notice").first).to_contain_text("E-multidose er registrert")
    expect(gp.page.locator("main")).to_contain_text("Apotek 1 Bergen multidose")

    # the tablet is marked for packing under the doctor's name
    gp.click(
        entry_row(gp, "Metformin").get_by_role("button", name=re.compile("Pakk .* i multidose"))
    )
    expect(gp.page.locator(".notice").first).to_contain_text(
        "Legemidlet er merket for pakking i multidose"
    )
    expect(entry_row(gp, "Metformin")).to_contain_text("Multidose")
    expect(gp.page.locator("#baton")).to_contain_text("Kari Fastlege")
    assert _entry(server, tablet["id"])["extension"][0]["extension"][0]["valueBoolean"] is True

    # an effervescent tablet cannot be packed: the reason, in Norwegian, and nothing saved
    gp.expect_status(400)
    gp.click(entry_row(gp, "Paracet").get_by_role("button", name=re.compile("Pakk .* i multidose")))
    summary = gp.page.locator(".error-summary")
    expect(summary).to_contain_text("Kan ikke pakkes i multidose")
    expect(summary).to_contain_text("Brusetablett")
    expect(entry_row(gp, "Paracet")).not_to_contain_text("Multidose")
    gp.shot("lege-e-multidose-avvist")
