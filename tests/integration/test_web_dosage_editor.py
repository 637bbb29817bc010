"""The dosage editor over real HTTP, on both databases (issue 16): weekly, interval and
tapering doses are saved as structured FHIR and open again in their own mode; a value typed in
another mode is refused by name, never dropped; the unit select offers the units the drug's
form takes, and the server refuses any other."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from pll.catalog.importer import import_fest
from tests.conftest import LiveServer, snapshot
from tests.e2e.scenes import METFORMIN, SIMVASTATIN, patient_with_medicines
from tests.integration.builders import FEST_SMALL, ok
from tests.integration.test_multidose import params, pharmacy
from tests.integration.test_web import csrf, logged_in, opened

VERSION = re.compile(r'name="version" value="([0-9]+)"')
DAY = {"value": 1, "unit": "døgn"}


def _dose_form(gp: httpx.Client, page: str, entry_id: str) -> tuple[str, str, str]:
    """The dose page's html, its anti-forgery token and the entry version it shows."""
    r = gp.get(f"{page}/legemiddel/{entry_id}/dose")
    assert r.status_code == 200, r.text
    token = re.search(r'name="csrf" value="([^"]+)"', r.text)
    version = VERSION.search(r.text)
    assert token
    assert version
    return r.text, token.group(1), version.group(1)


def _post_dose(
    gp: httpx.Client, page: str, entry_id: str, fields: dict[str, str]
) -> httpx.Response:
    _, token, version = _dose_form(gp, page, entry_id)
    return gp.post(
        f"{page}/legemiddel/{entry_id}/dose", data={"csrf": token, "version": version, **fields}
    )


def _dosage(server: LiveServer, entry_id: str) -> list[dict[str, Any]]:
    with server.client("gp") as api:
        dosage: list[dict[str, Any]] = ok(api.get(f"/fhir/MedicationStatement/{entry_id}"))[
            "dosage"
        ]
        return dosage


def _checked(html: str, name: str, value: str) -> bool:
    return bool(re.search(rf'name="{name}" value="{value}" checked', html))


def _filled(html: str, name: str, value: str) -> bool:
    return f'name="{name}" value="{value}"' in html


CASES = [
    pytest.param(
        {"dose-mode": "week", "dose-unit": "tablett", "dose-week": "2", "dose-week-mon": "1"},
        "2 tabletter 1 gang i uken (mandag)",
        [
            {
                "timing": {
                    "repeat": {
                        "frequency": 1,
                        "period": 1,
                        "periodUnit": "wk",
                        "dayOfWeek": ["mon"],
                    }
                },
                "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "tablett"}}],
            }
        ],
        id="weekly",
    ),
    pytest.param(
        {"dose-mode": "interval", "dose-unit": "tablett", "dose-int": "1", "dose-int-every": "2"},
        "1 tablett annenhver dag",
        [
            {
                "timing": {"repeat": {"frequency": 1, "period": 2, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablett"}}],
            }
        ],
        id="interval",
    ),
    pytest.param(
        {
            "dose-mode": "taper",
            "dose-unit": "tablett",
            "dose-step1-MORN": "2",
            "dose-step1-EVE": "2",
            "dose-step1-length": "3",
            "dose-step1-unit": "d",
            "dose-step2-MORN": "1",
            "dose-step2-length": "1",
            "dose-step2-unit": "wk",
            "dose-step3-MORN": "0,5",
        },
        "2 tabletter morgen og kveld i 3 dager, deretter 1 tablett morgen i 1 uke, "
        "deretter 0,5 tablett morgen",
        None,
        id="tapering",
    ),
]


@pytest.mark.parametrize(("fields", "text", "structure"), CASES)
def test_a_dose_from_the_editor_is_saved_structured_and_opens_again_in_its_mode(
    server: LiveServer,
    fields: dict[str, str],
    text: str,
    structure: list[dict[str, Any]] | None,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    entry_id = scene.entries[METFORMIN[2]]
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        r = gp.get("/lege/dosering", params=fields)
        assert r.json() == {"ok": True, "text": text}  # the live preview says it first
        r = _post_dose(gp, page, entry_id, fields)
        assert r.status_code == 303, r.text
        saved = _dosage(server, entry_id)
        assert saved[0]["text"] == text
        if structure is not None:
            assert [{k: v for k, v in d.items() if k != "text"} for d in saved] == structure
        else:  # tapering: three steps one after the other, all but the last bounded
            assert [d["sequence"] for d in saved] == [1, 2, 3]
            assert [d["timing"]["repeat"].get("boundsDuration", {}).get("code") for d in saved] == [
                "d",
                "wk",
                None,
            ]
        assert text in gp.get(page).text  # the list shows it
        html, _, _ = _dose_form(gp, page, entry_id)
        assert _checked(html, "dose-mode", fields["dose-mode"])
        for name, value in fields.items():
            if name.startswith("dose-week-"):
                assert f'id="{name}" name="{name}" value="1" checked' in html, name
            elif name not in ("dose-mode", "dose-unit"):
                assert _filled(html, name, value) or re.search(
                    rf'name="{name}".*<option value="{value}" selected', html, re.S
                ), name


@pytest.mark.parametrize(
    ("fields", "named", "where"),
    [
        (  # structured fields filled, then free text chosen
            {"dose-mode": "text", "dose-text": "Som avtalt", "dose-EVE": "2"},
            "«Faste tider» (Kveld: 2)",
            "dose-EVE",
        ),
        (  # free text typed, then a structured mode chosen
            {
                "dose-mode": "week",
                "dose-week": "2",
                "dose-week-mon": "1",
                "dose-text": "Hver mandag",
            },
            "«Fritekst» (Dosering som tekst: Hver mandag)",
            "dose-text",
        ),
        (
            {"dose-mode": "fixed", "dose-MORN": "1", "dose-int": "1", "dose-int-EVE": "1"},
            "«Med intervall» (Mengde: 1, kveld)",
            "dose-int",
        ),
    ],
)
def test_what_was_typed_in_another_mode_is_refused_by_name_and_kept_on_the_form(
    server: LiveServer, fields: dict[str, str], named: str, where: str
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    entry_id = scene.entries[METFORMIN[2]]
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        before = snapshot(server.db, audit=False)
        r = _post_dose(gp, page, entry_id, fields)
        assert r.status_code == 400, r.text
        assert named in r.text
        assert "ville ikke blitt lagret" in r.text
        assert f'<p class="field-error" id="{where}-error">' in r.text  # beside the field
        assert _checked(r.text, "dose-mode", fields["dose-mode"])
        for name, value in fields.items():
            if name != "dose-mode" and value != "1":
                assert _filled(r.text, name, value), name
        assert snapshot(server.db, audit=False) == before
        assert gp.get("/lege/dosering", params=fields).json()["ok"] is False


def test_the_entrys_own_dose_is_replaced_when_another_mode_is_chosen(server: LiveServer) -> None:
    """The dose page fills in the current dose (1 tablett morgen); choosing weekly replaces it
    without the doctor having to clear the old fields."""
    scene = patient_with_medicines(server, METFORMIN)
    entry_id = scene.entries[METFORMIN[2]]
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        html, _, _ = _dose_form(gp, page, entry_id)
        assert 'name="was-dose-MORN" value="1"' in html
        assert _filled(html, "dose-MORN", "1")
        fields = {
            "dose-mode": "week",
            "dose-MORN": "1",
            "was-dose-MORN": "1",
            "dose-week": "2",
            "dose-week-mon": "1",
        }
        assert _post_dose(gp, page, entry_id, fields).status_code == 303
        assert _dosage(server, entry_id)[0]["text"] == "2 tabletter 1 gang i uken (mandag)"


def _every_drug_a_cream(server: LiveServer) -> None:
    """The small FEST extract imported with every tablet made a cream ("Krem")."""
    xml = FEST_SMALL.read_text(encoding="utf-8").replace('DN="Tablett"', 'DN="Krem"')
    import_fest(
        server.db,
        io.BytesIO(xml.encode()),
        "small-krem.xml",
        now=datetime(2026, 11, 22, tzinfo=UTC),
    )


def test_the_editor_offers_the_units_the_drugs_form_takes_and_refuses_others(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, SIMVASTATIN, METFORMIN)
    # then a FEST extract in which every drug of the small one is a cream (a tablet dose of a
    # cream is refused when prescribed, so the entries come first)
    _every_drug_a_cream(server)
    cream, unknown = scene.entries[SIMVASTATIN[2]], scene.entries[METFORMIN[2]]
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        html, _, _ = _dose_form(gp, page, cream)
        select = html.split('id="dose-unit"')[1].split("</select>")[0]
        assert re.findall(r'<option value="([^"]+)"', select) == ["påføring"]
        assert re.search(r'<option value="påføring" selected', html)
        # a drug PLL has no form for (named by text only) may be dosed in any unit
        html, _, _ = _dose_form(gp, page, unknown)
        assert '<option value="tablett" selected' in html
        assert '<option value="påføring"' in html
        before = snapshot(server.db, audit=False)
        r = _post_dose(
            gp, page, cream, {"dose-mode": "fixed", "dose-unit": "tablett", "dose-MORN": "1"}
        )
        assert r.status_code == 400
        assert "Krem doseres i påføring, ikke i «tablett»." in r.text
        assert '<p class="field-error" id="dose-unit-error">' in r.text
        assert _filled(r.text, "dose-MORN", "1")
        assert snapshot(server.db, audit=False) == before
        r = _post_dose(
            gp, page, cream, {"dose-mode": "fixed", "dose-unit": "påføring", "dose-MORN": "1"}
        )
        assert r.status_code == 303
        # prescribing: the drug found is a cream, so its unit comes first and is the default
        r = gp.get(f"{page}/ny", params={"q": "Simvastatin Fjordpharma"})
        assert re.search(r'<option value="påføring" selected', r.text)
        token = csrf(gp, f"{page}/ny?q=Simvastatin")
        drug = re.search(r'name="drug" value="([^"]+)"', r.text)
        assert drug
        before = snapshot(server.db, audit=False)
        r = gp.post(
            f"{page}/ny",
            data={
                "csrf": token,
                "q": "Simvastatin Fjordpharma",
                "drug": drug.group(1),
                "dose-mode": "fixed",
                "dose-unit": "tablett",
                "dose-EVE": "1",
                "indication": "Eksem",
            },
        )
        assert r.status_code == 400
        assert "doseres i påføring" in r.text
        assert _filled(r.text, "dose-EVE", "1")
        assert _filled(r.text, "indication", "Eksem")
        assert re.search(rf'name="drug" value="{re.escape(drug.group(1))}"[^>]* checked', r.text)
        assert snapshot(server.db, audit=False) == before


def test_the_pharmacys_dose_proposal_offers_and_takes_only_the_units_of_the_drugs_form(
    server: LiveServer,
) -> None:
    """The multidose pharmacy proposes a dose in the units the drug's form takes, as the
    doctor doses it: a cream's proposal in tablets is refused beside the unit when sent,
    not first when the doctor accepts it."""
    scene = patient_with_medicines(server, SIMVASTATIN)
    with server.client("gp") as api:
        ok(api.post(f"/fhir/Patient/{scene.pid}/$multidose-register", json=params(pharmacy())))
    _every_drug_a_cream(server)
    cream = scene.entries[SIMVASTATIN[2]]
    form = f"/apotek/pasient/{scene.pid}/legemiddel/{cream}/endre"
    with logged_in(server, "pharmacist") as pharmacy_page:
        html = pharmacy_page.get(form).text
        select = html.split('id="dose-unit"')[1].split("</select>")[0]
        assert re.findall(r'<option value="([^"]+)"', select) == ["påføring"]
        version = VERSION.search(html)
        assert version
        sent = {"csrf": csrf(pharmacy_page, form), "version": version.group(1)}
        before = snapshot(server.db, audit=False)
        r = pharmacy_page.post(
            form, data={**sent, "dose-mode": "fixed", "dose-unit": "tablett", "dose-MORN": "1"}
        )
        assert r.status_code == 400, r.text
        assert "Krem doseres i påføring, ikke i «tablett»." in r.text
        assert '<p class="field-error" id="dose-unit-error">' in r.text
        assert _filled(r.text, "dose-MORN", "1")
        assert snapshot(server.db, audit=False) == before
        r = pharmacy_page.post(
            form, data={**sent, "dose-mode": "fixed", "dose-unit": "påføring", "dose-MORN": "1"}
        )
        assert r.status_code == 303, r.text
