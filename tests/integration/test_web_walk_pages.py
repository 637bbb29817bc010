"""Pages a GP walking the web UI found wanting (issue 16), over real HTTP on both
databases: the findings page says what is being saved, leads back to the form and asks for
a missing override reason beside its field; messages say what is really wrong."""

from __future__ import annotations

import re
from html import unescape

from tests.conftest import LiveServer, snapshot
from tests.e2e.scenes import METFORMIN, patient_with_medicines
from tests.integration.builders import ok, statement
from tests.integration.test_web import csrf, logged_in, opened


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _error_of(html: str, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', html, re.S)
    assert found, f"no message beside {field}"
    return _text(found.group(1)).strip()


def test_the_findings_page_names_what_is_saved_goes_back_to_the_form_and_asks_for_a_reason(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    entry_id = scene.entries[METFORMIN[2]]
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        dose = f"{page}/legemiddel/{entry_id}/dose"
        typed = {
            "csrf": csrf(gp, dose),
            "version": "1",
            "dose-mode": "fixed",
            "dose-MORN": "30",
            "dose-unit": "tablett",
        }
        before = snapshot(server.db, audit=False)
        r = gp.post(dose, data=typed)  # 30 tablets a day: an implausible amount, blocking
        assert r.status_code == 200
        assert "Du lagrer Metformin tab 500 mg : 30 tabletter morgen" in _text(r.text)
        assert "Alvorlig:" in r.text
        assert f'<a class="button" href="{dose}">Endre</a>' in r.text
        code = re.search(r'name="override-code" value="([^"]*)"', r.text)
        assert code

        # saved without the reason the finding needs: said beside the field, nothing saved
        again = {**typed, "seen-findings": "1", "override-code": code.group(1)}
        r = gp.post(dose, data={**again, "override-reason": "  "})
        assert r.status_code == 400
        assert "Skriv hvorfor du overstyrer" in _error_of(r.text, "override-reason")
        assert 'aria-invalid="true"' in r.text
        assert snapshot(server.db, audit=False) == before

        # "Endre": the dose form with what was typed, once
        form = gp.get(dose).text
        assert 'id="dose-MORN" name="dose-MORN" value="30"' in form
        assert "reopened-note" not in form  # not a conflict: the form is not on a new version
        assert 'id="dose-MORN" name="dose-MORN" value="1"' in gp.get(dose).text

        r = gp.post(dose, data={**again, "override-reason": "Bevisst høy dose, avtalt"})
        assert r.status_code == 303
        # saved: what was typed is not waiting for the form any more
        assert 'id="dose-MORN" name="dose-MORN" value="30"' in gp.get(dose).text


def test_amounts_out_of_range_say_what_is_wrong_with_them(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    entry_id = scene.entries[METFORMIN[2]]
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        dose = f"{page}/legemiddel/{entry_id}/dose"
        base = {"csrf": csrf(gp, dose), "version": "1", "dose-mode": "fixed"}
        before = snapshot(server.db, audit=False)
        for raw, said in (
            ("100000", "Morgen: «100000» er for mye; høyst 99999."),
            ("-1", "Morgen: mengden må være over 0; du skrev «-1»."),
            ("0", "Morgen: mengden må være over 0; du skrev «0»."),
            ("0,0001", "Morgen: «0,0001» har for mange desimaler; høyst tre."),
            ("1e5", "Morgen: «1e5» er ikke en mengde (et tall med høyst tre desimaler)."),
        ):
            r = gp.post(dose, data={**base, "dose-MORN": raw})
            assert r.status_code == 400, raw
            assert _error_of(r.text, "dose-MORN") == f"Feil: {said}", raw
        renew = f"{page}/legemiddel/{entry_id}/forny"
        rx = {
            "csrf": base["csrf"],
            "version": "1",
            "prescription": scene.prescriptions[METFORMIN[2]],
            "rx-unit": "pakning",
        }
        for raw, said in (
            ("100000", "Mengde: «100000» er for mye; høyst 99 pakninger."),
            ("100", "Mengde: «100» er for mye; høyst 99 pakninger."),
            ("-1", "Mengde: mengden må være over 0; du skrev «-1»."),
        ):
            r = gp.post(renew, data={**rx, "rx-quantity": raw})
            assert r.status_code == 400, raw
            assert _error_of(r.text, "rx-quantity") == f"Feil: {said}", raw
        assert snapshot(server.db, audit=False) == before


def test_the_discontinue_page_says_what_is_recalled_and_the_history_names_the_drug(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    with server.client("gp") as api:
        bare = ok(
            api.post(
                "/fhir/MedicationStatement",
                json=statement(f"Patient/{scene.pid}", "Paracet tab 500 mg", "N02BE01"),
            ),
            201,
        )["id"]
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        said = _text(gp.get(f"{page}/legemiddel/{bare}/seponer").text)
        assert "Reseptene tilbakekalles" not in said
        assert "Legemidlet har ingen gyldig e-resept, så ingen resept tilbakekalles." in said
        entry_id = scene.entries[METFORMIN[2]]
        said = _text(gp.get(f"{page}/legemiddel/{entry_id}/seponer").text)
        assert "Resepten tilbakekalles samtidig." in said

        history = _text(gp.get(f"{page}/historikk").text)
        assert "Nytt legemiddel: Paracet tab 500 mg" in history
        assert "Ny resept: Metformin tab 500 mg" in history
