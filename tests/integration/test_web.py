"""The web UI's edge over real HTTP (issue 7): logins, anti-forgery tokens, escaping, refusals.

Browser flows are in tests/e2e; these tests speak HTTP directly so they can send what a
browser never would (a forged form, a missing token) and check that nothing changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.conftest import LiveServer, snapshot
from tests.e2e.scenes import METFORMIN, patient_with_medicines
from tests.integration.builders import ok

TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


def browser(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.base, timeout=30, follow_redirects=False)


def csrf(client: httpx.Client, path: str = "/logg-inn") -> str:
    match = TOKEN.search(client.get(path).text)
    assert match, f"no anti-forgery token on {path}"
    return match.group(1)


@contextmanager
def logged_in(server: LiveServer, persona: str, pid: str | None = None) -> Iterator[httpx.Client]:
    with browser(server) as client:
        form = {"csrf": csrf(client), "persona": persona}
        if pid:
            form["pid"] = pid
        r = client.post("/logg-inn/utvikler", data=form)
        assert r.status_code == 303, r.text
        yield client


def opened(client: httpx.Client, fnr: str) -> str:
    r = client.post("/lege/apne", data={"csrf": csrf(client, "/lege"), "fnr": fnr})
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


def test_pages_need_a_login(server: LiveServer) -> None:
    with browser(server) as client:
        r = client.get("/lege")
        assert r.status_code == 303
        assert r.headers["location"] == "/logg-inn"
        assert client.get("/logg-inn").status_code == 200


def test_a_form_without_its_anti_forgery_token_is_refused_and_changes_nothing(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        before = snapshot(server.db, audit=False)
        for sent in ({}, {"csrf": "forged"}, {"csrf": ""}):
            r = gp.post(f"{page}/bekreft", data={**sent, "version": "3"})
            assert r.status_code == 403
            assert "CSRF" in r.text
        assert snapshot(server.db, audit=False) == before
        # another session's token is no good either
        with logged_in(server, "gp") as other:
            theirs = csrf(other, "/lege")
        r = gp.post(f"{page}/bekreft", data={"csrf": theirs, "version": "3"})
        assert r.status_code == 403
        assert snapshot(server.db, audit=False) == before
        # the real token works
        r = gp.post(f"{page}/bekreft", data={"csrf": csrf(gp, page), "version": "3"})
        assert r.status_code == 303
    assert snapshot(server.db, audit=False) != before


def test_user_text_is_escaped_everywhere_it_is_shown(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    with server.client("gp") as api:
        entry = ok(api.get(f"/fhir/MedicationStatement/{scene.entries[METFORMIN[2]]}"))
        entry["reasonCode"] = [{"text": evil}]
        entry["medicationCodeableConcept"]["text"] = f"Metformin {evil}"
        ok(
            api.put(
                f"/fhir/MedicationStatement/{entry['id']}",
                json=entry,
                headers={"If-Match": f'W/"{entry["meta"]["versionId"]}"'},
            )
        )
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        for path in (page, f"{page}/historikk", f"{page}/legemiddel/{entry['id']}/dose"):
            html = gp.get(path).text
            assert "<script>alert" not in html, path
            assert "<img src=x" not in html, path
            assert "&lt;script&gt;" in html, path


def test_a_page_refuses_a_patient_the_user_may_not_see(server: LiveServer) -> None:
    mine = patient_with_medicines(server, METFORMIN)
    other = patient_with_medicines(server, METFORMIN)
    with logged_in(server, "patient", mine.fnr) as patient:
        # a patient is no doctor: the doctor's pages refuse them
        r = patient.get(f"/lege/pasient/{other.pid}")
        assert r.status_code == 403
        assert "Ingen tilgang" in r.text
        assert METFORMIN[2] not in r.text
    with logged_in(server, "gp") as gp:
        opened(gp, mine.fnr)
        # an id in the URL the doctor never opened asks for the access basis first
        r = gp.get(f"/lege/pasient/{other.pid}")
        assert r.status_code == 303
        assert r.headers["location"].startswith("/lege?fnr=")


def test_a_nurse_reads_the_list_but_every_change_is_refused(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    with logged_in(server, "nurse") as nurse:
        page = opened(nurse, scene.fnr)
        html = nurse.get(page).text
        assert METFORMIN[2] in html
        assert "Endre dose" not in html
        before = snapshot(server.db, audit=False)
        r = nurse.post(f"{page}/bekreft", data={"csrf": csrf(nurse, page), "version": "3"})
        assert r.status_code == 403
        assert "Bare leger" in r.text
        assert snapshot(server.db, audit=False) == before


def test_bad_form_input_gets_a_clear_message_and_changes_nothing(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    entry_id = scene.entries[METFORMIN[2]]
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        token = csrf(gp, page)
        before = snapshot(server.db, audit=False)
        cases = [
            ({"dose-mode": "fixed", "dose-MORN": "to"}, "ikke et tall"),
            ({"dose-mode": "fixed"}, "minst ett tidspunkt"),
            ({"dose-mode": "fixed", "dose-MORN": "-1"}, "over 0"),
            ({"dose-mode": "weird"}, "Ukjent doseringsmåte"),
            ({"dose-mode": "fixed", "dose-MORN": "1", "dose-unit": "fat"}, "Ukjent enhet"),
        ]
        for fields, said in cases:
            r = gp.post(
                f"{page}/legemiddel/{entry_id}/dose",
                data={"csrf": token, "version": "3", **fields},
            )
            assert r.status_code == 400, fields
            assert said in r.text, (fields, r.text)
        r = gp.post(f"{page}/legemiddel/{entry_id}/seponer", data={"csrf": token, "version": "3"})
        assert r.status_code == 400
        assert "grunn" in r.text
        r = gp.post("/lege/apne", data={"csrf": token, "fnr": "12345678901"})
        assert r.status_code == 400
        assert snapshot(server.db, audit=False) == before


def test_pages_are_private_and_the_session_cookie_is_guarded(server: LiveServer) -> None:
    with browser(server) as client:
        r = client.get("/logg-inn")
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["cache-control"] == "no-store"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=lax" in cookie


@pytest.mark.parametrize("path", ["/fhir/Observation", "/cds-services/nope"])
def test_the_api_still_answers_unknown_paths_in_fhir(server: LiveServer, path: str) -> None:
    r = httpx.get(server.base + path)
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome"
    r = httpx.get(server.base + "/ingen-side")
    assert r.status_code == 404
    assert "finnes ikke" in r.text


def test_the_token_stays_on_the_server_and_logging_out_ends_the_login(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    with logged_in(server, "gp") as gp:
        cookie = gp.cookies["pll_session"]
        # the cookie is small and holds no bearer token, only the login's handle
        assert len(cookie) < 1000
        held = _session_text(cookie)
        assert "login_id" in held
        assert "eyJ" not in held  # no JWT
        page = opened(gp, scene.fnr)
        assert gp.get(page).status_code == 200
        r = gp.post("/logg-ut", data={"csrf": csrf(gp, page)})
        assert r.status_code == 303
    # a copy of the cookie taken before the logout is worth nothing after it
    with browser(server) as thief:
        thief.cookies.set("pll_session", cookie)
        r = thief.get(page)
        assert r.status_code == 303
        assert r.headers["location"] == "/logg-inn"


def _session_text(cookie: str) -> str:
    import base64

    payload = cookie.split(".", maxsplit=1)[0]
    return base64.b64decode(payload + "=" * (-len(payload) % 4)).decode()
