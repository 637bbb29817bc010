"""The rollout team's statistics dashboard over real HTTP (issue 8): ``/statistikk``.

The data are made the way a journal system makes them, over the FHIR API; the organisation
register is the demo one (Bergen legesenter, the GP persona's office, is a fastlege in Vest);
the statistics are counted by running the consumer, as ``pll serve`` does in the background.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser

import httpx
import pytest

from pll.services.stats import Statistics
from pll.stats import organisations
from pll.stats.indicators import MUNICIPALITY_EXTENSION, MUNICIPALITY_SYSTEM
from tests.conftest import LiveServer
from tests.e2e.scenes import METFORMIN, add_medicine
from tests.integration.builders import new_list, ok, patient
from tests.integration.test_web import browser, logged_in

BERGEN = ("4601", "Bergen")  # Vest
TROMSO = ("5501", "Tromsø")  # Nord
SVG = re.compile(r"<svg\b[^>]*>")
SPACE = re.compile(r"[ \t\r\n]+")


@dataclass
class Table:
    caption: str = ""
    #: each row: the row's attributes and the text of its cells (th and td)
    rows: list[tuple[dict[str, str], list[str]]] = field(default_factory=list)
    #: the row's tbody id, per row
    groups: list[str] = field(default_factory=list)

    def header(self) -> list[str]:
        return self.rows[0][1]

    def row(self, first: str, group: str | None = None) -> list[str]:
        """The cells of the row whose first header (after a rowspan's) is ``first``."""
        for (_, cells), where in zip(self.rows, self.groups, strict=True):
            if (group is None or where == group) and first in cells[:2]:
                return cells
        raise AssertionError(f"no row {first!r} in {self.caption!r}")


class Tables(HTMLParser):
    """Every table of a page, cell texts unescaped, white space collapsed."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[Table] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._in_caption = False
        self._group = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append(Table())
        elif tag == "caption":
            self._in_caption = True
        elif tag == "tbody":
            self._group = dict(attrs).get("id") or ""
        elif tag == "tr":
            self._row = []
            self.tables[-1].rows.append(({k: v or "" for k, v in attrs}, self._row))
            self.tables[-1].groups.append(self._group)
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption":
            self._in_caption = False
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            # ASCII white space only: the no-break spaces in numbers are kept
            self._row.append(SPACE.sub(" ", "".join(self._cell)).strip())
            self._cell = None
        elif tag == "tbody":
            self._group = ""

    def handle_data(self, data: str) -> None:
        if self._in_caption:
            self.tables[-1].caption += data.strip()
        elif self._cell is not None:
            self._cell.append(data)

    def named(self, caption: str) -> Table:
        return next(t for t in self.tables if t.caption.startswith(caption))


def patient_in(gp: httpx.Client, place: tuple[str, str]) -> str:
    """A patient living in ``place`` (HL7 Norway's municipality code on the home address),
    with a PLL and one medicine on it; returns the patient id."""
    code, name = place
    body = patient()
    body["address"] = [
        {
            "use": "home",
            "district": name,
            "_district": {
                "extension": [
                    {
                        "url": MUNICIPALITY_EXTENSION,
                        "valueCoding": {"system": MUNICIPALITY_SYSTEM, "code": code},
                    }
                ]
            },
        }
    ]
    pid = str(ok(gp.post("/fhir/Patient", json=body), 201)["id"])
    new_list(gp, pid)
    add_medicine(gp, pid, METFORMIN)
    return pid


def counted(server: LiveServer, bergen: int, tromso: int) -> Statistics:
    stats = Statistics(server.db, server.service.clock)
    stats.register(organisations.demo())
    with server.client("gp") as gp:
        for _ in range(bergen):
            patient_in(gp, BERGEN)
        for _ in range(tromso):
            patient_in(gp, TROMSO)
    stats.catch_up()
    return stats


def number(text: str) -> float:
    return float(text.replace("\u00a0", "").replace(" ", "").replace(",", "."))


@pytest.fixture
def page(server: LiveServer) -> tuple[httpx.Response, Statistics]:
    stats = counted(server, bergen=6, tromso=1)
    with browser(server) as client:  # no login: published statistics
        return client.get("/statistikk"), stats


def test_the_dashboard_is_open_and_safe_under_the_content_security_policy(
    page: tuple[httpx.Response, Statistics],
) -> None:
    r, _ = page
    assert r.status_code == 200, r.text
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    assert "unsafe-inline" not in csp
    html = r.text
    assert 'lang="nb"' in html
    assert html.count("<h1") == 1
    assert "Logg ut" not in html  # anonymous: no user, and no error either
    # six charts: new lists per week, four regions against the ambition, confirmation age
    svgs = SVG.findall(html)
    assert len(svgs) == 6, svgs
    assert all('role="img"' in tag and "aria-labelledby=" in tag for tag in svgs)
    # nothing the policy would block: no style attribute or element, no inline script
    assert not re.search(r"\sstyle\s*=", html)
    assert "<style" not in html
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.DOTALL)
    assert scripts, "the page's own script is loaded from /static"
    assert all('src="/static/' in attrs and not body.strip() for attrs, body in scripts)
    assert "Tallene er oppdatert til hendelse" in html


def test_small_counts_are_shown_as_under_five_and_never_as_a_number(
    page: tuple[httpx.Response, Statistics],
) -> None:
    r, stats = page
    position, newest = stats.updated()
    assert position == newest > 0
    assert f"Tallene er oppdatert til hendelse {position} av {newest}" in unescape(r.text)
    tables = Tables(r.text)

    key = tables.named("Nøkkeltall")
    areas = key.header()[1:]
    assert areas[:4] == ["Nord", "Midt-Norge", "Vest", "Sør-Øst"]
    assert areas[-1] == "Hele landet"
    lists = dict(zip(areas, key.row("Pasienter med PLL")[1:], strict=True))
    assert lists["Vest"] == "6"
    assert lists["Nord"] == "<5"  # one patient in Tromsø: never "1"
    assert lists["Hele landet"] == "7"
    patient_rows = [cells for attrs, cells in key.rows if "patient-count" in attrs.get("class", "")]
    assert len(patient_rows) == 4  # lists, paper multidose, emergency accesses, open cases
    for cells in patient_rows:
        for cell in cells[1:]:
            assert cell == "<5" or number(cell) >= 5, (cells[0], cell)

    weekly = tables.named("Nye legemiddellister per uke")
    regions = weekly.header()[1:]
    this_week = dict(zip(regions, weekly.rows[-1][1][1:], strict=True))
    assert this_week["Vest"] == "6"
    assert this_week["Nord"] == "<5"
    assert len(weekly.rows) == 1 + 12  # the header and twelve weeks
    for _, cells in weekly.rows[1:]:
        assert all(c == "<5" or number(c) >= 5 for c in cells[1:]), cells

    # in the chart a suppressed count is a gap, not a point: Nord has no value to show
    desc = re.search(r'<desc id="chart-nye-legemiddellister-per-uke-\d+-desc">(.*?)</desc>', r.text)
    assert desc, "the line chart describes its data"
    assert "Nord ingen verdi" in unescape(desc.group(1))
    assert re.search(r"Vest 6 \(uke \d+\)", unescape(desc.group(1)))

    freshness = tables.named("Legemiddellister etter når de sist ble samstemt")
    vest = freshness.row("Vest")
    assert vest[-1] == "6"  # lists in all
    assert all(c == "<5" or number(c) >= 5 for c in vest[1:])


def test_the_rollout_shows_the_gps_office_live_against_the_ambition(
    page: tuple[httpx.Response, Statistics],
) -> None:
    r, stats = page
    rollout = Tables(r.text).named("Virksomheter i gang")
    vest = rollout.row("Fastlege", group="utrulling-vest")
    # Bergen legesenter (974600951) is one of Vest's six GP offices in the demo register
    assert vest[:4] == ["Vest", "Fastlege", "1 av 6", "16,7\u00a0%"]
    expected = next(
        row
        for row in stats.rollout()
        if row["region"] == "Vest" and row["actor_type"] == "fastlege"
    )
    assert vest[-1] == str(expected["status"]).capitalize()
    assert vest[4] == "60\u00a0%"  # the 2026 mandate: 60 % of GPs in Vest
    # the other regions' GP offices have not started
    nord = rollout.row("Fastlege", group="utrulling-nord")
    assert nord[:2] == ["Nord", "Fastlege"]
    assert nord[2].startswith("0 av ")
    # every region × actor type, with its status as a coloured tag
    assert len(rollout.rows) == 1 + 4 * 6
    tags = re.findall(r'<span class="tag (goal-[a-z-]+)">', r.text)
    assert len(tags) == 4 * 6
    assert all(
        t in {"goal-reached", "goal-on-track", "goal-late", "goal-behind", "goal-none"}
        for t in tags
    )


def test_the_exports_it_links_to_answer(server: LiveServer) -> None:
    counted(server, bergen=5, tromso=0)
    with browser(server) as client:
        html = client.get("/statistikk").text
        links = [unescape(h) for h in re.findall(r'href="(/stats/[^"]+)"', html)]
        assert len(links) == 6
        for link in links:
            answer = client.get(link)
            assert answer.status_code == 200, link
            kind = "text/csv" if "format=csv" in link else "application/json"
            assert answer.headers["content-type"].startswith(kind), link
        csv = client.get("/stats/snapshot?by=region&format=csv").text
    vest = next(line for line in csv.splitlines() if line.startswith("Vest,"))
    assert vest.split(",")[1] == "5"  # the page's figure is the export's


def test_a_bad_number_of_weeks_gets_a_page_in_norwegian(server: LiveServer) -> None:
    with browser(server) as client:
        for bad in ("abc", "3", "53", "-4", "12.5", "１２"):
            r = client.get("/statistikk", params={"uker": bad})
            assert r.status_code == 400, bad
            assert "Antall uker (uker) må være et helt tall fra 4 til 52" in r.text
            assert 'lang="nb"' in r.text
            assert "Content-Security-Policy" in r.headers
        r = client.get("/statistikk", params={"uker": "4"})
        assert r.status_code == 200
        weekly = Tables(r.text).named("Nye legemiddellister per uke")
        assert len(weekly.rows) == 1 + 4


def test_a_logged_in_user_sees_the_dashboard_with_their_name(server: LiveServer) -> None:
    with logged_in(server, "gp") as gp:
        r = gp.get("/statistikk")
    assert r.status_code == 200
    assert "Kari Fastlege" in r.text
    assert "Logg ut" in r.text
    assert len(SVG.findall(r.text)) == 6


def test_an_empty_register_and_no_data_still_give_a_page(server: LiveServer) -> None:
    with browser(server) as client:
        r = client.get("/statistikk")
    assert r.status_code == 200
    assert len(SVG.findall(r.text)) == 6
    assert "Ingen data" in r.text
    assert "Tallene er oppdatert til hendelse 0 av 0" in r.text
