"""The prescribing and renewal pages offer the quantity units of the drug's form and accept
every unit they offer (issue 16, second review): one table, the domain's, for both. Over
real HTTP, on both databases."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import httpx
import pytest

from pll.catalog.importer import import_fest
from tests.conftest import LiveServer, snapshot
from tests.e2e.scenes import SIMVASTATIN, patient_with_medicines
from tests.integration.builders import FEST_SMALL, new_fnr, new_patient_with_list
from tests.integration.test_web import csrf, logged_in, opened

#: a form, the dose unit it takes, and the quantity units its pages must offer
FORMS = [
    ("Krem", "påføring", ["pakning", "g", "ml"]),
    ("Mikstur", "ml", ["pakning", "ml"]),
]


def _every_tablet_made(server: LiveServer, form: str) -> None:
    xml = FEST_SMALL.read_text(encoding="utf-8").replace('DN="Tablett"', f'DN="{form}"')
    import_fest(
        server.db,
        io.BytesIO(xml.encode()),
        f"small-{form}.xml",
        now=datetime(2026, 11, 22, tzinfo=UTC),
    )


def _offered(html: str) -> list[str]:
    select = html.split('id="rx-unit"')[1].split("</select>", maxsplit=1)[0]
    return re.findall(r'<option value="([^"]+)"', select)


def _dosed_in(gp: httpx.Client, entry: str, dose_unit: str) -> None:
    """The entry dosed in a unit its (new) form takes, so that a renewal is not refused for
    its dose."""
    dose = f"{entry}/dose"
    html = gp.get(dose).text
    fields = {"csrf": _field(html, "csrf"), "version": _field(html, "version")}
    fields |= {"dose-mode": "fixed", "dose-unit": dose_unit, "dose-MORN": "1"}
    assert gp.post(dose, data=fields).status_code == 303


def _field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name}"
    return found.group(1)


@pytest.mark.parametrize(("form", "dose_unit", "units"), FORMS)
def test_every_quantity_unit_offered_when_prescribing_is_accepted(
    server: LiveServer, form: str, dose_unit: str, units: list[str]
) -> None:
    _every_tablet_made(server, form)
    with logged_in(server, "gp") as gp:
        for unit in units:
            # a patient each, so that no prescription is another's duplicate
            fnr = new_fnr()
            with server.client("gp") as api:
                new_patient_with_list(api, fnr)
            page = opened(gp, fnr)
            r = gp.get(f"{page}/ny", params={"q": "Simvastatin Fjordpharma"})
            assert _offered(r.text) == units
            data = {
                "csrf": csrf(gp, f"{page}/ny"),
                "q": "Simvastatin Fjordpharma",
                "drug": _field(r.text, "drug"),
                "dose-mode": "fixed",
                "dose-unit": dose_unit,
                "dose-EVE": "1",
                "eresept": "1",
                "rx-quantity": "2",
                "rx-unit": unit,
            }
            saved = gp.post(f"{page}/ny", data=data)
            assert saved.status_code == 303, (unit, saved.text)


@pytest.mark.parametrize(("form", "dose_unit", "units"), FORMS)
def test_every_quantity_unit_offered_when_renewing_is_accepted(
    server: LiveServer, form: str, dose_unit: str, units: list[str]
) -> None:
    scene = patient_with_medicines(server, SIMVASTATIN)
    _every_tablet_made(server, form)
    entry_id = scene.entries[SIMVASTATIN[2]]
    with logged_in(server, "gp") as gp:
        entry = f"{opened(gp, scene.fnr)}/legemiddel/{entry_id}"
        _dosed_in(gp, entry, dose_unit)
        renew = f"{entry}/forny"
        for unit in units:
            html = gp.get(renew).text
            assert _offered(html) == units
            data = {
                "csrf": _field(html, "csrf"),
                "version": _field(html, "version"),
                "prescription": _field(html, "prescription"),
                "rx-quantity": "2",
                "rx-unit": unit,
            }
            r = gp.post(renew, data=data)
            assert r.status_code == 303, (unit, r.text)


def test_a_unit_the_form_is_not_dispensed_in_is_refused_beside_the_field(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, SIMVASTATIN)
    _every_tablet_made(server, "Krem")
    entry_id = scene.entries[SIMVASTATIN[2]]
    with logged_in(server, "gp") as gp:
        entry = f"{opened(gp, scene.fnr)}/legemiddel/{entry_id}"
        _dosed_in(gp, entry, "påføring")
        renew = f"{entry}/forny"
        html = gp.get(renew).text
        data = {
            "csrf": _field(html, "csrf"),
            "version": _field(html, "version"),
            "prescription": _field(html, "prescription"),
            "rx-quantity": "30",
            "rx-unit": "tablett",
        }
        before = snapshot(server.db, audit=False)
        r: httpx.Response = gp.post(renew, data=data)
        assert r.status_code == 400
        assert "Legemiddelet er Krem og foreskrives i pakning, g, ml, ikke i «tablett»." in r.text
        assert '<p class="field-error" id="rx-unit-error">' in r.text
        assert snapshot(server.db, audit=False) == before
