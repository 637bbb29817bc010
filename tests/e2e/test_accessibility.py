"""WCAG 2.1 AA basics on the doctor's main screens (issue 7): every control has a label,
the page says its language, there is one main heading, and the work can be done with the
keyboard alone, in a sensible focus order."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.e2e.conftest import Screen, login, open_patient
from tests.e2e.scenes import METFORMIN, SIMVASTATIN, patient_with_medicines

#: Controls without a label a screen reader can read out (none may be left).
UNLABELLED = """
() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !(el.tagName === 'BUTTON' && el.textContent.trim()))
  .map(el => el.outerHTML)
"""


def _check_page(screen: Screen) -> None:
    assert screen.page.evaluate("document.documentElement.lang") == "nb"
    assert screen.page.locator("h1").count() == 1
    assert screen.page.evaluate(UNLABELLED) == [], screen.page.url


def test_the_main_screens_are_labelled_and_work_from_the_keyboard(
    server: LiveServer, screens, catalogue: None
) -> None:
    scene = patient_with_medicines(server, METFORMIN, SIMVASTATIN)
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    list_url = gp.page.url
    _check_page(gp)
    for path in ("/ny?q=simva", "/historikk", "/samstemming"):
        gp.page.goto(list_url + path)
        _check_page(gp)
    entry = scene.entries[METFORMIN[2]]
    for path in ("dose", "seponer", "forny", "tilbakekall"):
        gp.page.goto(f"{list_url}/legemiddel/{entry}/{path}")
        _check_page(gp)
    gp.go("/lege")
    _check_page(gp)

    # the keyboard: the first Tab reaches the skip link, which leads into the page
    gp.page.goto(list_url)
    gp.page.keyboard.press("Tab")
    expect(gp.page.locator(".skip")).to_be_focused()
    gp.page.keyboard.press("Enter")
    # then the page in reading order: crumbs, then the actions, "Nytt legemiddel" first
    order = []
    for _ in range(8):
        gp.page.keyboard.press("Tab")
        order.append(gp.page.evaluate("document.activeElement.textContent.trim()"))
    assert order.index("Nytt legemiddel") < order.index("Bekreft versjon 5"), order

    # confirming the list with the keyboard alone: Tab to the button, Enter; what changed
    # since the last confirmation is the button's description
    gp.page.goto(list_url)
    expect(gp.page.locator("#confirm-now")).to_have_attribute("aria-describedby", "confirm-changes")
    gp.tab_to("#confirm-now")
    gp.page.keyboard.press("Enter")
    expect(gp.page.locator("#confirmed")).to_contain_text("Kari Fastlege")

    # changing a dose with the keyboard alone: Tab to the row's link, type, Tab to save
    gp.tab_to(f"Endre dose for {METFORMIN[2]}")
    gp.page.keyboard.press("Enter")
    expect(gp.page.locator("#dose-MORN")).to_be_visible()
    gp.tab_to("#dose-MORN")
    gp.page.keyboard.press("Control+A")
    gp.page.keyboard.type("3")
    expect(gp.page.locator("#dose-preview")).to_have_text("3 tabletter morgen")
    gp.tab_to("Lagre ny dose")
    gp.page.keyboard.press("Enter")
    expect(gp.page.locator(".notice").first).to_contain_text("Dosen er endret")
