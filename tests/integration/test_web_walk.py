"""What a GP walking the web UI found wanting (issue 16), over real HTTP on both databases:
a change to a drug another doctor discontinued meanwhile, refusals and "not found" pages in
Norwegian with the patient in view and the input kept."""

from __future__ import annotations

import re

from tests.conftest import LiveServer, snapshot
from tests.e2e.scenes import METFORMIN, patient_with_medicines
from tests.integration.builders import ok
from tests.integration.test_web import csrf, logged_in, opened
from tests.integration.test_web_banner import _audit, _banner


def _discontinue(server: LiveServer, entry_id: str, reason: str) -> None:
    with server.client("hospital-doctor") as hospital:
        current = ok(hospital.get(f"/fhir/MedicationStatement/{entry_id}"))
        current["status"] = "stopped"
        current["statusReason"] = [{"text": reason}]
        ok(
            hospital.put(
                f"/fhir/MedicationStatement/{entry_id}",
                json=current,
                headers={"If-Match": f'W/"{current["meta"]["versionId"]}"'},
            )
        )


def _dose(server: LiveServer, entry_id: str, amount: int) -> None:
    with server.client("hospital-doctor") as hospital:
        current = ok(hospital.get(f"/fhir/MedicationStatement/{entry_id}"))
        current["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"] = amount
        ok(
            hospital.put(
                f"/fhir/MedicationStatement/{entry_id}",
                json=current,
                headers={"If-Match": f'W/"{current["meta"]["versionId"]}"'},
            )
        )


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_dose_change_on_a_drug_discontinued_meanwhile_offers_to_prescribe_it_anew(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    entry_id = scene.entries[METFORMIN[2]]
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        dose = f"{page}/legemiddel/{entry_id}/dose"
        token = csrf(gp, dose)  # the GP opens the dose form on version 1
        _discontinue(server, entry_id, "Nyresvikt")
        typed = {
            "csrf": token,
            "version": "1",
            "dose-mode": "fixed",
            "dose-MORN": "2",
            "dose-unit": "tablett",
        }
        before = snapshot(server.db, audit=False)
        r = gp.post(dose, data=typed)
        assert r.status_code == 200  # a question to the doctor, as the findings page
        said = _text(r.text)
        # who discontinued it, when and why; no offer to redo a dose change on it
        assert f"{METFORMIN[2]} er seponert av en annen" in said
        assert "Ola Sykehuslege" in said
        assert "Grunn: Nyresvikt" in said
        assert "Gjør min endring på den nye versjonen" not in said
        assert "slått sammen" not in said
        assert "Tore Testesen" in _banner(r.text)
        found = re.search(r'href="([^"]+)">Forskriv på nytt<', r.text)
        assert found, "no offer to prescribe the drug anew"
        assert snapshot(server.db, audit=False) == before

        # the prescribing page, the drug searched for and the typed dose filled in, once
        anew = gp.get(found.group(1).replace("&amp;", "&"))
        assert anew.status_code == 200
        assert 'name="q" value="Metformin tab 500 mg"' in anew.text
        assert 'id="dose-MORN" name="dose-MORN" value="2"' in anew.text
        again = gp.get(f"{page}/ny", params={"q": "Metformin"})
        assert 'id="dose-MORN" name="dose-MORN" value=""' in again.text

        # saving the dose on the discontinued entry anyway: the form again, in Norwegian,
        # what was typed kept, the patient in view, nothing changed
        r = gp.post(dose, data={**typed, "version": "2"})
        assert r.status_code == 409
        assert "Legemidlet er seponert og kan ikke endres" in r.text
        assert "is discontinued" not in r.text
        assert 'id="dose-MORN" name="dose-MORN" value="2"' in r.text
        assert "Tore Testesen" in _banner(r.text)
        assert snapshot(server.db, audit=False) == before


def test_a_page_about_a_patient_that_finds_nothing_says_so_in_norwegian_with_the_banner(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        for path, said in (
            (f"{page}/reaksjoner/ukjent", "Legemiddelreaksjonen du ba om, finnes ikke"),
            (f"{page}/legemiddel/ukjent/dose", "Legemidlet finnes ikke på pasientens liste"),
        ):
            r = gp.get(path)
            assert r.status_code == 404, path
            assert "Finnes ikke" in r.text
            assert said in r.text, path
            assert "does not exist" not in r.text, path
            assert "Tore Testesen" in _banner(r.text), path


def test_each_of_the_patients_own_pages_leaves_one_record_per_view(server: LiveServer) -> None:
    """DESIGN §3 rule 5: every read leaves a trace, one per look, not one per part of the
    page (the changes page diffs each version it shows)."""
    scene = patient_with_medicines(server, METFORMIN)
    entry_id = scene.entries[METFORMIN[2]]
    for amount in (2, 3, 4):  # versions to say in plain words on the changes page
        _dose(server, entry_id, amount)
    with logged_in(server, "patient", scene.fnr) as me:
        for path in ("", "/endringer", "/innsyn", "/sperring"):
            before = len(_audit(server, scene.pid))
            r = me.get(f"/pasient/{scene.pid}{path}")
            assert r.status_code == 200, path
            logged = _audit(server, scene.pid)[before:]
            assert len(logged) == 1, (path, logged)


def test_a_pharmacy_reading_a_patient_it_does_not_pack_for_is_told_why_and_what_it_may_do(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)  # no e-multidose registration
    with logged_in(server, "pharmacist") as pharmacy:
        before = len(_audit(server, scene.pid))
        r = pharmacy.get(f"/apotek/pasient/{scene.pid}")
        assert r.status_code == 403
        said = _text(r.text)
        assert "Pasienten har ingen e-multidoseregistrering" in said
        assert "behandlingsrelasjon" in said  # the basis it may read the list on
        assert "melder hva som er pakket" not in said
        assert len(_audit(server, scene.pid)) == before + 1  # the refusal, logged once
