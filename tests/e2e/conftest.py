"""Browser tests: Debian's Chromium driven by Playwright, against the live server.

The browser is never downloaded: Playwright launches the ``chromium`` the test command
installs from Debian (``executable_path``). With ``CI=true`` a missing Chromium fails the run.
Every page a test opens is watched for console errors and uncaught exceptions; a test that
saw one fails. Screenshots of the main screens go to ``build/screenshots/``.

Each browser test runs on one of the two databases, half of them on each (chosen by the
test's name, so every run and every xdist worker chooses alike): the pages are driven
through both, and a browser test, the suite's most expensive kind, is paid for once. What
the pages store and read is tested on both databases by the integration tests.
``PLL_E2E_BOTH=1`` runs every browser test on both.
"""

from __future__ import annotations

import io
import os
import shutil
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, sync_playwright

from pll.catalog.importer import import_fest
from tests.conftest import PG_ADMIN_URL, LiveServer

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("PLL_SCREENSHOTS", ROOT / "build" / "screenshots"))
FEST_SMALL = ROOT / "tests" / "fixtures" / "fest" / "small.xml"
#: Flags for a closed network: no background connections to Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep each browser test on one database (see the module's docstring), unless
    PostgreSQL cannot be reached here (its half would only be skipped; CI never gets that
    far without it) or the test was named on the command line."""
    if os.environ.get("PLL_E2E_BOTH") == "1" or not _postgres_reachable():
        return
    here = Path(__file__).parent
    named = {str(arg) for arg in config.args}
    kept, dropped = [], []
    for item in items:
        backend = getattr(item, "callspec", None) and item.callspec.params.get("database")
        if (
            backend is None
            or here not in Path(str(item.path)).parents
            or any(item.nodeid.endswith(arg) or arg.endswith(item.nodeid) for arg in named)
        ):
            kept.append(item)
            continue
        name = getattr(item, "originalname", item.name)
        chosen = ("sqlite", "postgresql")[zlib.crc32(name.encode()) % 2]
        (kept if backend == chosen else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _postgres_reachable() -> bool:
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("Debian's chromium is required in CI (scripts/test.sh installs it).")
    pytest.skip("chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Per module, not per session: Playwright's synchronous API keeps an event loop running
    # in this thread while it is open, which other tests' asyncio.run() would trip over.
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Screen:
    """A browser tab on the live server that counts what a user does: clicks (and key
    presses that act like one, such as Enter on a button) and keystrokes typed."""

    page: Page
    base: str
    name: str
    clicks: int = 0
    keys: int = 0
    problems: list[str] = field(default_factory=list)
    #: error statuses a test expects a page to answer with (a refusal page is one)
    expected: list[int] = field(default_factory=list)

    def expect_status(self, status: int) -> None:
        """The next page is meant to answer ``status`` (say 403 for a refusal): the browser's
        console note about that status is then not a problem."""
        self.expected.append(status)

    def go(self, path: str) -> None:
        self.page.goto(self.base + path)

    def click(self, target: str | Locator) -> None:
        self.clicks += 1
        self._locate(target).click()

    def type(self, target: str | Locator, text: str) -> None:
        """Type into a field as a user does, one key at a time (input events fire)."""
        self.keys += len(text)
        self._locate(target).press_sequentially(text)

    def press(self, key: str) -> None:
        """A key press such as Tab or Control+A: one keystroke."""
        self.keys += 1
        self.page.keyboard.press(key)

    def tab_to(self, name: str, limit: int = 40) -> None:
        """Press Tab until the focused element is named ``name`` (its text or label; or
        ``#id``), as a keyboard user moves through the page; fails if it is not reached in
        ``limit`` presses."""
        for _ in range(limit):
            self.press("Tab")
            focused = self.page.evaluate(
                "(() => { const e = document.activeElement; return ["
                " (e.getAttribute('aria-label') || e.textContent || '').trim(), '#' + e.id]; })()"
            )
            if name in focused:
                return
        raise AssertionError(f"{name!r} is not reached with Tab")

    def choose(self, target: str | Locator, value: str) -> None:
        """Pick an option in a select: one click to open, one to choose."""
        self.clicks += 2
        self._locate(target).select_option(value)

    def count_reset(self) -> None:
        self.clicks = self.keys = 0

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def text(self, selector: str = "main") -> str:
        return self.page.locator(selector).inner_text()

    def _locate(self, target: str | Locator) -> Locator:
        return self.page.locator(target) if isinstance(target, str) else target


def _watch(page: Page, problems: list[str]) -> None:
    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))


@pytest.fixture
def screens(browser: Browser, server: LiveServer) -> Iterator[Any]:
    """Opens tabs, each in its own browser context (its own cookies: its own login)."""
    opened: list[Screen] = []

    def open_screen(name: str) -> Screen:
        context = browser.new_context(locale="nb-NO", viewport={"width": 1280, "height": 900})
        page = context.new_page()
        screen = Screen(page, server.base, name)
        _watch(page, screen.problems)
        opened.append(screen)
        return screen

    yield open_screen
    problems = [p for s in opened for p in _unexpected(s)]
    for screen in opened:
        screen.page.context.close()
    assert not problems, problems


def _unexpected(screen: Screen) -> list[str]:
    left = list(screen.expected)
    out = []
    for problem in screen.problems:
        status = next((n for n in left if f"status of {n} " in problem), None)
        if status is not None:
            left.remove(status)
        else:
            out.append(problem)
    return out


def login(screen: Screen, persona: str, pid: str | None = None) -> None:
    """Log in with the development persona chooser (not counted: it is not a task)."""
    screen.go("/logg-inn")
    screen.page.locator(f"input[name=persona][value={persona}]").check()
    if pid:
        screen.page.locator("#pid").fill(pid)
    screen.page.get_by_role("button", name="Logg inn").click()


def open_patient(screen: Screen, fnr: str, basis: str | None = None) -> None:
    screen.go("/lege")
    screen.page.locator("#fnr").fill(fnr)
    if basis:
        screen.page.locator("#basis").select_option(basis)
    screen.page.get_by_role("button", name="Åpne pasientens legemiddelliste").click()


@pytest.fixture
def catalogue(server: LiveServer) -> None:
    """The hand-written FEST extract (warfarin, simvastatin, clarithromycin, ...)."""
    import_fest(
        server.db,
        io.BytesIO(FEST_SMALL.read_bytes()),
        "small.xml",
        now=datetime(2026, 11, 22, tzinfo=UTC),
    )
