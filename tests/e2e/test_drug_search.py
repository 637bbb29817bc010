"""Drug search in the browser (issue 16): a doctor types a brand and a strength and sees the
drug with its form, strength and packs; a search that cannot be made says so in Norwegian
beside the field, with what was typed kept."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from pll.catalog.generate import generate
from pll.catalog.importer import import_fest
from tests.conftest import LiveServer
from tests.e2e.conftest import Screen, login, open_patient
from tests.e2e.scenes import patient_with_medicines


@pytest.fixture
def demo_catalogue(server: LiveServer) -> None:
    """The demo catalogue at a small scale: the demo lists' drugs among invented ones."""
    extract = io.BytesIO()
    generate(extract, scale=0.02, seed=2026, demo=True)
    extract.seek(0)
    import_fest(server.db, extract, "demo", now=datetime(2026, 11, 22, tzinfo=UTC))


def search(gp: Screen, text: str) -> None:
    gp.page.locator("#q").fill(text)
    gp.page.get_by_role("button", name="Søk").click()


def test_a_brand_and_strength_finds_the_drug_with_form_strength_and_packs(
    server: LiveServer, screens, demo_catalogue: None
) -> None:
    scene = patient_with_medicines(server, (None, "N02BE01", "Paracet"))
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    gp.page.get_by_role("link", name="Nytt legemiddel").click()
    search(gp, "Imovane")
    drugs = gp.page.locator(".drug-group > label.drug")
    expect(drugs).to_have_count(2)
    expect(drugs.nth(0)).to_have_text("Imovane Tab 5 mg Tablett · 5 mg")
    expect(drugs.nth(1)).to_have_text("Imovane Tab 7,5 mg Tablett · 7,5 mg")
    gp.page.screenshot(path="/tmp/catalogue-search-imovane.png", full_page=True)

    search(gp, "Imovane 7,5")
    expect(drugs).to_have_count(1)
    expect(drugs.nth(0)).to_contain_text("Imovane Tab 7,5 mg")
    packs = gp.page.get_by_role("list", name="Pakninger av Imovane Tab 7,5 mg")
    expect(packs.locator("label")).to_have_count(2)
    expect(packs.locator("label").nth(0)).to_contain_text("Blisterpakning, 30 stk")
    expect(packs.locator("label").nth(1)).to_contain_text("Boks, 100 stk")
    # no FEST type labels in the results
    expect(gp.page.locator(".drug-results")).not_to_contain_text("Legemiddelmerkevare")
    expect(gp.page.locator(".drug-results")).not_to_contain_text("Legemiddelpakning")
    gp.page.screenshot(path="/tmp/catalogue-search-imovane-7-5.png", full_page=True)
    gp.shot("lege-legemiddelsok")


def test_a_search_of_only_a_percent_sign_says_why_beside_the_field(
    server: LiveServer, screens, demo_catalogue: None
) -> None:
    scene = patient_with_medicines(server, (None, "N02BE01", "Paracet"))
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, scene.fnr)
    gp.page.get_by_role("link", name="Nytt legemiddel").click()
    gp.expect_status(400)
    search(gp, "%")
    expect(gp.page.locator("#q-error")).to_contain_text(
        "Skriv minst én bokstav eller ett tall å søke etter."
    )
    expect(gp.page.locator("#q")).to_have_value("%")
    expect(gp.page.locator(".drug-results")).to_have_count(0)
    gp.page.screenshot(path="/tmp/catalogue-search-percent.png", full_page=True)
