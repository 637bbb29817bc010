"""Refused forms keep the user's work, in Norwegian (issue 16), over real HTTP on both
databases: the form comes back (4xx) with every value typed, the message beside the field
(and in the summary at the top), and nothing saved; no page a user can reach with bad input
says anything in English, and no form lets the browser speak for it (``required``,
``pattern``: "Please fill out this field")."""

from __future__ import annotations

import re
from html import unescape

import httpx

from tests.conftest import LiveServer, snapshot
from tests.e2e.scenes import METFORMIN, patient_with_medicines
from tests.integration import test_multidose as multidose
from tests.integration.builders import new_fnr, small_catalogue_and_list
from tests.integration.test_web import csrf, logged_in, opened

#: Words that do not occur in the pages' Norwegian, and do in the English messages seen.
ENGLISH = re.compile(
    r"\b(the|must|should|please|only|field|string|pattern|identifier|unknown|characters|"
    r"digit|expected|does|wrong|search|is|not a|fill out)\b",
    re.IGNORECASE,
)
BROWSER_CHECKS = re.compile(r"<(input|textarea|select)\b[^>]*\s(required|pattern=)", re.IGNORECASE)


def mistyped(fnr: str) -> str:
    """The number with its last check digit changed: a typing error the check digit finds."""
    return fnr[:10] + str((int(fnr[10]) + 1) % 10)


def text_of(html: str) -> str:
    """What a person reads on the page: the text, without the tags or the script."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.DOTALL)
    return unescape(re.sub(r"<[^>]+>", " ", html))


def beside(html: str, field: str) -> str:
    """The message shown beside ``field`` (the element the field's aria-describedby names)."""
    message = rf'<p class="field-error" id="{re.escape(field)}-error">(.*?)</p>'
    found = re.search(message, html, re.S)
    assert found, f"no message beside {field}"
    return text_of(found.group(1)).replace("Feil:", "").strip()


def refused(r: httpx.Response, field: str, *kept: str) -> str:
    """A refused form: 4xx, the message beside ``field`` and in the summary, the field
    marked invalid, every value in ``kept`` shown again, and no English anywhere."""
    assert 400 <= r.status_code < 500, f"{r.status_code}: {r.text[:500]}"
    html = r.text
    said = beside(html, field)
    assert "Skjemaet ble ikke lagret" in html
    assert f'aria-describedby="{field}-error' in html
    assert f'href="#{field}-error"' in html
    for value in kept:
        assert value in html, f"{value!r} was not kept"
    no_english(html)
    return said


def no_english(html: str) -> None:
    english = ENGLISH.findall(text_of(html))
    assert not english, f"English on the page: {english}: {text_of(html)[:2000]}"
    assert not BROWSER_CHECKS.search(html), BROWSER_CHECKS.search(html)


def test_a_mistyped_fodselsnummer_comes_back_with_the_number_and_the_reason(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    wrong = mistyped(scene.fnr)
    with logged_in(server, "gp") as gp:
        before = snapshot(server.db)
        sent = {"csrf": csrf(gp, "/lege"), "fnr": wrong, "basis": "HPAKUTT"}
        r = gp.post("/lege/apne", data=sent)
        said = refused(r, "fnr", f'value="{wrong}"')
        assert said == (
            "Fødselsnummeret er feilskrevet: andre kontrollsiffer (siffer 11) stemmer ikke."
        )
        # nothing was read, so nothing was logged either
        assert snapshot(server.db) == before
        # the basis chosen is kept too
        assert '<option value="HPAKUTT" selected>' in r.text
        r = gp.post("/lege/apne", data={"csrf": csrf(gp, "/lege"), "fnr": ""})
        assert refused(r, "fnr") == "Skriv pasientens fødselsnummer eller D-nummer."
        r = gp.post("/lege/apne", data={"csrf": csrf(gp, "/lege"), "fnr": "1234567890a"})
        assert "0–9" in refused(r, "fnr", 'value="1234567890a"')
        # the pharmacy's search says the same
    with logged_in(server, "pharmacist") as pharmacy:
        r = pharmacy.post("/apotek/apne", data={"csrf": csrf(pharmacy, "/apotek"), "fnr": wrong})
        assert "kontrollsiffer" in refused(r, "fnr", f'value="{wrong}"')


def test_a_refused_dose_comes_back_as_typed_and_nothing_is_saved(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    entry = scene.entries[METFORMIN[2]]
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        form = f"{page}/legemiddel/{entry}/dose"
        before = snapshot(server.db, audit=False)
        sent = {
            "csrf": csrf(gp, form),
            "version": "1",
            "dose-mode": "fixed",
            "dose-unit": "tablett",
            "dose-MORN": "2",
            "dose-EVE": "1e5",
        }
        r = gp.post(form, data=sent)
        said = refused(r, "dose-EVE", 'value="1e5"', 'value="2"')
        assert said.startswith("Kveld: «1e5» er ikke en mengde")
        assert snapshot(server.db, audit=False) == before
        # the mode chosen is kept: free text, with what was (not) written
        cleared = {"dose-MORN": "", "dose-EVE": ""}  # nothing typed in another mode is dropped
        r = gp.post(form, data={**sent, **cleared, "dose-mode": "text", "dose-text": ""})
        assert refused(r, "dose-text") == "Skriv doseringen."
        assert 'value="text" checked' in r.text
        assert snapshot(server.db, audit=False) == before


def test_each_doctor_form_comes_back_with_its_message_beside_the_field(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    entry = scene.entries[METFORMIN[2]]
    with server.client("gp") as api:
        small_catalogue_and_list(server.db, api)
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        before = snapshot(server.db, audit=False)
        # discontinue: "Annet" chosen and nothing written
        form = f"{page}/legemiddel/{entry}/seponer"
        r = gp.post(form, data={"csrf": csrf(gp, form), "version": "1", "reason": "annet"})
        assert refused(r, "reason") == "Velg eller skriv en grunn til seponeringen."
        assert 'value="annet" checked' in r.text
        # recall: no reason chosen
        form = f"{page}/legemiddel/{entry}/tilbakekall"
        rx = scene.prescriptions[METFORMIN[2]]
        r = gp.post(form, data={"csrf": csrf(gp, form), "version": "1", "prescription": rx})
        assert refused(r, "reason") == "Velg en grunn til tilbakekallingen."
        # prescribe: a search of nothing searchable, then a form with no drug chosen
        r = gp.get(f"{page}/ny", params={"q": "%"})
        assert "Skriv minst én bokstav eller ett tall" in refused(r, "q", 'value="%"')
        form = f"{page}/ny"
        r = gp.post(
            form,
            data={
                "csrf": csrf(gp, f"{form}?q=simvastatin"),
                "q": "simvastatin",
                "dose-mode": "fixed",
                "dose-MORN": "1",
                "indication": "Diabetes type 2",
                "treatment": "3",
            },
        )
        assert refused(r, "drug", 'value="Diabetes type 2"') == "Velg et legemiddel fra søket."
        assert '<option value="3" selected>' in r.text
        assert 'name="eresept" value="1" >' in r.text  # left unticked, as sent
        # pausing the whole list without a reason: the list page, the reason asked for
        r = gp.post(f"{page}/pause", data={"csrf": csrf(gp, page), "version": "2"})
        assert refused(r, "reason").startswith("Skriv hvorfor listen pauses")
        assert '<details class="list-pause" open>' in r.text
        # a discrepancy reported without saying what is wrong
        r = gp.post(f"{page}/avvik", data={"csrf": csrf(gp, page), "gjelder": "List/x"})
        assert refused(r, "beskrivelse") == "Skriv hva som er feil."
        # reconciliation: a patient's line with no name
        form = f"{page}/samstemming"
        typed = "Paracet 500 mg; 2 ved behov\n; 1 tablett"
        r = gp.post(form, data={"csrf": csrf(gp, form), "origin": "patient", "patient-list": typed})
        said = refused(r, "patient-list", "Paracet 500 mg; 2 ved behov\n; 1 tablett")
        assert said.startswith("Linje 2: skriv legemidlets navn")
        assert 'value="patient" checked' in r.text
        assert snapshot(server.db, audit=False) == before


def test_the_pharmacy_and_the_patient_forms_come_back_in_norwegian(server: LiveServer) -> None:
    with server.client("gp") as api:
        p = multidose.new_patient(server, api)
    amlodipin = p.entries["Amlodipin"]["id"]
    with logged_in(server, "pharmacist") as pharmacy:
        form = f"/apotek/pasient/{p.pid}/legemiddel/{amlodipin}/seponer"
        before = snapshot(server.db, audit=False)
        r = pharmacy.post(
            form, data={"csrf": csrf(pharmacy, form), "version": "1", "note": "Ring meg"}
        )
        assert refused(r, "reason", "Ring meg") == "Skriv hvorfor legemidlet bør seponeres."
        form = f"/apotek/pasient/{p.pid}/nytt"
        r = pharmacy.post(
            form, data={"csrf": csrf(pharmacy, form), "drug": "Paracet", "dose-MORN": "0"}
        )
        said = refused(r, "dose-MORN", 'value="Paracet"', 'value="0"')
        assert said.endswith("må være over 0; du skrev «0».")
        assert 'name="multidose"' not in r.text  # a free-text medicine is never packed
        assert snapshot(server.db, audit=False) == before
    # another pharmacy is told, in Norwegian, that this patient is not theirs
    with logged_in(server, "other-pharmacist") as other:
        r = other.get(f"/apotek/pasient/{p.pid}")
        assert r.status_code == 403
        assert "Apoteket ditt er ikke registrert som pasientens multidoseapotek" in r.text
        assert "melder hva som er pakket" not in r.text  # it was reading, not reporting
        no_english(r.text)
    with logged_in(server, "patient", p.fnr) as patient:
        form = f"/pasient/{p.pid}/sperring"
        r = patient.post(
            form, data={"csrf": csrf(patient, form), "hpr": "12ab", "name": "Dr. Nysgjerrig"}
        )
        assert "1 til 9 sifre" in refused(r, "hpr", 'value="12ab"', 'value="Dr. Nysgjerrig"')


def test_the_development_login_keeps_the_number_and_says_what_is_wrong(
    server: LiveServer,
) -> None:
    wrong = mistyped(new_fnr())
    with httpx.Client(base_url=server.base, timeout=30) as client:
        sent = {"csrf": csrf(client), "persona": "patient", "pid": wrong}
        r = client.post("/logg-inn/utvikler", data=sent)
        assert "kontrollsiffer" in refused(r, "pid", f'value="{wrong}"')
        assert 'value="patient" checked' in r.text
