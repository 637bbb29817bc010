"""The web UI's edge over real HTTP (issue 7): logins, anti-forgery tokens, escaping, refusals.

Browser flows are in tests/e2e; these tests speak HTTP directly so they can send what a
browser never would (a forged form, a missing token) and check that nothing changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import pytest

from pll.config import Settings
from pll.web.app import session_secret
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
        entry = other.entries[METFORMIN[2]]
        before = snapshot(server.db)
        # a patient the doctor never opened: every page asks for the access basis first,
        # and nothing is read (or logged) until it is given
        for path in (
            "",
            "/historikk",
            "/samstemming",
            "/ny",
            f"/legemiddel/{entry}/dose",
            f"/legemiddel/{entry}/seponer",
            f"/legemiddel/{entry}/forny",
            f"/legemiddel/{entry}/tilbakekall",
            "/forslag",
        ):
            r = gp.get(f"/lege/pasient/{other.pid}{path}")
            assert r.status_code == 303, path
            assert r.headers["location"].startswith(f"/grunnlag/{other.pid}?neste="), path
        page = f"/lege/pasient/{other.pid}"
        r = gp.post(f"{page}/bekreft", data={"csrf": csrf(gp, "/lege"), "version": "3"})
        assert r.status_code == 303
        assert r.headers["location"].startswith(f"/grunnlag/{other.pid}")
        assert snapshot(server.db) == before
        # stating it opens the page asked for; the read is logged on that basis
        basis_page = gp.get(r.headers["location"])
        assert METFORMIN[2] not in basis_page.text
        r = gp.post(
            f"/grunnlag/{other.pid}",
            data={"csrf": csrf(gp, "/lege"), "basis": "HPAKUTT", "neste": f"{page}/historikk"},
        )
        assert r.headers["location"] == f"{page}/historikk"
        assert gp.get(f"{page}/historikk").status_code == 200
        # and only to a page of this site
        r = gp.post(
            f"/grunnlag/{other.pid}",
            data={"csrf": csrf(gp, "/lege"), "basis": "HPAKUTT", "neste": "//evil.example/"},
        )
        assert r.headers["location"] == page
    with server.client("patient", other.fnr) as patient:
        log = ok(patient.get("/fhir/AuditEvent", params={"patient": other.pid}))
    bases = {
        c.get("code")
        for e in log["entry"]
        for p in e["resource"].get("purposeOfEvent", [])
        for c in p.get("coding", [])
    }
    assert "HPAKUTT" in bases


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
        assert "Bare forskrivere endrer listen" in r.text
        assert snapshot(server.db, audit=False) == before


def test_bad_form_input_gets_a_clear_message_and_changes_nothing(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    entry_id = scene.entries[METFORMIN[2]]
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        token = csrf(gp, page)
        before = snapshot(server.db, audit=False)
        cases = [
            ({"dose-mode": "fixed", "dose-MORN": "to"}, "ikke en mengde"),
            ({"dose-mode": "fixed"}, "minst ett tidspunkt"),
            ({"dose-mode": "fixed", "dose-MORN": "-1"}, "må være over 0"),
            ({"dose-mode": "fixed", "dose-MORN": "0"}, "over 0"),
            ({"dose-mode": "fixed", "dose-MORN": "1e3"}, "ikke en mengde"),
            ({"dose-mode": "fixed", "dose-MORN": "0,0000001"}, "for mange desimaler"),
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
        # versions as a form or an address could carry them
        for version in ("²", "99999999999999999999", "-1"):
            r = gp.post(
                f"{page}/legemiddel/{entry_id}/dose",
                data={"csrf": token, "version": version, "dose-MORN": "1"},
            )
            assert r.status_code == 400, version
            assert "Noe gikk galt" not in r.text
            r = gp.get(f"{page}/historikk", params={"fra": version, "til": "1"})
            assert r.status_code == 400, version
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
        page = opened(gp, scene.fnr)
        assert gp.get(page).status_code == 200
        cookie = gp.cookies["pll_session"]
        # the cookie holds the login's handle and the anti-forgery token: no bearer token,
        # no fødselsnummer, no patient data
        held = orjson.loads(_session_text(cookie))
        assert set(held) == {"login_id", "login", "csrf"}, held
        assert scene.fnr not in cookie
        assert len(cookie) < 300
        # a tab from before carries a stale anti-forgery token: logging out still logs out
        r = gp.post("/logg-ut", data={"csrf": "stale"})
        assert r.status_code == 303
        assert gp.get(page).status_code == 303
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


def _change_dose(server: LiveServer, entry_id: str, amount: int) -> None:
    with server.client("hospital-doctor") as hospital:
        current = ok(hospital.get(f"/fhir/MedicationStatement/{entry_id}"))
        current["dosage"] = [
            {
                "timing": {"repeat": {"when": ["MORN"]}},
                "doseAndRate": [{"doseQuantity": {"value": amount, "unit": "tablett"}}],
            }
        ]
        ok(
            hospital.put(
                f"/fhir/MedicationStatement/{entry_id}",
                json=current,
                headers={"If-Match": f'W/"{current["meta"]["versionId"]}"'},
            )
        )


def test_confirming_a_list_that_moved_shows_what_changed_and_confirms_nothing(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        token = csrf(gp, page)  # the GP looks at version 3
        _change_dose(server, scene.entries[METFORMIN[2]], 4)  # the hospital makes version 4
        before = snapshot(server.db, audit=False)
        r = gp.post(f"{page}/bekreft", data={"csrf": token, "version": "3"})
        assert r.status_code == 200
        assert "Listen er endret siden du så den" in r.text
        assert "Ola Sykehuslege" in r.text
        assert "4 tabletter morgen" in r.text
        assert snapshot(server.db, audit=False) == before
        r = gp.post(f"{page}/bekreft", data={"csrf": token, "version": "4"})
        assert r.status_code == 303


def test_a_renewal_is_refused_when_the_dose_changed_since_the_doctor_saw_it(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    entry_id = scene.entries[METFORMIN[2]]
    rx_id = scene.prescriptions[METFORMIN[2]]
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        form = gp.get(f"{page}/legemiddel/{entry_id}/forny").text
        assert "1 tablett morgen" in form
        token = csrf(gp, page)
        _change_dose(server, entry_id, 4)
        before = snapshot(server.db, audit=False)
        renew = {"csrf": token, "prescription": rx_id, "version": "1"}
        r = gp.post(f"{page}/legemiddel/{entry_id}/forny", data=renew)
        assert "er endret av en annen" in r.text
        assert "4 tabletter morgen" in r.text
        assert snapshot(server.db, audit=False) == before
        # renewing on the version now seen goes through, with the dose now seen
        r = gp.post(f"{page}/legemiddel/{entry_id}/forny", data={**renew, "version": "2"})
        assert r.status_code == 303
    with server.client("gp") as api:
        found = ok(api.get("/fhir/MedicationRequest", params={"patient": scene.pid}))
    active = [e["resource"] for e in found["entry"] if e["resource"]["status"] == "active"]
    assert [a["dosageInstruction"][0]["text"] for a in active] == ["4 tabletter morgen"]
    # a prescription of another medicine is not this entry's to renew or recall
    other = patient_with_medicines(server, METFORMIN)
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        token = csrf(gp, page)
        for action in ("forny", "tilbakekall"):
            r = gp.post(
                f"{page}/legemiddel/{entry_id}/{action}",
                data={
                    "csrf": token,
                    "prescription": other.prescriptions[METFORMIN[2]],
                    "version": "1",
                    "reason": "Feil i resepten",
                },
            )
            assert r.status_code in (400, 200), action
            assert "hører ikke til" in r.text or "er endret av en annen" in r.text, action


def _secret_in(data_dir: str) -> str:
    return session_secret(Settings(data_dir=Path(data_dir), database_url="sqlite://"))


def test_workers_starting_together_agree_on_one_session_secret(tmp_path: Path) -> None:
    """Several `pll serve` workers on an empty data folder: one writes the secret, every one
    reads the same, whole secret (none crashes, none signs with an empty key)."""
    for trial in range(5):
        folder = tmp_path / f"trial-{trial}"
        with ProcessPoolExecutor(max_workers=4) as pool:
            secrets_seen = list(pool.map(_secret_in, [str(folder)] * 8))
        assert len(set(secrets_seen)) == 1
        assert len(secrets_seen[0]) >= 32
        assert [p.name for p in folder.iterdir()] == ["web-session.key"]
