"""The patient in view on the error page (DESIGN §3 rule 9, issue 16): an error on a page
about a patient still shows who it is, as one look with the page's own read (one audit
record, never a second), and nothing is read when the error is a refusal of access."""

from __future__ import annotations

from pll.auth.tokens import PERSONAS
from tests.conftest import LiveServer, snapshot
from tests.e2e.scenes import METFORMIN, patient_with_medicines
from tests.integration.builders import block_consent, ok
from tests.integration.test_web import csrf, logged_in, opened
from tests.integration.test_web_banner import _audit, _banner, _reaction


def test_an_error_on_a_page_about_a_patient_shows_the_banner_as_part_of_the_pages_read(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    _reaction(server, scene.pid, "J01CA", "Penicilliner", criticality="high")
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        # a page that read the list and then failed: the banner's read is part of that look
        before = len(_audit(server, scene.pid))
        r = gp.get(f"{page}/historikk", params={"fra": "abc"})
        assert r.status_code == 400
        assert "Kunne ikke fullføre" in r.text
        banner = _banner(r.text)
        assert "Tore Testesen" in banner
        assert scene.fnr in banner
        assert "Penicilliner" in banner
        logged = _audit(server, scene.pid)[before:]
        # one record for the page view: its history read is part of it, and so is the banner
        assert logged == [("read", "List", "HPBEHANDLINGSRELASJON")]

        # a change refused and rolled back, with no form to come back to: the request
        # logged nothing, so the banner's read is logged, once
        token = csrf(gp, page)
        before = len(_audit(server, scene.pid))
        unchanged = snapshot(server.db, audit=False)
        r = gp.post(f"{page}/opprett", data={"csrf": token})
        assert 400 <= r.status_code < 500
        assert "Tore Testesen" in _banner(r.text)
        assert snapshot(server.db, audit=False) == unchanged
        assert _audit(server, scene.pid)[before:] == [("read", "Patient", "HPBEHANDLINGSRELASJON")]


def test_a_refusal_of_access_shows_no_banner_and_reads_nothing(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    with logged_in(server, "nurse") as nurse:
        page = opened(nurse, scene.fnr)
        token = csrf(nurse, page)
        before = len(_audit(server, scene.pid))
        # a nurse may read the list but not confirm it: the refusal is logged, once, and
        # the error page reads nothing more about the patient
        r = nurse.post(f"{page}/bekreft", data={"csrf": token, "version": "3"})
        assert r.status_code == 403
        assert "patient-banner" not in r.text
        assert "Tore Testesen" not in r.text
        assert _audit(server, scene.pid)[before:] == [("update", "List", "HPBEHANDLINGSRELASJON")]


def test_a_worker_the_patient_blocked_gets_an_error_page_without_the_patient(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        with server.client("patient", scene.fnr) as me:
            hpr = PERSONAS["gp"].hpr
            assert hpr is not None
            ok(me.post("/fhir/Consent", json=block_consent(hpr, scene.pid)), 201)
        before = len(_audit(server, scene.pid))
        r = gp.get(page)
        assert r.status_code == 403
        assert "Ingen tilgang" in r.text
        assert "patient-banner" not in r.text
        assert "Tore Testesen" not in r.text
        # the refusal, logged once: the error page did not try to read the patient again
        assert _audit(server, scene.pid)[before:] == [("read", "List", "HPBEHANDLINGSRELASJON")]
