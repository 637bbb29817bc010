"""The demo as a GP walks it, in a real browser (issue 16): the GP persona's patient shows
the penicillin CAVE in the banner and the interacting apixaban and sertraline on the list;
the second patient's atorvastatin carries the GP's override of the statin reaction."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from playwright.sync_api import expect

from pll.catalog.generate import generate
from pll.catalog.importer import import_fest
from pll.services import demo_stories as stories
from pll.services.demo import create_demo
from tests.conftest import LiveServer
from tests.e2e.conftest import Screen, login, open_patient


def test_the_demo_shows_cave_an_override_and_an_interacting_pair(
    server: LiveServer, screens
) -> None:
    extract = io.BytesIO()
    generate(extract, scale=0.02, seed=2026, demo=True)
    extract.seek(0)
    import_fest(server.db, extract, "demo", now=datetime.now(UTC))
    numbers = create_demo(server.service, 12, seed=2026)
    gp: Screen = screens("gp")
    login(gp, "gp")

    open_patient(gp, numbers[0])
    expect(gp.page.locator("#cave")).to_contain_text("Penicilliner (Urtikaria")
    in_use = gp.page.locator("table.entries").first
    expect(in_use).to_contain_text("Eliquis Tab 5 mg")
    expect(in_use).to_contain_text("Zoloft Tab 50 mg")
    expect(in_use).not_to_contain_text("Apocillin")
    gp.page.screenshot(path="/tmp/demo2-first-patient.png", full_page=True)

    open_patient(gp, numbers[1])
    expect(gp.page.locator("#cave")).to_contain_text("Statiner (myalgi på simvastatin)")
    row = gp.page.locator('tr[data-drug="Lipitor Tab 20 mg"]')
    expect(row).to_contain_text(f"Overstyrt: {stories.STATIN_OVERRIDE}")
    gp.page.screenshot(path="/tmp/demo2-statin-override.png", full_page=True)

    # a list whose course has ended: Seponert with the reason, no longer "I bruk"
    open_patient(gp, numbers[2])
    gp.page.screenshot(path="/tmp/demo2-course-ended.png", full_page=True)
