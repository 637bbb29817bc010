"""Decision support and request size bounded (issue 15; DESIGN §3 rules 6 and 8), over HTTP
on both databases: each finding once per answer, at most ``MAX_FINDINGS`` of them with a count
of the rest, at most ``MAX_BUNDLE_ENTRIES`` entries per Bundle and ``MAX_LIST_ENTRIES``
medicines per list, and the limits stated in ``/fhir/metadata``.

Some tests lower a limit for their own run (the server runs in this process), so that a few
entries show what the real numbers would need hundreds for; others use the real numbers.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from pll.domain import changes, limits
from pll.fhir import findings
from pll.services import allergies, transaction
from tests.conftest import LiveServer, snapshot
from tests.integration.builders import (
    ok,
    outcome_text,
    reactions,
    small_catalogue_and_list,
)
from tests.integration.builders import patient as new_patient

SMALL = Path(__file__).resolve().parents[1] / "fixtures" / "fest" / "small.xml"
FEST = "http://ehelse.no/fhir/CodeSystem/FEST"
ATC = "http://www.whocc.no/atc"
LIMITS = "http://pll.invalid/fhir/StructureDefinition/request-limits"
SIMVA = ("046321", "C10AA01", "Simvastatin Fjordpharma Tab 20 mg")
CLARITHRO = ("173456", "J01FA09", "Klaritromycin Fjordpharma Tab 500 mg")


@pytest.fixture
def patient(server: LiveServer) -> dict[str, str]:
    with server.client() as gp:
        return small_catalogue_and_list(server.db, gp)


def statement(pid: str, drug: tuple[str, str, str] | str) -> dict[str, Any]:
    """An entry of a FEST-coded drug, or (a string) of a medicine named by text only."""
    concept: dict[str, Any] = (
        {"text": drug}
        if isinstance(drug, str)
        else {
            "coding": [{"system": FEST, "code": drug[0]}, {"system": ATC, "code": drug[1]}],
            "text": drug[2],
        }
    )
    return {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": concept,
        "subject": {"reference": f"Patient/{pid}"},
        "dosage": [{"text": "1 tablett morgen"}],
    }


def bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": r,
                "request": {"method": "POST", "url": r["resourceType"]},
            }
            for r in resources
        ],
    }


def uncoded(pid: str, n: int) -> list[dict[str, Any]]:
    """Entries that each bring one finding of their own (not checked: no code)."""
    return [statement(pid, f"Urtepreparat {i}") for i in range(n)]


def codes(issue: dict[str, Any]) -> str:
    return str(issue.get("details", {}).get("coding", [{}])[0].get("code"))


def left_out(issue: dict[str, Any]) -> dict[str, int]:
    assert codes(issue) == findings.LEFT_OUT
    (ext,) = issue["extension"]
    return {e["url"]: e["valueInteger"] for e in ext["extension"]}


def override(refused: httpx.Response) -> dict[str, str]:
    """A doctor's override of every blocking finding a 422 names (from the refusal's
    details; each of them is also one of the refusal's issues)."""
    detail = {
        e["url"]: e["valueString"]
        for d in refused.json()["issue"][0]["extension"]
        for e in d["extension"]
    }
    return {
        "X-PLL-Override": "Vurdert: kort kur, statin pauses",
        "X-PLL-Override-Findings": detail["overrideFindings"],
    }


def outcomes(response: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """Every issue of a transaction-response, with the index of the entry it is on."""
    return [
        (i, issue)
        for i, e in enumerate(response["entry"])
        for issue in e["response"].get("outcome", {}).get("issue", [])
    ]


def test_a_transaction_answers_each_finding_once(
    server: LiveServer, patient: dict[str, str]
) -> None:
    """60 entries of one substance and a macrolide: one duplicate group and one interaction,
    each on the first entry it names, not repeated on each of the 61 entries."""
    pid = patient["pid"]
    resources = [statement(pid, SIMVA) for _ in range(60)]
    resources.insert(5, statement(pid, CLARITHRO))
    with server.client() as gp:
        refused = gp.post("/fhir", json=bundle(resources))
        assert refused.status_code == 422
        issues = refused.json()["issue"][1:]
        assert [codes(i) for i in issues] == ["interaction", "duplicate-therapy"]
        done = ok(gp.post("/fhir", json=bundle(resources), headers=override(refused)))
    placed = outcomes(done)
    assert [(at, codes(i)) for at, i in placed] == [(0, "interaction"), (0, "duplicate-therapy")]
    duplicate = placed[1][1]
    assert len(duplicate["expression"]) == 60
    assert "(samme virkestoff)" in duplicate["diagnostics"]
    assert "og 50 andre" in duplicate["diagnostics"]
    interaction = placed[0][1]
    assert interaction["severity"] == "error"
    assert len(interaction["expression"]) == 61
    # what was 60 x 59 duplicate pairs is one issue; the answer is the resources and little else
    assert len(httpx.Response(200, json=done).content) < 61 * 2_000


def test_every_answer_is_capped_blocking_first_with_the_count_left_out(
    server: LiveServer, patient: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(findings, "MAX_FINDINGS", 5)
    pid, list_id = patient["pid"], patient["list"]
    change = bundle([*uncoded(pid, 8), statement(pid, CLARITHRO)])
    with server.client() as gp:
        ok(gp.post("/fhir/MedicationStatement", json=statement(pid, SIMVA)), 201)
        # a refusal: the blocking interaction first, four more, and the count of the rest
        refused = gp.post("/fhir", json=change)
        assert refused.status_code == 422
        issues = refused.json()["issue"][1:]
        assert [codes(i) for i in issues[:5]] == ["interaction", *["not-checked"] * 4]
        assert left_out(issues[5]) == {"total": 9, "shown": 5, "leftOut": 4}
        assert issues[5]["severity"] == "information"
        assert "Svaret viser 5 av 9 funn; 4 er utelatt (4 til informasjon)" in outcome_text(refused)
        # the trial run and the accepted change: the same five, and the count
        tried = ok(gp.post("/fhir/List/$check", json=change))
        assert [codes(i) for i in tried["issue"]] == [
            "interaction",
            *["not-checked"] * 4,
            findings.LEFT_OUT,
        ]
        done = ok(gp.post("/fhir", json=change, headers=override(refused)))
        placed = outcomes(done)
        # each on the first entry it names; the count on the first entry
        assert [(at, codes(i)) for at, i in placed] == [
            (0, "not-checked"),
            (0, findings.LEFT_OUT),
            (1, "not-checked"),
            (2, "not-checked"),
            (3, "not-checked"),
            (8, "interaction"),
        ]
        assert left_out(placed[1][1])["leftOut"] == 4
        # the whole list on demand
        checked = ok(gp.get(f"/fhir/List/{list_id}/$check"))
        assert left_out(checked["issue"][-1])["total"] == 9
        assert len(checked["issue"]) == 6
        # CDS Hooks: five cards and one that counts the rest
        drafts = {
            "entry": [
                {"resource": {**s, "resourceType": "MedicationRequest", "id": f"d{i}"}}
                for i, s in enumerate(uncoded(pid, 7))
            ]
        }
        request = {"hook": "order-select", "context": {"patientId": pid, "draftOrders": drafts}}
        cards = ok(gp.post("/cds-services/pll-medication-check", json=request))["cards"]
        assert len(cards) == 6
        assert cards[-1]["summary"] == "2 funn til er utelatt"
        assert cards[-1]["indicator"] == "info"


def test_every_blocking_finding_is_shown_past_the_cap_and_an_override_names_only_those(
    server: LiveServer, patient: dict[str, str]
) -> None:
    """An override must never cover a finding its author did not see (DESIGN §3 rule 6).
    With the real cap: a change that brings more blocking findings than one answer's cap
    shows every one of them, with its message; the codes the refusal asks an override to
    name are exactly those shown; an override naming what was shown is taken. Only the
    findings that do not block are left out and counted."""
    pid = patient["pid"]
    n = limits.MAX_FINDINGS + 5
    change = bundle([statement(pid, CLARITHRO), *uncoded(pid, 10)])
    with server.client() as gp:
        cave = reactions(gp, pid, "J01FA", n)
        ok(gp.post("/fhir/MedicationStatement", json=statement(pid, SIMVA)), 201)
        refused = gp.post("/fhir", json=change)
        assert refused.status_code == 422
        *blocking, counted = refused.json()["issue"][1:]
        # n CAVE findings and the interaction with simvastatin, each with its message
        assert len(blocking) == n + 1
        assert {i["severity"] for i in blocking} == {"error"}
        shown = {i["details"]["coding"][0]["display"]: i["diagnostics"] for i in blocking}
        assert set(cave) < set(shown)
        assert all(shown[c].startswith("CAVE: pasienten har registrert reaksjon på") for c in cave)
        # only information is left out
        assert left_out(counted) == {"total": n + 11, "shown": n + 1, "leftOut": 10}
        assert counted["severity"] == "information"
        assert "OBS" not in counted["diagnostics"]
        assert "Alle blokkerende funn vises" in counted["diagnostics"]
        named = override(refused)["X-PLL-Override-Findings"].split(",")
        assert sorted(named) == sorted(shown)
        # an override that names exactly the findings shown is taken, and kept with the change
        done = gp.post(
            "/fhir",
            json=change,
            headers={
                "X-PLL-Override": "Vurdert: kort kur",
                "X-PLL-Override-Findings": ",".join(shown),
            },
        )
        assert done.status_code == 200, done.text
        # the same answer in the trial run: every blocking finding, the information counted
        tried = ok(gp.post("/fhir/List/$check", json=change))
        assert len([i for i in tried["issue"] if i["severity"] == "error"]) == n + 1


def test_an_override_that_leaves_out_a_blocking_finding_shown_is_refused(
    server: LiveServer, patient: dict[str, str]
) -> None:
    pid = patient["pid"]
    with server.client() as gp:
        (cave,) = reactions(gp, pid, "J01FA", 1)
        ok(gp.post("/fhir/MedicationStatement", json=statement(pid, SIMVA)), 201)
        refused = gp.post("/fhir/MedicationStatement", json=statement(pid, CLARITHRO))
        assert refused.status_code == 422
        before = snapshot(server.db, audit=False)
        r = gp.post(
            "/fhir/MedicationStatement",
            json=statement(pid, CLARITHRO),
            headers={"X-PLL-Override": "Vurdert", "X-PLL-Override-Findings": cave},
        )
        assert r.status_code == 422
        assert snapshot(server.db, audit=False) == before
        r = gp.post(
            "/fhir/MedicationStatement", json=statement(pid, CLARITHRO), headers=override(refused)
        )
        assert r.status_code == 201
        assert r.headers["X-PLL-Findings"] == "2"


def test_a_check_on_a_big_list_is_bounded(server: LiveServer, patient: dict[str, str]) -> None:
    """With the real cap: a list with more findings than one answer carries."""
    pid, list_id = patient["pid"], patient["list"]
    n = limits.MAX_FINDINGS + 20
    with server.client() as gp:
        ok(gp.post("/fhir", json=bundle(uncoded(pid, n))))
        checked = gp.get(f"/fhir/List/{list_id}/$check")
    issues = ok(checked)["issue"]
    assert len(issues) == limits.MAX_FINDINGS + 1
    assert left_out(issues[-1]) == {
        "total": n,
        "shown": limits.MAX_FINDINGS,
        "leftOut": 20,
    }
    assert len(checked.content) < (limits.MAX_FINDINGS + 1) * 1_000


def test_a_bundle_over_the_limit_is_refused_before_any_work(
    server: LiveServer, patient: dict[str, str]
) -> None:
    pid = patient["pid"]
    # entries nobody could accept: the count is refused before any of them is read
    over = bundle(
        [{"resourceType": "MedicationStatement", "bogus": True}] * (limits.MAX_BUNDLE_ENTRIES + 1)
    )
    before = snapshot(server.db)
    with server.client() as gp:
        for path in ("/fhir", "/fhir/List/$check"):
            r = gp.post(path, json=over)
            assert r.status_code == 422
            assert (
                f"more than the {limits.MAX_BUNDLE_ENTRIES} one request may hold" in outcome_text(r)
            )
            detail = {
                e["url"]: e["valueString"]
                for d in r.json()["issue"][0]["extension"]
                for e in d["extension"]
            }
            assert detail == {
                "limit": str(limits.MAX_BUNDLE_ENTRIES),
                "entries": str(limits.MAX_BUNDLE_ENTRIES + 1),
            }
        drafts = {
            "entry": [
                {"resource": {**s, "resourceType": "MedicationRequest", "id": f"d{i}"}}
                for i, s in enumerate(uncoded(pid, limits.MAX_BUNDLE_ENTRIES + 1))
            ]
        }
        request = {"hook": "order-select", "context": {"patientId": pid, "draftOrders": drafts}}
        assert gp.post("/cds-services/pll-medication-check", json=request).status_code == 422
    assert snapshot(server.db) == before
    # at the limit it is taken
    with server.client() as gp:
        at = bundle(uncoded(pid, limits.MAX_BUNDLE_ENTRIES))
        assert len(ok(gp.post("/fhir", json=at))["entry"]) == limits.MAX_BUNDLE_ENTRIES


def test_a_change_that_takes_a_list_past_its_limit_changes_nothing(
    server: LiveServer, patient: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changes, "MAX_LIST_ENTRIES", 4)
    pid = patient["pid"]
    with server.client() as gp:
        done = ok(gp.post("/fhir", json=bundle(uncoded(pid, 4))))
        first = done["entry"][0]["resource"]
        before = snapshot(server.db, audit=False)
        one_more = gp.post("/fhir/MedicationStatement", json=statement(pid, "Enda ett"))
        assert one_more.status_code == 422
        assert "the list would hold 5 medicines" in outcome_text(one_more)
        assert "a list holds at most 4" in outcome_text(one_more)
        assert gp.post("/fhir", json=bundle(uncoded(pid, 2))).status_code == 422
        # a prescription without an entry is a medicine on the list too
        rx = {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {"text": "Resept uten oppføring"},
            "subject": {"reference": f"Patient/{pid}"},
        }
        assert gp.post("/fhir/MedicationRequest", json=rx).status_code == 422
        assert snapshot(server.db, audit=False) == before
        # what does not grow the list goes through: a dose change, a discontinuation
        url = f"/fhir/MedicationStatement/{first['id']}"
        redosed = ok(
            gp.put(
                url,
                json=dict(first, dosage=[{"text": "2 tabletter"}]),
                headers={"If-Match": 'W/"1"'},
            )
        )
        stopped = dict(redosed, status="stopped", statusReason=[{"text": "Ikke lenger behov"}])
        ok(gp.put(url, json=stopped, headers={"If-Match": 'W/"2"'}))
        # a discontinued entry is still shown for 90 days, so it still counts
        assert gp.post("/fhir/MedicationStatement", json=statement(pid, "Ny")).status_code == 422
        # an entry registered in error leaves the list: room for one more
        second = done["entry"][1]["resource"]
        removed = dict(second, status="entered-in-error", statusReason=[{"text": "Feil pasient"}])
        ok(
            gp.put(
                f"/fhir/MedicationStatement/{second['id']}",
                json=removed,
                headers={"If-Match": 'W/"1"'},
            )
        )
        ok(gp.post("/fhir/MedicationStatement", json=statement(pid, "Ny")), 201)


def test_a_new_list_in_one_transaction_is_held_to_the_limit(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changes, "MAX_LIST_ENTRIES", 3)
    with server.client() as gp:
        pid = ok(gp.post("/fhir/Patient", json=new_patient()), 201)["id"]
        before = snapshot(server.db, audit=False)
        new_list = {
            "resourceType": "List",
            "status": "current",
            "mode": "working",
            "subject": {"reference": f"Patient/{pid}"},
        }
        r = gp.post("/fhir", json=bundle([new_list, *uncoded(pid, 4)]))
        assert r.status_code == 422
        assert snapshot(server.db, audit=False) == before
        ok(gp.post("/fhir", json=bundle([new_list, *uncoded(pid, 3)])))


def test_the_real_list_limit(server: LiveServer, patient: dict[str, str]) -> None:
    """Filled to exactly the documented number in Bundles of the documented size, then one
    more is refused."""
    pid = patient["pid"]
    with server.client() as gp:
        left = limits.MAX_LIST_ENTRIES
        while left:
            part = min(left, limits.MAX_BUNDLE_ENTRIES)
            ok(gp.post("/fhir", json=bundle([statement(pid, SIMVA)] * part)))
            left -= part
        r = gp.post("/fhir/MedicationStatement", json=statement(pid, SIMVA))
    assert r.status_code == 422
    assert f"a list holds at most {limits.MAX_LIST_ENTRIES}" in outcome_text(r)


def test_metadata_states_the_limits(server: LiveServer) -> None:
    with server.client() as gp:
        capability = ok(gp.get("/fhir/metadata"))
    (ext,) = [e for e in capability["extension"] if e["url"] == LIMITS]
    assert {e["url"]: e["valueInteger"] for e in ext["extension"]} == {
        "maxBundleEntries": limits.MAX_BUNDLE_ENTRIES,
        "maxListEntries": limits.MAX_LIST_ENTRIES,
        "maxFindings": limits.MAX_FINDINGS,
        "maxSourceItems": limits.MAX_SOURCE_ITEMS,
        "maxSfmEntries": limits.MAX_SFM_ENTRIES,
        "maxSfmStatements": limits.MAX_SFM_STATEMENTS,
        "maxSfmRequests": limits.MAX_SFM_REQUESTS,
        "maxSfmWrites": limits.MAX_SFM_WRITES,
        "maxProposalItems": limits.MAX_PROPOSAL_ITEMS,
        "maxPendingItems": limits.MAX_PENDING_ITEMS,
        "maxPackingItems": limits.MAX_PACKING_ITEMS,
        "maxActiveReactions": limits.MAX_ACTIVE_REACTIONS,
    }
    text = capability["rest"][0]["documentation"]
    assert f"holds at most {limits.MAX_BUNDLE_ENTRIES} entries" in text
    assert f"holds at most {limits.MAX_LIST_ENTRIES} medicines" in text
    assert transaction.MAX_BUNDLE_ENTRIES == limits.MAX_BUNDLE_ENTRIES


def test_a_patient_has_at_most_so_many_active_reactions(
    server: LiveServer, patient: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every active reaction is held against every medicine on every change, and each match
    is a blocking finding every answer shows: their number is bounded like the list's."""
    monkeypatch.setattr(allergies, "MAX_ACTIVE_REACTIONS", 3)
    pid = patient["pid"]
    with server.client() as gp:
        first, *_ = reactions(gp, pid, "J01CA", 3)
        fourth = {
            "resourceType": "AllergyIntolerance",
            "patient": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": ATC, "code": "N02BE"}], "text": "paracetamol"},
        }
        before = snapshot(server.db, audit=False)
        r = gp.post("/fhir/AllergyIntolerance", json=fourth)
        assert r.status_code == 422, r.text
        assert "The patient has 3 active drug reactions" in outcome_text(r)
        assert snapshot(server.db, audit=False) == before
        # one that no longer applies makes room; an inactive one is never refused for it
        inactive = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "inactive",
                }
            ]
        }
        ok(gp.post("/fhir/AllergyIntolerance", json=fourth | {"clinicalStatus": inactive}), 201)
        old = ok(gp.get(f"/fhir/AllergyIntolerance/{first}"))
        ended = {k: v for k, v in old.items() if k != "meta"} | {"clinicalStatus": inactive}
        ok(gp.put(f"/fhir/AllergyIntolerance/{first}", json=ended, headers={"If-Match": 'W/"1"'}))
        ok(gp.post("/fhir/AllergyIntolerance", json=fourth), 201)
