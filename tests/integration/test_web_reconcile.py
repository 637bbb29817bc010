"""Samstemming in the web UI over real HTTP (issue 7), on both databases: what a browser
sends between the two steps, and the answers of the service that need a page of their own —
a severe finding to override with a reason (DESIGN §3 rule 6), a list that moved on since
the comparison (rule 2) — and forms a browser never sends, refused with nothing changed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from html import unescape
from html.parser import HTMLParser
from typing import Any

import httpx

from tests.conftest import LiveServer, snapshot
from tests.e2e.scenes import ATC, METFORMIN, SIMVASTATIN, Scene, patient_with_medicines
from tests.integration import test_multidose as multidose
from tests.integration.builders import dose, ok

TOKEN = re.compile(r'name="csrf" value="([^"]+)"')
SERTRALIN = (None, "N06AB06", "Sertralin tab 50 mg")
ROW = re.compile(r'<tr id="difference-([^"]+)">\s*<th scope="row">([^<]*)</th>')

# -- a browser's session (as tests/integration/test_web.py logs in) ----------------------------


def browser(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.base, timeout=60, follow_redirects=False)


def csrf(client: httpx.Client, path: str = "/logg-inn") -> str:
    match = TOKEN.search(client.get(path).text)
    assert match, f"no anti-forgery token on {path}"
    return match.group(1)


@contextmanager
def logged_in(server: LiveServer, persona: str) -> Iterator[httpx.Client]:
    with browser(server) as client:
        r = client.post("/logg-inn/utvikler", data={"csrf": csrf(client), "persona": persona})
        assert r.status_code == 303, r.text
        yield client


def opened(client: httpx.Client, fnr: str) -> str:
    r = client.post("/lege/apne", data={"csrf": csrf(client, "/lege"), "fnr": fnr})
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


# -- the pages' forms --------------------------------------------------------------------------


class _Forms(HTMLParser):
    """Each form of a page: its action, enctype and the fields a browser would send as they
    stand (hidden inputs; a checked radio or checkbox; a textarea's text)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "enctype": a.get("enctype", "")})
            self.forms[-1]["fields"] = []
        elif tag == "input" and self.forms and "name" in a:
            kind = a.get("type", "text")
            if kind == "hidden" or (kind in ("radio", "checkbox") and "checked" in a):
                self.forms[-1]["fields"].append((a["name"], a.get("value", "")))


def form(html: str, action: str) -> dict[str, Any]:
    parser = _Forms()
    parser.feed(html)
    found = [f for f in parser.forms if f["action"].endswith(action)]
    assert found, f"no form posting to {action}"
    return found[0]


def send(client: httpx.Client, sent: dict[str, Any], *more: tuple[str, str]) -> httpx.Response:
    """Post a form as the browser would, by its enctype."""
    fields = [*sent["fields"], *more]
    if sent["enctype"] == "multipart/form-data":
        return client.post(sent["action"], files=[(k, (None, v)) for k, v in fields])
    return client.post(sent["action"], data=dict(_grouped(fields)))


def _grouped(fields: list[tuple[str, str]]) -> Iterator[tuple[str, list[str]]]:
    names = dict.fromkeys(k for k, _ in fields)
    for name in names:
        yield name, [v for k, v in fields if k == name]


def differences(html: str) -> dict[str, str]:
    """The differences the comparison shows: their ids by drug name."""
    return {unescape(drug): key for key, drug in ROW.findall(html)}


def statement(drug: tuple[str | None, str, str], dosage: str, status: str = "active"):  # type: ignore[no-untyped-def]
    return {
        "resourceType": "MedicationStatement",
        "status": status,
        "medicationCodeableConcept": {
            "coding": [{"system": ATC, "code": drug[1]}],
            "text": drug[2],
        },
        "subject": {"display": "Pasienten"},
        "dosage": [{"text": dosage}],
    }


def discharge(*statements: dict[str, Any]) -> bytes:
    entries = [{"resource": s} for s in statements]
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}).encode()


def compare(client: httpx.Client, page: str, upload: bytes) -> httpx.Response:
    """Step one, with a discharge list uploaded as the start page sends it."""
    return client.post(
        f"{page}/samstemming",
        data={"csrf": csrf(client, f"{page}/samstemming"), "origin": "discharge"},
        files={"discharge": ("epikrise.json", upload, "application/fhir+json")},
    )


def decided(html: str, **choices: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Step two's form, and the decisions on it ("accept" or "reject" by drug name)."""
    ids = differences(html)
    step = form(html, "/samstemming/bekreft")
    assert step["enctype"] == "multipart/form-data"  # the source is not url-encoded
    return step, [(f"decision-{ids[drug]}", choice) for drug, choice in choices.items()]


def on_list(server: LiveServer, scene: Scene) -> dict[str, tuple[str, str]]:
    with server.client("gp") as api:
        bundle = ok(api.get("/fhir/MedicationStatement", params={"patient": scene.pid}))
    return {
        e["resource"]["medicationCodeableConcept"]["text"]: (
            e["resource"]["status"],
            e["resource"]["dosage"][0].get("text", ""),
        )
        for e in bundle["entry"]
    }


# -- overriding a severe finding ----------------------------------------------------------------


def test_a_severe_finding_from_a_medicine_taken_in_is_overridden_with_a_reason(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    with server.client("gp") as api:
        cave = {
            "resourceType": "AllergyIntolerance",
            "patient": {"reference": f"Patient/{scene.pid}"},
            "code": {"coding": [{"system": ATC, "code": "N06AB"}], "text": "SSRI"},
        }
        ok(api.post("/fhir/AllergyIntolerance", json=cave), 201)
    upload = discharge(
        statement(METFORMIN, "1 tablett morgen"), statement(SERTRALIN, "1 tablett morgen")
    )
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        step, choices = decided(ok_page(compare(gp, page, upload)), **{SERTRALIN[2]: "accept"})
        untouched = snapshot(server.db, audit=False)

        # the findings page, in Norwegian, with a form asking for the reason
        r = send(gp, step, *choices)
        assert r.status_code == 200, r.text
        assert "Beslutningsstøtten fant noe" in r.text
        assert "SSRI" in r.text
        assert 'name="override-reason"' in r.text
        assert snapshot(server.db, audit=False) == untouched
        findings = form(r.text, "/samstemming/bekreft")
        carried = dict(findings["fields"])
        assert carried["origin"] == "discharge"
        assert json.loads(carried["source-json"]) == json.loads(upload)
        assert [v for k, v in findings["fields"] if k == "override-code"] != []
        assert ("override-code", "") not in findings["fields"]

        # without a reason it is asked again, beside the reason's field, and nothing is saved
        r = send(gp, findings)
        assert r.status_code == 400, r.text
        assert "Beslutningsstøtten fant noe" in r.text
        assert 'id="override-reason-error"' in r.text
        assert snapshot(server.db, audit=False) == untouched

        reason = "Vurdert: toleranse dokumentert under innleggelsen"
        r = send(gp, findings, ("override-reason", reason))
        assert r.status_code == 303, r.text
        assert r.headers["location"] == page
        shown = gp.get(page).text
        assert "Listen er samstemt og bekreftet: 1 avvik tatt inn" in shown
    assert on_list(server, scene)[SERTRALIN[2]] == ("active", "1 tablett morgen")
    # the reason is kept with the version, in its Provenance
    with server.client("gp") as api:
        provenance = ok(api.get("/fhir/Provenance", params={"target": f"List/{scene.list_id}"}))
    overrides = [
        ext["valueString"]
        for e in provenance["entry"]
        for ext in e["resource"].get("extension", [])
    ]
    assert any(reason in o for o in overrides), overrides


def ok_page(r: httpx.Response, status: int = 200) -> str:
    assert r.status_code == status, f"{r.status_code}: {r.text}"
    return r.text


# -- taking the source's side on a medicine the source does not have ----------------------------


def test_taking_in_a_medicine_not_in_the_source_says_it_discontinues_and_asks_why(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN, SIMVASTATIN)
    upload = discharge(statement(METFORMIN, "1 tablett morgen"))
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        html = ok_page(compare(gp, page, upload))
        row = differences(html)[SIMVASTATIN[2]]
        # the choice says what it does, and there is a reason to give
        assert "Seponer — ikke i kilden" in html
        assert f'name="reason-{row}"' in html
        step, choices = decided(html, **{SIMVASTATIN[2]: "accept"})
        untouched = snapshot(server.db, audit=False)

        # no reason: the comparison again, the choice kept, the message beside the reason
        r = send(gp, step, *choices)
        assert r.status_code == 400, r.text
        assert f'id="reason-{row}-error"' in r.text
        assert f"Velg eller skriv grunnen til at {SIMVASTATIN[2]} seponeres." in r.text
        assert f'name="decision-{row}" value="accept" checked' in r.text
        assert snapshot(server.db, audit=False) == untouched

        # "Annen grunn" with nothing written is no reason either
        r = send(gp, step, *choices, (f"reason-{row}", "annet"), (f"reason-other-{row}", " "))
        assert r.status_code == 400, r.text
        assert snapshot(server.db, audit=False) == untouched

        # with the reason the medicine is discontinued, and the reason kept with it
        r = send(gp, step, *choices, (f"reason-{row}", "Bivirkning"))
        assert r.status_code == 303, r.text
    assert on_list(server, scene)[SIMVASTATIN[2]][0] == "stopped"
    with server.client("gp") as api:
        entry = ok(api.get(f"/fhir/MedicationStatement/{scene.entries[SIMVASTATIN[2]]}"))
    assert entry["statusReason"][0]["text"] == "Bivirkning (Samstemming: står ikke i epikrisen)"


def test_every_difference_shown_is_decided_before_the_list_is_confirmed(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    upload = discharge(statement(METFORMIN, "2 tabletter morgen"), statement(SERTRALIN, "1 tab"))
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        html = ok_page(compare(gp, page, upload))
        rows = differences(html)
        step, choices = decided(html, **{SERTRALIN[2]: "reject"})
        untouched = snapshot(server.db, audit=False)
        r = send(gp, step, *choices)
        assert r.status_code == 400, r.text
        undecided = rows[METFORMIN[2]]
        assert f'id="decision-{undecided}-error"' in r.text
        # the message names the drug, here and in the page's summary of what to fix
        assert f"Velg «Ta inn» eller «Avvis» for {METFORMIN[2]}." in r.text
        # the row decided stays decided
        assert f'name="decision-{rows[SERTRALIN[2]]}" value="reject" checked' in r.text
        assert snapshot(server.db, audit=False) == untouched


# -- a large discharge list ---------------------------------------------------------------------


def test_a_discharge_list_larger_than_a_form_field_is_compared_and_confirmed(
    server: LiveServer,
) -> None:
    """Step two sends the source back; 1.5 MB of it (3 MB url-encoded) is more than a
    url-encoded field may hold, so the form is multipart."""
    scene = patient_with_medicines(server, METFORMIN, SIMVASTATIN)
    padding = statement(SIMVASTATIN, "1 tablett morgen", status="entered-in-error")
    # long notes, so that the size comes from few entries (a source holds at most 300)
    padding["note"] = [{"text": "Registrert ved en feil under innleggelsen. " * 400}]
    wanted = [
        statement(METFORMIN, "2 tabletter morgen"),
        statement(SIMVASTATIN, "1 tablett morgen"),
    ]
    statements = list(wanted)
    while len(discharge(*statements)) < 1_500_000:
        statements.extend([padding] * 10)
    upload = discharge(*statements)
    assert 1_500_000 <= len(upload) < 2 * 1024 * 1024
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        html = ok_page(compare(gp, page, upload))
        assert set(differences(html)) == {METFORMIN[2]}
        step, choices = decided(html, **{METFORMIN[2]: "accept"})
        assert len(dict(step["fields"])["source-json"]) > 1024 * 1024
        r = send(gp, step, *choices)
        assert r.status_code == 303, r.text
        assert "1 avvik tatt inn, 0 avvist" in gp.get(page).text
    assert on_list(server, scene)[METFORMIN[2]] == ("active", "2 tabletter morgen")


# -- forms a browser never sends ----------------------------------------------------------------


def test_a_carried_source_that_is_no_json_object_is_refused_and_changes_nothing(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    upload = discharge(statement(METFORMIN, "2 tabletter morgen"))
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        step, choices = decided(ok_page(compare(gp, page, upload)), **{METFORMIN[2]: "accept"})
        before = snapshot(server.db, audit=False)
        for bad, said in (
            ("[]", "ikke en FHIR-ressurs (et JSON-objekt)"),
            ('"x"', "ikke en FHIR-ressurs (et JSON-objekt)"),
            ("{nei", "ikke JSON"),
        ):
            fields = [(k, bad if k == "source-json" else v) for k, v in step["fields"]]
            r = send(gp, {**step, "fields": fields}, *choices)
            assert r.status_code == 400, (bad, r.text)
            assert said in r.text, (bad, r.text)
            assert "Begynn samstemmingen på nytt" in r.text
        assert snapshot(server.db, audit=False) == before


def test_a_version_that_is_no_version_is_refused_and_changes_nothing(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    upload = discharge(statement(METFORMIN, "2 tabletter morgen"))
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        step, choices = decided(ok_page(compare(gp, page, upload)), **{METFORMIN[2]: "accept"})
        before = snapshot(server.db, audit=False)
        for bad in ("²", "99999999999999999999", "-1", "", "1e3"):
            fields = [(k, bad if k == "version" else v) for k, v in step["fields"]]
            r = send(gp, {**step, "fields": fields}, *choices)
            assert r.status_code == 400, (bad, r.text)
            assert "listeversjonen" in r.text, (bad, r.text)
        assert snapshot(server.db, audit=False) == before


# -- the list moved on since the comparison -----------------------------------------------------


def test_a_list_changed_since_the_comparison_is_compared_again_with_the_same_source(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN, SIMVASTATIN)
    upload = discharge(
        statement(METFORMIN, "2 tabletter morgen"), statement(SIMVASTATIN, "1 tablett morgen")
    )
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        step, choices = decided(ok_page(compare(gp, page, upload)), **{METFORMIN[2]: "accept"})
        compared = int(dict(step["fields"])["version"])
        # meanwhile another doctor changes the very dose the difference is about
        with server.client("gp") as api:
            entry = ok(api.get(f"/fhir/MedicationStatement/{scene.entries[METFORMIN[2]]}"))
            entry["dosage"] = [{"text": "3 tabletter morgen"}]
            ok(
                api.put(
                    f"/fhir/MedicationStatement/{entry['id']}",
                    json=entry,
                    headers={"If-Match": f'W/"{entry["meta"]["versionId"]}"'},
                )
            )
        before = snapshot(server.db, audit=False)
        r = send(gp, step, *choices)
        assert r.status_code == 409, r.text
        assert "Listen er endret siden du sammenlignet" in r.text
        assert "Ingenting er lagret" in r.text
        assert snapshot(server.db, audit=False) == before
        again = form(r.text, "/samstemming")
        assert again["enctype"] == "multipart/form-data"
        carried = dict(again["fields"])
        assert carried["origin"] == "discharge"
        assert json.loads(carried["source-json"]) == json.loads(upload)

        # comparing again shows the difference as it is now, and it is taken
        html = ok_page(send(gp, again))
        assert "3 tabletter morgen" in html
        step, choices = decided(html, **{METFORMIN[2]: "accept"})
        assert int(dict(step["fields"])["version"]) == compared + 1
        r = send(gp, step, *choices)
        assert r.status_code == 303, r.text
    assert on_list(server, scene)[METFORMIN[2]] == ("active", "2 tabletter morgen")


def test_a_difference_that_no_longer_stands_offers_to_compare_again(server: LiveServer) -> None:
    """The list has not moved, but an accepted difference is not among those of the list and
    the source now (the source moved on, as a dispensing history does)."""
    scene = patient_with_medicines(server, METFORMIN)
    upload = discharge(statement(METFORMIN, "2 tabletter morgen"))
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        html = ok_page(compare(gp, page, upload))
        # every row shown is decided (the form asks for it), and one no longer there accepted
        step, rows = decided(html, **dict.fromkeys(differences(html), "reject"))
        before = snapshot(server.db, audit=False)
        r = send(gp, step, *rows, ("decision-0123456789abcdef", "accept"))
        assert r.status_code == 409, r.text
        assert "Sammenlign på nytt" in r.text
        assert snapshot(server.db, audit=False) == before


# -- the multidose pharmacy's proposals ---------------------------------------------------------


def test_a_proposal_on_an_entry_changed_since_offers_no_accept(server: LiveServer) -> None:
    """The service refuses to accept it (relay baton), so the page does not offer it."""
    with server.client("gp") as api, server.client("pharmacist") as pharmacist:
        p = multidose.new_patient(server, api)
        metformin, amlodipin = p.entries["Metformin"], p.entries["Amlodipin"]
        proposal = ok(
            pharmacist.post(
                f"/fhir/List/{p.list_id}/$propose",
                json=multidose.params(
                    multidose.change_item(metformin, 0.5), multidose.remove_item(amlodipin)
                ),
            )
        )
        changed_item, fresh_item = (i["id"] for i in multidose.items_of(proposal))
        changed = {**metformin, "dosage": dose(2, "MORN", "EVE")}
        ok(
            api.put(
                f"/fhir/MedicationStatement/{metformin['id']}",
                json=changed,
                headers={"If-Match": f'W/"{metformin["meta"]["versionId"]}"'},
            )
        )
    with logged_in(server, "gp") as gp:
        html = ok_page(gp.get(f"{opened(gp, p.fnr)}/forslag"))
    assert "Forslaget kan ikke godtas" in html
    assert f'name="outcome-{changed_item}" value="accept"' not in html
    assert f'name="outcome-{changed_item}" value="reject"' in html
    assert f'name="outcome-{fresh_item}" value="accept"' in html
