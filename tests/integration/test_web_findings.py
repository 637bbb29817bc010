"""The doctor's findings page over real HTTP, on both databases: past the cap of one answer
(``MAX_FINDINGS``) it still shows every blocking finding with its message, and the override
the page sends names exactly those, so a doctor can always save after giving a reason, and
never for a finding the page did not show (DESIGN §3 rule 6)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

from pll.catalog.importer import import_fest
from pll.domain import limits
from tests.conftest import LiveServer, snapshot
from tests.e2e.scenes import METFORMIN, SIMVASTATIN, patient_with_medicines
from tests.integration.builders import ok, reactions
from tests.integration.test_web_reconcile import (
    SERTRALIN,
    compare,
    csrf,
    decided,
    discharge,
    form,
    logged_in,
    ok_page,
    on_list,
    opened,
    send,
    statement,
)

SMALL = Path(__file__).resolve().parents[1] / "fixtures" / "fest" / "small.xml"
#: Klaritromycin Fjordpharma Tab 500 mg (a brand, LegemiddelMerkevare) in small.xml
CLARITHRO = "ID_4E3A8254-FCBF-4EE9-9FA3-3058996D5338"
#: a finding noticed after a save: its severity and text
NOTICED = re.compile(r'<p class="notice (\w+)" role="\w+"><strong>[^<]*</strong> ([^<]*)</p>')
FINDING = re.compile(r'<li class="finding (\w+)"><strong>[^<]*</strong> ([^<]*)</li>')
#: one blocking finding more than an answer's cap
N = limits.MAX_FINDINGS + 5


def blocking_reactions(server: LiveServer, pid: str, atc: str) -> list[str]:
    """``N`` recorded reactions to one ATC group: each is a blocking CAVE finding."""
    with server.client("gp") as api:
        return reactions(api, pid, atc, N)


def shown(html: str) -> list[tuple[str, str]]:
    """The findings the page shows: severity and text."""
    return [(severity, unescape(text)) for severity, text in FINDING.findall(html)]


def override_codes(page: dict[str, object]) -> list[str]:
    fields = page["fields"]
    assert isinstance(fields, list)
    sent = [v for k, v in fields if k == "override-code"]
    assert len(sent) == 1, "one field, however many findings block"
    return str(sent[0]).split(",")


def overrides(server: LiveServer, list_id: str) -> list[str]:
    with server.client("gp") as api:
        provenance = ok(api.get("/fhir/Provenance", params={"target": f"List/{list_id}"}))
    return [
        ext["valueString"]
        for e in provenance["entry"]
        for ext in e["resource"].get("extension", [])
    ]


def test_a_refused_change_shows_every_blocking_finding_and_is_saved_with_the_override(
    server: LiveServer,
) -> None:
    """Samstemming brings a medicine with more blocking findings than an answer's cap: the
    page the refusal leads to shows them all, and the override it sends is taken."""
    scene = patient_with_medicines(server, METFORMIN)
    cave = blocking_reactions(server, scene.pid, "N06AB")
    upload = discharge(
        statement(METFORMIN, "1 tablett morgen"), statement(SERTRALIN, "1 tablett morgen")
    )
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        step, choices = decided(ok_page(compare(gp, page, upload)), **{SERTRALIN[2]: "accept"})
        untouched = snapshot(server.db, audit=False)
        r = send(gp, step, *choices)
        assert r.status_code == 200, r.text
        assert "Beslutningsstøtten fant noe" in r.text
        found = shown(r.text)
        blocking = [text for severity, text in found if severity == "error"]
        assert len(blocking) == N
        assert {t.split(";")[0] for t in blocking} == {
            f"CAVE: pasienten har registrert reaksjon på reaksjon {i}" for i in range(N)
        }
        assert snapshot(server.db, audit=False) == untouched
        findings = form(r.text, "/samstemming/bekreft")
        assert sorted(override_codes(findings)) == sorted(cave)

        reason = "Vurdert: reaksjonene gjelder et annet SSRI"
        r = send(gp, findings, ("override-reason", reason))
        assert r.status_code == 303, r.text
        assert r.headers["location"] == page
    assert on_list(server, scene)[SERTRALIN[2]] == ("active", "1 tablett morgen")
    (kept,) = [o for o in overrides(server, scene.list_id) if reason in o]
    assert all(c in kept for c in cave)


def test_prescribing_shows_every_blocking_finding_before_saving(server: LiveServer) -> None:
    """The page before a prescription is saved: every blocking finding, the override of
    exactly those, and the prescription saved with it."""
    import_fest(
        server.db,
        io.BytesIO(SMALL.read_bytes()),
        "small.xml",
        now=datetime(2026, 11, 22, tzinfo=UTC),
    )
    scene = patient_with_medicines(server, SIMVASTATIN)
    cave = blocking_reactions(server, scene.pid, "J01FA")
    prescribe = f"/lege/pasient/{scene.pid}/ny"
    with logged_in(server, "gp") as gp:
        opened(gp, scene.fnr)
        fields = {
            "csrf": csrf(gp, prescribe),
            "drug": CLARITHRO,
            "dose-mode": "fixed",
            "dose-unit": "tablett",
            "dose-MORN": "1",
            "treatment": "1",
        }
        r = gp.post(prescribe, data=fields)
        assert r.status_code == 200, r.text
        blocking = [text for severity, text in shown(r.text) if severity == "error"]
        assert len(blocking) == N + 1  # every reaction, and the interaction with simvastatin
        assert any(t.startswith("Interaksjon Simvastatin") for t in blocking)
        findings = form(r.text, prescribe)
        codes = override_codes(findings)
        assert set(cave) < set(codes)
        assert len(codes) == N + 1
        reason = "Vurdert: kort kur, statin pauses"
        r = send(gp, findings, ("override-reason", reason))
        assert r.status_code == 303, r.text
        # the list page reminds of the first ten, styled as what they are (not the success
        # green), and counts the rest, not 106 notices
        page = gp.get(r.headers["location"]).text
        reminders = [(level, unescape(text)) for level, text in NOTICED.findall(page)]
        assert len(reminders) == 10
        assert {level for level, _ in reminders} == {"error"}
        assert all(t.startswith(("Interaksjon", "CAVE")) for _, t in reminders)
        assert f"Merk: {N + 1 - 10} funn til er ikke gjentatt her" in unescape(page)
    assert "Klaritromycin Fjordpharma Tab 500 mg" in on_list(server, scene)
    (kept,) = [o for o in overrides(server, scene.list_id) if reason in o]
    assert all(c in kept for c in cave)


def test_an_override_sent_without_a_shown_finding_is_refused(server: LiveServer) -> None:
    """A page that named fewer blocking findings than the change brings (as a stale page
    would) saves nothing: the findings page is shown again with all of them."""
    scene = patient_with_medicines(server, METFORMIN)
    cave = blocking_reactions(server, scene.pid, "N06AB")
    upload = discharge(
        statement(METFORMIN, "1 tablett morgen"), statement(SERTRALIN, "1 tablett morgen")
    )
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        step, choices = decided(ok_page(compare(gp, page, upload)), **{SERTRALIN[2]: "accept"})
        findings = form(send(gp, step, *choices).text, "/samstemming/bekreft")
        untouched = snapshot(server.db, audit=False)
        partial = {
            **findings,
            "fields": [
                (k, ",".join(cave[1:]) if k == "override-code" else v)
                for k, v in findings["fields"]
            ],
        }
        r = send(gp, partial, ("override-reason", "Vurdert"))
        assert r.status_code == 200, r.text
        assert "Beslutningsstøtten fant noe" in r.text
        assert snapshot(server.db, audit=False) == untouched


def test_findings_not_shown_before_the_save_are_not_said_to_have_been(
    server: LiveServer,
) -> None:
    """Findings that stop nothing (here: medicines with no code, not checked) are saved
    without a findings page; the notice after the save does not claim they were shown."""
    scene = patient_with_medicines(server, METFORMIN)
    uncoded = [f"Naturlegemiddel {i}" for i in range(12)]
    upload = discharge(
        statement(METFORMIN, "1 tablett morgen"),
        *(
            {
                **statement((None, "X", name), "1 tablett morgen"),
                "medicationCodeableConcept": {"text": name},
            }
            for name in uncoded
        ),
    )
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        step, choices = decided(
            ok_page(compare(gp, page, upload)), **dict.fromkeys(uncoded, "accept")
        )
        r = send(gp, step, *choices)
        assert r.status_code == 303, r.text
        notices = unescape(gp.get(r.headers["location"]).text)
    assert len(NOTICED.findall(notices)) == 10
    assert "ble vist før du lagret" not in notices
    assert "Merk: beslutningsstøtten fant 2 funn til i endringen; bare de 10 viktigste" in notices
