"""Overrides kept and shown, relay-baton conflicts and the baton, in the doctor's pages over
real HTTP on both databases (DESIGN §3 rules 2 and 6, issue 16).

An override reason typed on the findings page is kept with the list version and shown in
the history, in the diff, on the entries it concerns and on the forms that change them; the
conflict page names the drug and shows both doctors' values in Norwegian, and reopens the
form with this doctor's values instead of overwriting; a change form says who holds the
baton when someone else does."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from html import unescape

from pll.catalog.importer import import_fest
from tests.conftest import LiveServer, snapshot
from tests.e2e.scenes import METFORMIN, SIMVASTATIN, patient_with_medicines
from tests.integration.test_web import _change_dose, csrf, logged_in, opened
from tests.integration.test_web_findings import CLARITHRO, SMALL, form, send

REASON = "Vurdert: kort kur, statinet pauses i ti dager"
CLARITHRO_NAME = "Klaritromycin Fjordpharma Tab 500 mg"


def text(html: str) -> str:
    """A page's text, tags gone and spaces folded, as a reader sees it."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def entry_row(html: str, drug: str) -> str:
    match = re.search(rf'<tr id="entry-[^"]+" data-drug="{re.escape(drug)}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {drug}"
    return text(match.group(1))


def entry_id_of(html: str, drug: str) -> str:
    match = re.search(rf'<tr id="entry-([^"]+)" data-drug="{re.escape(drug)}">', html)
    assert match, f"no row for {drug}"
    return match.group(1)


def test_an_override_typed_on_the_findings_page_is_kept_and_shown(server: LiveServer) -> None:
    """Prescribing a drug with a relevance-1 interaction, overridden with a reason: the
    version keeps the reason, and the history (Hvorfor and the diff), both entries' rows on
    the list and the dose form of each show it with the finding it accepted."""
    import_fest(
        server.db,
        io.BytesIO(SMALL.read_bytes()),
        "small.xml",
        now=datetime(2026, 11, 22, tzinfo=UTC),
    )
    scene = patient_with_medicines(server, SIMVASTATIN)
    prescribe = f"/lege/pasient/{scene.pid}/ny"
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        fields = {
            "csrf": csrf(gp, prescribe),
            "drug": CLARITHRO,
            "dose-mode": "fixed",
            "dose-unit": "tablett",
            "dose-MORN": "1",
            "treatment": "1",
        }
        r = gp.post(prescribe, data=fields)
        assert "Beslutningsstøtten fant noe" in r.text
        r = send(gp, form(r.text, prescribe), ("override-reason", REASON))
        assert r.status_code == 303, r.text

        listed = gp.get(page).text
        # the findings just overridden are noticed as severe, not in the success green
        assert re.search(
            r'<p class="notice error" role="alert"><strong>Alvorlig:</strong> Interaksjon', listed
        )
        for drug in (CLARITHRO_NAME, SIMVASTATIN[2]):
            row = entry_row(listed, drug)
            assert f"Overstyrt: {REASON} (Interaksjon " in row, row
            assert "Bør unngås" in row

        history = text(gp.get(f"{page}/historikk").text)
        # the newest version's Hvorfor, and the diff from the version before it
        assert history.count(f"Overstyrt: {REASON} (Interaksjon Simvastatin") == 1
        assert "Overstyrt i versjon" in history
        assert REASON in history

        dose_form = text(
            gp.get(f"{page}/legemiddel/{entry_id_of(listed, SIMVASTATIN[2])}/dose").text
        )
        assert f"Overstyrt: {REASON} (Interaksjon" in dose_form
        # the GP made the last change, so the GP holds the baton: no word about it
        assert "Stafettpinnen holdes av" not in dose_form


def test_the_conflict_page_shows_both_values_and_reopens_the_form_with_mine(
    server: LiveServer,
) -> None:
    """The hospital changes the dose while the GP has the dose form open: the GP's save is
    refused with a page that names the drug and shows, in Norwegian, the dose the hospital
    saved beside the one the GP tried; 'Gjør min endring på den nye versjonen' opens the
    form on the new version with the GP's values, and saves only when the GP saves."""
    scene = patient_with_medicines(server, METFORMIN)
    entry_id = scene.entries[METFORMIN[2]]
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        dose = f"{page}/legemiddel/{entry_id}/dose"
        token = csrf(gp, dose)  # the GP opens the form on version 1 of the entry
        _change_dose(server, entry_id, 4)
        before = snapshot(server.db, audit=False)
        mine = {
            "csrf": token,
            "version": "1",
            "dose-mode": "fixed",
            "dose-unit": "tablett",
            "dose-MORN": "2",
            "dose-EVE": "1",
        }
        r = gp.post(dose, data=mine)
        assert r.status_code == 200, r.text
        assert snapshot(server.db, audit=False) == before
        shown = text(r.text)
        assert f"{METFORMIN[2]} er endret av en annen" in shown
        assert "Ola Sykehuslege" in shown
        row = re.search(r"<tr><th scope=\"row\">Dosering</th>(.*?)</tr>", r.text, re.S)
        assert row, r.text
        cells = [text(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))]
        assert cells == [
            "1 tablett morgen",
            "4 tabletter morgen",
            "2 tabletter morgen og 1 tablett kveld",
        ]
        assert ">dosage<" not in r.text
        assert '"doseQuantity"' not in r.text
        # reopening is a link to the form, not a post that saves
        assert f'<a class="button primary" href="{dose}">Gjør min endring' in r.text

        reopened = gp.get(dose).text
        assert snapshot(server.db, audit=False) == before
        assert 'name="version" value="2"' in reopened  # the new version
        assert re.search(r'id="dose-MORN" name="dose-MORN" value="2"', reopened)
        assert re.search(r'id="dose-EVE" name="dose-EVE" value="1"', reopened)
        assert "Skjemaet viser endringen du prøvde å lagre" in text(reopened)
        assert "Stafettpinnen holdes av Ola Sykehuslege" in text(reopened)
        # once: a fresh visit shows the entry as it is
        assert 'id="dose-MORN" name="dose-MORN" value="4"' in gp.get(dose).text

        r = gp.post(dose, data={**mine, "csrf": csrf(gp, dose), "version": "2"})
        assert r.status_code == 303, r.text
        assert "2 tabletter morgen og 1 tablett kveld" in gp.get(page).text


def test_a_change_form_names_the_baton_holder_when_it_is_someone_else(
    server: LiveServer,
) -> None:
    """The hospital made the last change: the GP's forms say who holds the baton and since
    when, before saving; once the GP has saved, the GP holds it and the forms say nothing."""
    scene = patient_with_medicines(server, METFORMIN)
    entry_id = scene.entries[METFORMIN[2]]
    _change_dose(server, entry_id, 4)
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        for path in (f"legemiddel/{entry_id}/dose", f"legemiddel/{entry_id}/seponer", "ny"):
            shown = text(gp.get(f"{page}/{path}").text)
            assert re.search(
                r"Stafettpinnen holdes av Ola Sykehuslege, HPR 9144897, Haukeland "
                r"universitetssjukehus siden \d\d\.\d\d\.\d{4} kl\. \d\d:\d\d\. Når du lagrer, "
                r"tar du den over\.",
                shown,
            ), (path, shown)
        r = gp.post(
            f"{page}/legemiddel/{entry_id}/status",
            data={"csrf": csrf(gp, page), "version": "2", "action": "pause"},
        )
        assert r.status_code == 303, r.text
        assert "Stafettpinnen holdes av" not in gp.get(f"{page}/legemiddel/{entry_id}/dose").text
