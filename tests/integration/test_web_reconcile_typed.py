"""Samstemming against a list the doctor types in (issue 16, walked as a GP): each line meets
the entry it names whatever the form words and spacing, through the catalogue where the line
names a substance, never across strengths; a line that names no medicine is refused by its
number. Real HTTP on both databases, with the hand-written FEST extract as the catalogue."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from html import unescape

import httpx

from pll.catalog.importer import import_fest
from tests.conftest import LiveServer, snapshot
from tests.e2e.conftest import FEST_SMALL
from tests.e2e.scenes import METFORMIN, SIMVASTATIN, patient_with_medicines
from tests.integration.test_web_reconcile import csrf, differences, logged_in, opened


def _catalogue(server: LiveServer) -> None:
    import_fest(
        server.db,
        io.BytesIO(FEST_SMALL.read_bytes()),
        "small.xml",
        now=datetime(2026, 11, 22, tzinfo=UTC),
    )


def typed(client: httpx.Client, page: str, text: str) -> httpx.Response:
    return client.post(
        f"{page}/samstemming",
        data={
            "csrf": csrf(client, f"{page}/samstemming"),
            "origin": "patient",
            "patient-list": text,
        },
    )


def test_typed_names_meet_the_entries_they_name(server: LiveServer) -> None:
    """ "Metformin 500 mg" is the list's "Metformin tab 500 mg" (form word and case aside);
    "simvastatin 20mg" is "Simvastatin Fjordpharma Tab 20 mg" through the catalogue (the
    substance simvastatin, 20 mg): no drug shows twice as missing and as not in the source."""
    _catalogue(server)
    scene = patient_with_medicines(server, METFORMIN, SIMVASTATIN)
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        r = typed(gp, page, "Metformin 500 mg\nsimvastatin 20mg\n")
        assert r.status_code == 200, r.text
        assert differences(r.text) == {}
        assert "Listen og kilden stemmer overens." in r.text


def test_another_strength_is_another_medicine(server: LiveServer) -> None:
    _catalogue(server)
    scene = patient_with_medicines(server, SIMVASTATIN)
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        r = typed(gp, page, "Simvastatin 40 mg; 1 tablett kveld")
        assert r.status_code == 200, r.text
        assert set(differences(r.text)) == {"Simvastatin 40 mg", SIMVASTATIN[2]}
        assert "Mangler på listen" in r.text
        assert "Ikke i kilden" in r.text


def test_a_line_that_names_no_medicine_is_refused_by_its_number(server: LiveServer) -> None:
    _catalogue(server)
    scene = patient_with_medicines(server, METFORMIN)
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        for line in ("<script>alert(1)</script>", "Blåbærsyltetøy"):
            untouched = snapshot(server.db, audit=False)
            r = typed(gp, page, f"Metformin 500 mg\n{line}")
            assert r.status_code == 400, r.text
            said = unescape(r.text)
            assert f"Linje 2: «{line}» er ikke et legemiddel PLL kjenner." in said
            assert "<script>alert(1)</script>" not in r.text  # shown as text, never as markup
            assert f"Metformin 500 mg\n{line}</textarea>" in said  # what was typed is kept
            assert snapshot(server.db, audit=False) == untouched
