"""The drug-reaction (CAVE) search offers what a reaction is about (issue 16, walked as a
GP): each substance once, with its ATC code, and its ATC class — never one row per package
or brand of the same substance. Real HTTP on both databases, the hand-written FEST extract
as the catalogue (three simvastatin drugs, one substance)."""

from __future__ import annotations

import re
from html import unescape

from tests.conftest import LiveServer
from tests.e2e.scenes import METFORMIN, patient_with_medicines
from tests.integration.test_web_reconcile import logged_in, opened
from tests.integration.test_web_reconcile_typed import _catalogue

CHOICE = re.compile(r'<li class="reaction-(\w+)"><a href="[^"]*\?atc=([^&]+)&amp;[^"]*#new-title">')


def _choices(html: str) -> list[tuple[str, str]]:
    block = html.partition('id="reaction-search"')[2].partition("</ul>")[0]
    return [(kind, unescape(atc)) for kind, atc in CHOICE.findall(block)]


def test_each_substance_is_offered_once_with_its_class(server: LiveServer) -> None:
    _catalogue(server)
    scene = patient_with_medicines(server, METFORMIN)
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        r = gp.get(f"{page}/reaksjoner", params={"q": "Simvastatin"})
        assert r.status_code == 200, r.text
        assert _choices(r.text) == [("substance", "C10AA01"), ("class", "C10AA")]
        assert "Hele gruppen: HMG-CoA-reduktasehemmere (statiner)" in r.text
        # by ATC code too: the class's substances, each once
        r = gp.get(f"{page}/reaksjoner", params={"q": "J01FA"})
        assert _choices(r.text) == [("substance", "J01FA09"), ("class", "J01FA")]
        assert "Hele gruppen: Makrolider" in r.text
