"""PLL's doctor pages inside a journal system (issue 18, SFM "med brukergrensesnitt").

A small fake journal system serves a page on its own origin. Like a real one, its server
registers a SMART EHR launch with PLL for the patient it has open (``POST /smart/launch``,
with the doctor's token) and puts PLL's launch URL in a frame. PLL lets the frame show its
pages only when the framing page's origin is one ``PLL_EMBED_ORIGINS`` lists for that
journal system; from any other origin Chromium refuses to show them.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from pll.api.app import create_app
from pll.auth.tokens import DEV_CLIENT
from tests.conftest import LiveServer, server_settings, serving
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.scenes import METFORMIN, patient_with_medicines


@dataclass
class Journal:
    """A journal system's web page with PLL in a frame, for the patient it has open."""

    token: str
    patient: str = ""
    pll: str = ""
    base: str = ""

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/", self.page)])

    def _launch_url(self) -> str:
        # server to server, as the journal system's back end does it
        answer = httpx.post(
            f"{self.pll}/smart/launch",
            json={"patient": self.patient},
            headers={
                "Authorization": f"Bearer {self.token}",
                "X-PLL-Access-Basis": "HPBEHANDLINGSRELASJON",
            },
            timeout=30,
        )
        answer.raise_for_status()
        return str(answer.json()["url"])

    async def page(self, request: Request) -> Response:
        url = await run_in_threadpool(self._launch_url)
        return HTMLResponse(
            f"""<!doctype html>
<html lang="nb"><head><meta charset="utf-8"><title>Journal</title>
<link rel="icon" href="data:,"></head>
<body>
<h1>Journalsystem – pasient {html.escape(self.patient)}</h1>
<iframe id="pll" title="Pasientens legemiddelliste" src="{html.escape(url)}"
        width="1200" height="800"></iframe>
</body></html>"""
        )


@dataclass
class Setting:
    pll: str
    listed: Journal
    unlisted: Journal


@pytest.fixture
def journals(server: LiveServer) -> Iterator[Setting]:
    """Two journal systems' pages on origins of their own, and PLL letting the first one's
    origin (only) frame the pages its launches open."""
    listed, unlisted = Journal(server.token("gp")), Journal(server.token("gp"))
    with serving(listed.app()) as listed.base, serving(unlisted.app()) as unlisted.base:
        settings = server_settings(
            server.data_dir, server.db, embed_origins=f"{DEV_CLIENT}={listed.base}"
        )
        with serving(create_app(settings, server.service)) as pll:
            listed.pll = unlisted.pll = pll
            yield Setting(pll, listed, unlisted)


def _tab(browser: Browser) -> tuple[Page, list[str]]:
    context = browser.new_context(locale="nb-NO", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    console: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        if message.type == "error":
            console.append(message.text)

    page.on("console", keep)
    page.on("pageerror", lambda exc: console.append(f"page error: {exc}"))
    return page, console


def test_a_journal_system_opens_the_patients_list_in_its_frame(
    server: LiveServer, journals: Setting, browser: Browser
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    journals.listed.patient = scene.fnr
    page, console = _tab(browser)
    try:
        page.goto(journals.listed.base + "/")
        frame = page.frame_locator("#pll")
        # the patient the journal has open: no search, no basis asked, the user logged in
        expect(frame.get_by_role("heading", name="Pasientens legemiddelliste")).to_contain_text(
            scene.fnr
        )
        expect(frame.locator("table.entries")).to_contain_text(METFORMIN[2])
        expect(frame.locator(".who")).to_contain_text("Kari Fastlege")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "journal-embedded.png"), full_page=True)
        # the doctor works in the frame: a form (session cookie and anti-forgery token)
        frame.get_by_role("button", name="Bekreft versjon").click()
        expect(frame.get_by_text("Listen er bekreftet.")).to_be_visible()
        frame.get_by_role("link", name="Historikk").click()
        expect(frame.get_by_role("heading", name="Historikk")).to_be_visible()
        assert console == []
    finally:
        page.context.close()


def test_a_page_on_an_origin_not_configured_cannot_frame_pll(
    server: LiveServer, journals: Setting, browser: Browser
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    journals.unlisted.patient = scene.fnr
    page, _ = _tab(browser)
    try:
        # Chromium reports the refusal on the framing page's console ...
        with page.expect_console_message(
            predicate=lambda m: "frame-ancestors" in m.text, timeout=10_000
        ) as refusal:
            page.goto(journals.unlisted.base + "/")
        expect(page.get_by_role("heading", name="Journalsystem")).to_be_visible()
        # the policy names the configured journal's origin, not this one
        assert journals.listed.base in refusal.value.text
        assert journals.unlisted.base not in refusal.value.text
        # ... and shows none of PLL's page in the frame
        frame = next(f for f in page.frames if f != page.main_frame)
        assert METFORMIN[2] not in frame.content()
        assert scene.fnr not in frame.content()
        assert "Pasientens legemiddelliste" not in frame.content()
    finally:
        page.context.close()
