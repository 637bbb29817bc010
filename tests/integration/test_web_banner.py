"""The patient always in view (DESIGN §3 rule 9, issue 16) over real HTTP on both databases:
the patient banner with CAVE on every page about a patient, read on the page's basis and
logged once; the emergency banner; drug reactions from the doctor's pages; confirming from
a page that shows what is confirmed; resuming with or without confirming; the pharmacy
warned of a list no doctor has confirmed."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa

from pll.domain.identifiers import parse_person_identifier
from pll.store.schema import audit_event
from tests.conftest import LiveServer, snapshot
from tests.e2e.scenes import METFORMIN, SIMVASTATIN, Scene, patient_with_medicines
from tests.integration import test_multidose as multidose
from tests.integration.builders import ATC, ok
from tests.integration.test_cases import report
from tests.integration.test_web import csrf, logged_in, opened


def _reaction(server: LiveServer, pid: str, atc: str, text: str, **more: object) -> str:
    with server.client("gp") as api:
        body = {
            "resourceType": "AllergyIntolerance",
            "patient": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": ATC, "code": atc}], "text": text},
            **more,
        }
        return str(ok(api.post("/fhir/AllergyIntolerance", json=body), 201)["id"])


def _banner(html: str) -> str:
    found = re.search(r'<section class="patient-banner".*?</section>', html, re.S)
    assert found, "no patient banner on the page"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(0)))


def _audit(server: LiveServer, pid: str) -> list[tuple[str, str, str | None]]:
    with server.db.read() as conn:
        rows = conn.execute(
            sa.select(audit_event.c.action, audit_event.c.resource_type, audit_event.c.basis)
            .where(audit_event.c.patient_id == pid)
            .order_by(audit_event.c.id)
        ).all()
    return [(r.action, r.resource_type, r.basis) for r in rows]


def _age(fnr: str) -> int:
    born = parse_person_identifier(None, fnr).birth_date
    today = datetime.now(ZoneInfo("Europe/Oslo")).date()
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def test_every_page_about_a_patient_shows_who_it_is_the_list_state_and_cave(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN, SIMVASTATIN)
    entry = scene.entries[METFORMIN[2]]
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        banner = _banner(gp.get(page).text)
        assert "Tore Testesen" in banner
        assert f"{_age(scene.fnr)} år" in banner
        assert scene.fnr in banner
        assert "Aldri bekreftet" in banner
        assert "Stafettpinnen: Kari Fastlege" in banner
        assert "Ingen registrerte legemiddelreaksjoner" in banner

        _reaction(
            server,
            scene.pid,
            "J01CA",
            "Penicilliner",
            criticality="high",
            reaction=[{"manifestation": [{"text": "Anafylaksi"}], "severity": "severe"}],
        )
        for path in (
            "",
            "/ny",
            "/historikk",
            "/reaksjoner",
            f"/legemiddel/{entry}/dose",
            f"/legemiddel/{entry}/seponer",
            f"/legemiddel/{entry}/forny",
            f"/legemiddel/{entry}/tilbakekall",
        ):
            r = gp.get(page + path)
            assert r.status_code == 200, (path, r.text[:500])
            banner = _banner(r.text)
            assert "Tore Testesen" in banner, path
            assert "Penicilliner (Anafylaksi, alvorlig, høy kritikalitet)" in banner, path
            assert "Ingen registrerte" not in banner, path
        # the findings page of a change decision support stops: the patient is there too
        r = gp.post(
            f"{page}/legemiddel/{entry}/seponer",
            data={"csrf": csrf(gp, page), "version": "1", "reason": "Bivirkning"},
        )
        assert r.status_code == 303
        # a paused and then confirmed list says so
        r = gp.post(
            f"{page}/pause",
            data={"csrf": csrf(gp, page), "version": "6", "reason": "Innlagt på sykehus"},
        )
        assert r.status_code == 303, r.text
        banner = _banner(gp.get(page).text)
        assert "Listen er pauset" in banner
        assert "Innlagt på sykehus" in banner


def test_the_banner_is_part_of_the_pages_read_and_is_logged_once(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    entry = scene.entries[METFORMIN[2]]
    with server.client("gp") as api:  # an open case: the list page reads the cases too
        ok(report(api, f"MedicationStatement/{entry}"), 201)
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        # every page about the patient is one look, one record in the patient's access log:
        # what else it reads (its banner, the baton and override notes, the history's
        # diff, the cases) is part of that look
        for path in (
            "",
            "/ny",
            "/historikk",
            "/historikk?fra=1&til=2",
            "/reaksjoner",
            "/samstemming",
            f"/legemiddel/{entry}/dose",
            f"/legemiddel/{entry}/seponer",
            f"/legemiddel/{entry}/forny",
            f"/legemiddel/{entry}/tilbakekall",
        ):
            before = len(_audit(server, scene.pid))
            r = gp.get(page + path)
            assert r.status_code == 200, (path, r.text[:300])
            logged = _audit(server, scene.pid)[before:]
            assert len(logged) == 1, (path, logged)
            assert logged[0][2] == "HPBEHANDLINGSRELASJON", path
        # before a basis is stated nothing is read, the banner's data included
        other = patient_with_medicines(server, METFORMIN)
        before_other = _audit(server, other.pid)
        r = gp.get(f"/grunnlag/{other.pid}")
        assert r.status_code == 200
        assert "patient-banner" not in r.text
        assert "Tore Testesen" not in r.text
        assert _audit(server, other.pid) == before_other
    # the multidose pharmacy's pages, and the responsible doctor's page of its proposals
    with server.client("gp") as api:
        md = multidose.new_patient(server, api)
    amlodipin = md.entries["Amlodipin"]["id"]
    with logged_in(server, "pharmacist") as pharmacy:
        for path in ("", "/nytt", f"/legemiddel/{amlodipin}/endre"):
            before = len(_audit(server, md.pid))
            r = pharmacy.get(f"/apotek/pasient/{md.pid}{path}")
            assert r.status_code == 200, (path, r.text[:300])
            logged = _audit(server, md.pid)[before:]
            assert len(logged) == 1, (path, logged)
    with logged_in(server, "gp") as gp:
        page = opened(gp, md.fnr)
        before = len(_audit(server, md.pid))
        assert gp.get(f"{page}/forslag").status_code == 200
        assert len(_audit(server, md.pid)[before:]) == 1


def test_emergency_access_shows_a_banner_on_every_page_while_it_lasts(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    with logged_in(server, "gp") as gp:
        r = gp.post(
            "/lege/apne", data={"csrf": csrf(gp, "/lege"), "fnr": scene.fnr, "basis": "HPAKUTT"}
        )
        page = r.headers["location"]
        for path in (page, f"{page}/historikk", f"{page}/ny"):
            html = gp.get(path).text
            assert 'id="emergency-banner"' in html, path
            assert "med nødrett" in html
            assert "logges" in html
            assert "vises for pasienten" in html
        # and on pages about no patient, naming whom
        html = gp.get("/lege").text
        assert 'id="emergency-banner"' in html
        assert scene.fnr in html
        assert ("read", "List", "HPAKUTT") in _audit(server, scene.pid)
        # a worker on an ordinary basis sees no such banner
        r = gp.post(
            "/lege/apne",
            data={"csrf": csrf(gp, "/lege"), "fnr": scene.fnr, "basis": "HPBEHANDLINGSRELASJON"},
        )
        assert 'id="emergency-banner"' not in gp.get(page).text
        assert 'id="emergency-banner"' not in gp.get("/lege").text


def _register(gp: httpx.Client, page: str, **fields: str) -> httpx.Response:
    return gp.post(f"{page}/reaksjoner", data={"csrf": csrf(gp, page), **fields})


def test_a_doctor_registers_changes_and_ends_a_drug_reaction_from_the_page(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        # what is typed wrong comes back beside the field, kept, and nothing is saved
        before = snapshot(server.db, audit=False)
        r = _register(gp, page, what="Penicillin", atc="peni", reaction="Utslett")
        assert r.status_code == 400
        assert "er ikke en ATC-kode" in r.text
        # the shared markup of a refused form (pll.web.edge): beside the field, summed up
        assert '<p class="field-error" id="atc-error"><strong>Feil:</strong>' in r.text
        assert 'aria-describedby="atc-error"' in r.text
        assert '<a href="#atc-error">' in r.text
        assert 'value="Penicillin"' in r.text
        assert 'value="peni"' in r.text
        assert 'value="Utslett"' in r.text
        r = _register(gp, page, what="", atc="")
        assert r.status_code == 400
        assert 'id="what-error"' in r.text
        assert 'id="atc-error"' in r.text
        assert snapshot(server.db, audit=False) == before

        # registered: the API has it, and decision support's CAVE check sees it
        r = _register(
            gp,
            page,
            what="Metformin",
            atc="A10BA",
            reaction="Laktacidose",
            severity="severe",
            criticality="high",
            note="Innlagt 2019",
        )
        assert r.status_code == 303, r.text
        listed = gp.get(page).text
        assert "Metformin (Laktacidose, alvorlig, høy kritikalitet)" in _banner(listed)
        # the metformin on the list meets the new reaction: a severe finding, shown as one
        assert 'class="notice error"' in listed
        assert "CAVE:" in listed
        with server.client("gp") as api:
            found = ok(api.get("/fhir/AllergyIntolerance", params={"patient": scene.pid}))
            reaction = found["entry"][0]["resource"]
            assert reaction["code"]["coding"] == [{"system": ATC, "code": "A10BA"}]
            assert reaction["criticality"] == "high"
            assert reaction["note"] == [{"text": "Innlagt 2019"}]
            checked = ok(api.get(f"/fhir/List/{scene.list_id}/$check"))
            assert any(reaction["id"] in str(i) for i in checked["issue"]), checked

        # changed
        rid = reaction["id"]
        edit = gp.get(f"{page}/reaksjoner/{rid}")
        assert 'value="Laktacidose"' in edit.text
        r = gp.post(
            f"{page}/reaksjoner/{rid}",
            data={
                "csrf": csrf(gp, page),
                "version": "1",
                "what": "Metformin",
                "atc": "A10BA",
                "reaction": "Kvalme",
                "severity": "mild",
                "criticality": "low",
            },
        )
        assert r.status_code == 303, r.text
        assert "Metformin (Kvalme, mild, lav kritikalitet)" in _banner(gp.get(page).text)
        # a change on a version someone else moved on is refused beside the form
        r = gp.post(
            f"{page}/reaksjoner/{rid}",
            data={"csrf": csrf(gp, page), "version": "1", "what": "Metformin", "atc": "A10BA"},
        )
        assert r.status_code == 400
        assert "endret av en annen" in r.text
        # the change form again, as typed, the refusal at the top (it names no field)
        assert "Endre legemiddelreaksjon" in r.text
        assert 'value="Metformin"' in r.text
        assert 'href="#form-error"' not in r.text

        # ended: the banner no longer shows it, the page keeps it as ended
        r = gp.post(
            f"{page}/reaksjoner/{rid}/avslutt",
            data={"csrf": csrf(gp, page), "version": "2", "how": "resolved"},
        )
        assert r.status_code == 303, r.text
        assert "Ingen registrerte legemiddelreaksjoner" in _banner(gp.get(page).text)
        assert "Avsluttet" in gp.get(f"{page}/reaksjoner").text


def test_a_nurse_sees_the_reactions_but_cannot_change_them(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    _reaction(server, scene.pid, "J01CA", "Penicilliner")
    with logged_in(server, "nurse") as nurse:
        page = opened(nurse, scene.fnr)
        assert "Penicilliner" in _banner(nurse.get(page).text)
        before = snapshot(server.db, audit=False)
        r = _register(nurse, page, what="Metformin", atc="A10BA")
        assert r.status_code == 403
        assert snapshot(server.db, audit=False) == before


def _confirmed(server: LiveServer, scene: Scene) -> dict[str, object]:
    with server.client("gp") as api:
        lst = ok(api.get(f"/fhir/List/{scene.list_id}"))
    return next((e for e in lst.get("extension", []) if e["url"].endswith("confirmed")), {})


def _changes(html: str) -> str:
    found = re.search(r'<div id="confirm-changes".*?</div>', html, re.S)
    assert found, "no summary of the changes beside the confirm button"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(0)))


def test_confirming_is_one_click_on_the_list_that_shows_what_is_confirmed(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN, SIMVASTATIN)
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        # the list page shows the entries and, beside the button, what changed; the button
        # names the version it confirms and carries it
        listed = gp.get(page).text
        assert f'href="{page}/bekreft"' not in listed
        button = re.search(rf'<form method="post" action="{page}/bekreft".*?</form>', listed, re.S)
        assert button, "no confirm button on the list page"
        assert 'name="version" value="5"' in button.group(0)
        assert "Bekreft versjon 5" in button.group(0)
        changes = _changes(listed)
        assert "Listen er aldri bekreftet" in changes
        assert f"Lagt til: {METFORMIN[2]}, {SIMVASTATIN[2]}" in changes
        # the separate question page is gone: the list page is the question
        assert 400 <= gp.get(f"{page}/bekreft").status_code < 500
        r = gp.post(f"{page}/bekreft", data={"csrf": csrf(gp, page), "version": "5"})
        assert r.status_code == 303
        assert _confirmed(server, scene)
        listed = gp.get(page).text
        assert "Listen er bekreftet" in listed
        assert "Endret siden forrige bekreftelse" in _changes(listed)
        assert "ingenting" in _changes(listed)
        assert "Bekreft versjon 6" in listed
        # next time: what changed since that confirmation, and the way to all of it
        r = gp.post(
            f"{page}/legemiddel/{scene.entries[SIMVASTATIN[2]]}/seponer",
            data={"csrf": csrf(gp, page), "version": "1", "reason": "Bivirkning"},
        )
        assert r.status_code == 303
        listed = gp.get(page).text
        changes = _changes(listed)
        assert "versjon 6" in changes
        assert f"Seponert: {SIMVASTATIN[2]}" in changes
        assert METFORMIN[2] not in changes
        assert f'href="{page}/historikk?fra=6&amp;til=7"' in listed
        assert "Bekreft versjon 7" in listed
        # one click confirms exactly the version shown: a list that moved on since the page
        # was shown is not confirmed, and the doctor sees what changed
        with server.client("gp") as api:
            entry = scene.entries[METFORMIN[2]]
            current = ok(api.get(f"/fhir/MedicationStatement/{entry}"))
            paused = {**current, "status": "on-hold"}
            paused.pop("meta", None)
            ok(
                api.put(
                    f"/fhir/MedicationStatement/{entry}",
                    json=paused,
                    headers={"If-Match": f'W/"{current["meta"]["versionId"]}"'},
                )
            )
        before = snapshot(server.db, audit=False)
        r = gp.post(f"{page}/bekreft", data={"csrf": csrf(gp, page), "version": "7"})
        assert r.status_code == 200
        assert "Listen er endret siden du så den" in r.text
        assert METFORMIN[2] in r.text
        assert snapshot(server.db, audit=False) == before
        assert "Bekreft versjon 8" in gp.get(page).text


def test_resuming_a_paused_list_confirms_it_only_when_the_doctor_says_so(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        r = gp.post(f"{page}/pause", data={"csrf": csrf(gp, page), "version": "3", "reason": "Inn"})
        assert r.status_code == 303
        listed = gp.get(page).text
        assert "Gjenoppta og bekreft" in listed
        assert "Gjenoppta uten å bekrefte" in listed
        # no choice: refused, nothing changed
        before = snapshot(server.db, audit=False)
        r = gp.post(f"{page}/gjenoppta", data={"csrf": csrf(gp, page), "version": "4"})
        assert r.status_code == 400
        assert snapshot(server.db, audit=False) == before
        r = gp.post(
            f"{page}/gjenoppta",
            data={"csrf": csrf(gp, page), "version": "4", "confirm": "uten"},
        )
        assert r.status_code == 303
        listed = gp.get(page).text
        assert "gjenopptatt uten å bekreftes" in listed
        assert not _confirmed(server, scene)
        assert "Aldri bekreftet" in _banner(listed)
        # paused again, resumed and confirmed
        gp.post(f"{page}/pause", data={"csrf": csrf(gp, page), "version": "5", "reason": "Inn"})
        r = gp.post(
            f"{page}/gjenoppta",
            data={"csrf": csrf(gp, page), "version": "6", "confirm": "bekreft"},
        )
        assert r.status_code == 303
        listed = gp.get(page).text
        assert "gjenopptatt og bekreftet" in listed
        assert _confirmed(server, scene)
        assert "Sist bekreftet" in _banner(listed)


def test_the_api_resumes_without_confirming_when_asked(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    with server.client("gp") as api:
        url = f"/fhir/List/{scene.list_id}"
        ok(api.post(f"{url}/$pause", json=_params(reason={"valueString": "Innlagt"})))
        bad = api.post(
            f"{url}/$resume",
            json=_params(confirm={"valueString": "nei"}),
            headers={"If-Match": 'W/"4"'},
        )
        assert bad.status_code == 400
        assert "Parameters.parameter[0]" in bad.text
        resumed = ok(
            api.post(
                f"{url}/$resume",
                json=_params(confirm={"valueBoolean": False}),
                headers={"If-Match": 'W/"4"'},
            )
        )
        urls = [e["url"] for e in resumed.get("extension", [])]
        assert not any(u.endswith("pll-paused") for u in urls)
        assert not any(u.endswith("confirmed") for u in urls)
        ok(api.post(f"{url}/$pause", json=_params(reason={"valueString": "Innlagt"})))
        resumed = ok(api.post(f"{url}/$resume", headers={"If-Match": 'W/"6"'}))
        assert any(e["url"].endswith("confirmed") for e in resumed["extension"])


def _params(**values: dict[str, object]) -> dict[str, object]:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": name, **value} for name, value in values.items()],
    }
