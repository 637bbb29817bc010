"""A nurse's morning round on ``/kurve`` in the browser, through the UI alone (issue 17):
log in, open the unit, open a patient, read the doctor's change of a dose made before the
round at the top of the chart and acknowledge it in one click, record the morning doses
given, one not given with a reason, an as-needed dose, a refusal in Norwegian (the same
dose recorded twice from a tab opened before), and the printable chart — on a tablet-sized
screen (768 px), with the keyboard for the one-tap "Gitt"."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from pll.domain.administration import OSLO
from tests.conftest import Clock, LiveServer
from tests.e2e.conftest import Screen, login
from tests.integration.test_administrations import med, setup
from tests.integration.test_web_kurve import prn
from tests.integration.test_web_kurve_changes import change_dose

TABLET = {"width": 768, "height": 1024}


def no_sideways_scroll(screen: Screen) -> None:
    wide = screen.page.evaluate("document.documentElement.scrollWidth")
    assert wide <= TABLET["width"], f"the page is {wide} px wide at 768 px"


def test_a_nurses_morning_round(screens: Any, server: LiveServer, clock: Clock) -> None:
    today = datetime.now(OSLO).date()
    clock.offset = datetime.combine(today, time(8, 15), OSLO).astimezone(UTC) - datetime.now(UTC)
    pid, _, (_, simvastatin, _) = setup(
        server,
        med("Metformin Tab 500 mg", "A10BA02", 1),
        med("Simvastatin Tab 20 mg", "C10AA01", 1),
        prn(),
    )
    # before the round, the doctor doubles Simvastatin (through the API, not the UI)
    changed_in = change_dose(server, simvastatin, 2)
    nurse: Screen = screens("nurse")
    nurse.page.set_viewport_size(TABLET)
    login(nurse, "nursing-home-nurse")
    # she lands on her unit's patients, with the morning doses due now
    assert nurse.page.url.endswith("/kurve")
    assert "morgen 08:00 (2)" in nurse.text("#patients")
    assert "1 endring" in nurse.text(f"#pasient-{pid} td.unacknowledged")
    no_sideways_scroll(nurse)
    nurse.shot("kurve-unit-768")
    nurse.click(nurse.page.locator(f"#pasient-{pid} th a"))
    assert nurse.page.url.endswith(f"/kurve/{pid}")
    assert "CAVE" in nurse.text("#patient-banner")
    # the change at the top, the doses it touches marked
    changes = nurse.text("#endringer")
    assert "Endret — ikke kvittert" in changes
    assert "1 tablett morgen og kveld → 2 tabletter morgen og kveld" in changes
    assert f"listeversjon {changed_in}" in changes
    assert nurse.page.locator(".dose .changed").count() == 2
    no_sideways_scroll(nurse)
    nurse.shot("kurve-changes-768")
    # she has read it: one click acknowledges it for the unit, and the marks are gone
    nurse.click(nurse.page.get_by_role("button", name="Kvitter for endringene"))
    assert f"Kvittert for 1 endring til og med listeversjon {changed_in}" in nurse.text()
    assert nurse.page.locator("#endringer").count() == 0
    assert nurse.page.locator(".dose .changed").count() == 0
    no_sideways_scroll(nurse)
    nurse.shot("kurve-chart-768")

    # a tab opened on the chart before the round (a colleague's, say)
    stale: Screen = screens("stale")
    stale.page.set_viewport_size(TABLET)
    login(stale, "nursing-home-nurse")
    stale.go(f"/kurve/{pid}")

    # morning: Metformin with the keyboard, Simvastatin with a tap
    nurse.tab_to("Gitt: Metformin Tab 500 mg morgen 08:00", limit=60)
    with nurse.page.expect_navigation():
        nurse.press("Enter")
    assert "Registrert: planlagt dose gitt" in nurse.text()
    nurse.click(nurse.page.get_by_role("button", name="Gitt: Simvastatin Tab 20 mg morgen 08:00"))
    morning = nurse.page.locator(".dose.given")
    assert morning.count() == 2
    assert "Nora Sykepleier" in morning.first.inner_text()

    # evening Simvastatin not given: the patient refused (recorded ahead, as the round ends)
    nurse.click(nurse.page.get_by_role("link", name="Ikke gitt: Simvastatin Tab 20 mg kveld 20:00"))
    nurse.page.get_by_label("Pasienten ville ikke ta legemidlet").check()
    nurse.click(nurse.page.get_by_role("button", name="Registrer"))
    assert "ikke gitt" in nurse.text()
    assert nurse.page.locator(".dose.not-given").count() == 1

    # as needed: paracetamol for pain, within the daily maximum
    item = nurse.page.locator("article.as-needed")
    assert "2 tablett igjen" in item.inner_text()
    nurse.type(item.get_by_label("Hvorfor gis den?"), "Smerter i hoften")
    nurse.click(item.get_by_role("button", name="Gi ved behov"))
    assert "1 tablett igjen" in nurse.page.locator("article.as-needed").inner_text()

    # the stale tab still offers Metformin's morning dose: refused, in Norwegian
    stale.expect_status(409)
    stale.click(stale.page.get_by_role("button", name="Gitt: Metformin Tab 500 mg morgen 08:00"))
    summary = stale.text(".error-summary")
    assert "Denne dosen er allerede registrert" in summary
    no_sideways_scroll(stale)
    stale.shot("kurve-refused-768")

    # the printable chart for the downtime routine
    nurse.click(nurse.page.get_by_role("link", name="Utskrift for nedetid"))
    made = nurse.text("#made")
    assert "Laget fra listeversjon" in made
    assert nurse.page.locator("#banner-fnr").inner_text().strip()
    nurse.page.emulate_media(media="print")
    assert not nurse.page.locator("header.top").is_visible()
    nurse.shot("kurve-print")
