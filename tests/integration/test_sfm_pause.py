"""Pause PLL through SFM Basis (issue 18): a journal system on SFM Basis sees that the list is
paused — since when, by whom, why — on the M25.1 ``sfm-PLL-info`` and in ``sectionPLLinfo``'s
text; a ``$sendMedication`` that would change a paused list is refused with nothing written
unless it resumes the list (``pll-resume``); a resume through a send confirms the list as sent.
Over real HTTP, on both databases.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pll.fhir.validate import validate
from tests.conftest import LiveServer, snapshot
from tests.integration.builders import (
    DRUGS,
    new_fnr,
    new_patient_with_list,
    ok,
    outcome_text,
    prescription,
    statement,
)
from tests.integration.test_multidose import (
    TRONDHEIM,
    dispensed,
    new_patient,
    params,
    pharmacy,
)
from tests.integration.test_sfm import (
    bundle_of,
    get_medication,
    send,
    send_from,
    set_dosage,
    statement_named,
)

PAUSED = "http://pll.invalid/fhir/StructureDefinition/pll-paused"
RESUME = "http://pll.invalid/fhir/StructureDefinition/pll-resume"
INFO_SECTION = "sectionPLLinfo"
REASON = "Innlagt på sykehus <medisinsk avdeling>"


def _pll_info(bundle: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``sectionPLLinfo`` section and its M25.1 ``Basic``, read as plain JSON."""
    comp = bundle["entry"][0]["resource"]
    sec = next(s for s in comp["section"] if s["code"]["coding"][0]["code"] == INFO_SECTION)
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    m251 = next(by_url[r["reference"]] for r in sec["entry"] if r.get("display") == "M25.1")
    return sec, m251


def _marker(m251: dict[str, Any]) -> dict[str, Any] | None:
    found = [e for e in m251.get("extension", []) if e["url"] == PAUSED]
    assert len(found) <= 1
    return {s["url"]: s for s in found[0]["extension"]} if found else None


def _resume(confirm: bool | None = None) -> Any:
    """A send's edit: ``pll-resume`` on its M25.1, as a journal system adds it."""

    def edit(bundle: dict[str, Any]) -> None:
        _, m251 = _pll_info(bundle)
        ext: dict[str, Any] = {"url": RESUME}
        if confirm is not None:
            ext["extension"] = [{"url": "confirm", "valueBoolean": confirm}]
        m251.setdefault("extension", []).append(ext)

    return edit


def _list(client: httpx.Client, list_id: str) -> dict[str, Any]:
    return dict(ok(client.get(f"/fhir/List/{list_id}")))


@pytest.fixture
def paused(server: LiveServer) -> tuple[str, str]:
    """A list the GP keeps (one medicine), paused by the hospital doctor at admission.
    Returns (fødselsnummer, list id)."""
    fnr = new_fnr()
    with server.client("gp") as gp:
        pid, list_id = new_patient_with_list(gp, fnr)
        ok(
            gp.post(
                "/fhir/MedicationStatement",
                json=statement(f"Patient/{pid}", "Amlodipin tab 5 mg", "C08CA01"),
            ),
            201,
        )
    with server.client("hospital-doctor") as hospital:
        ok(
            hospital.post(
                f"/fhir/List/{list_id}/$pause",
                json={
                    "resourceType": "Parameters",
                    "parameter": [{"name": "reason", "valueString": REASON}],
                },
            )
        )
    return fnr, list_id


def test_a_read_shows_the_pause_since_when_by_whom_and_why(
    server: LiveServer, paused: tuple[str, str]
) -> None:
    fnr, list_id = paused
    with server.client("gp") as gp:
        read = ok(get_medication(gp, fnr))
        pause = _list(gp, list_id)["extension"]
    validate(read, "Parameters")  # still valid FHIR, as every answer
    bundle = bundle_of(read)
    sec, m251 = _pll_info(bundle)
    marker = _marker(m251)
    assert marker is not None
    # the same moment, doctor and reason as PLL's List says
    on_list = {s["url"]: s for e in pause if e["url"] == PAUSED for s in e["extension"]}
    assert marker["at"]["valueDateTime"] == on_list["at"]["valueDateTime"]
    assert marker["reason"]["valueString"] == REASON
    by = marker["by"]["valueReference"]
    assert by["type"].endswith("/sfm-PractitionerRole")
    role = next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == by["reference"])
    assert role["resourceType"] == "PractitionerRole"
    assert "9144897" in by["display"]  # the hospital doctor's HPR number
    # the SFM extension itself is left as SFM defines it
    info = next(e for e in m251["extension"] if e["url"].endswith("/sfm-pllInformation"))
    assert {s["url"] for s in info["extension"]} <= {"PLLdate", "relatedparties", "substitute"}
    # a journal system that shows only the text sees it too, escaped
    div = sec["text"]["div"]
    assert "pauset (Pause PLL)" in div
    assert "Innlagt på sykehus &lt;medisinsk avdeling&gt;" in div


def test_the_marker_is_gone_after_a_resume(server: LiveServer, paused: tuple[str, str]) -> None:
    fnr, list_id = paused
    with server.client("hospital-doctor") as hospital:
        version = _list(hospital, list_id)["meta"]["versionId"]
        ok(hospital.post(f"/fhir/List/{list_id}/$resume", headers={"If-Match": f'W/"{version}"'}))
    with server.client("gp") as gp:
        read = ok(get_medication(gp, fnr))
    validate(read, "Parameters")
    sec, m251 = _pll_info(bundle_of(read))
    assert _marker(m251) is None
    assert "pauset" not in sec["text"]["div"]


def test_a_send_that_changes_a_paused_list_is_refused_and_writes_nothing(
    server: LiveServer, paused: tuple[str, str]
) -> None:
    fnr, _ = paused
    with server.client("gp") as gp:
        read = ok(get_medication(gp, fnr))
        before = snapshot(server.db)
        r = send(gp, send_from(read, lambda b: set_dosage(b, "Amlodipin", "2 tabletter")))
    assert r.status_code == 409, r.text
    text = outcome_text(r)
    assert "paused" in text
    assert REASON in text
    assert "pll-resume" in text
    assert snapshot(server.db) == before


def test_a_send_that_changes_nothing_passes_and_the_list_stays_paused(
    server: LiveServer, paused: tuple[str, str]
) -> None:
    fnr, list_id = paused
    with server.client("gp") as gp:
        read = ok(get_medication(gp, fnr))
        before = snapshot(server.db, audit=False)
        r = send(gp, send_from(read))
        assert r.status_code == 200, r.text
        after = snapshot(server.db, audit=False)
        assert any(e["url"] == PAUSED for e in _list(gp, list_id)["extension"])
    assert {k: v for k, v in after.items() if k != "sfm_read"} == {
        k: v for k, v in before.items() if k != "sfm_read"
    }


def test_a_send_that_resumes_changes_and_confirms_the_list(
    server: LiveServer, paused: tuple[str, str]
) -> None:
    fnr, list_id = paused
    with server.client("gp") as gp:
        read = ok(get_medication(gp, fnr))
        version = int(_list(gp, list_id)["meta"]["versionId"])

        def resume_and_change(bundle: dict[str, Any]) -> None:
            set_dosage(bundle, "Amlodipin", "2 tabletter")
            _resume()(bundle)

        r = send(gp, send_from(read, resume_and_change))
        assert r.status_code == 200, r.text
        after = _list(gp, list_id)
        again = ok(get_medication(gp, fnr))
    assert int(after["meta"]["versionId"]) == version + 1  # one version: resumed and changed
    urls = {e["url"].rsplit("/", 1)[1]: e for e in after.get("extension", [])}
    assert "pll-paused" not in urls
    confirmed = {s["url"]: s for s in urls["pll-confirmed"]["extension"]}
    assert confirmed["version"]["valueInteger"] == version + 1  # the list as sent
    assert "9144889" in str(confirmed["by"])  # the GP who sent it
    bundle = bundle_of(again)
    assert _marker(_pll_info(bundle)[1]) is None
    assert statement_named(bundle, "Amlodipin")["dosage"][0]["text"] == "2 tabletter"


def test_a_send_can_resume_without_confirming(server: LiveServer, paused: tuple[str, str]) -> None:
    fnr, list_id = paused
    with server.client("gp") as gp:
        read = ok(get_medication(gp, fnr))
        ok(send(gp, send_from(read, _resume(confirm=False))))
        after = _list(gp, list_id)
    names = {e["url"].rsplit("/", 1)[1] for e in after.get("extension", [])}
    assert "pll-paused" not in names
    assert "pll-confirmed" not in names  # never confirmed before, not confirmed now


def test_a_resume_of_a_list_that_is_not_paused_is_refused(server: LiveServer) -> None:
    fnr = new_fnr()
    with server.client("gp") as gp:
        new_patient_with_list(gp, fnr)
        read = ok(get_medication(gp, fnr))
        before = snapshot(server.db)
        r = send(gp, send_from(read, _resume()))
    assert r.status_code == 409, r.text
    assert "not paused" in outcome_text(r)
    assert snapshot(server.db) == before


def test_a_resume_on_a_read_older_than_the_list_is_refused(
    server: LiveServer, paused: tuple[str, str]
) -> None:
    """Resuming vouches for the list the doctor saw: a change since the read refuses it."""
    fnr, list_id = paused
    with server.client("gp") as gp:
        read = ok(get_medication(gp, fnr))
    with server.client("hospital-doctor") as hospital:
        # the list moves on while staying paused: resumed, and paused again (a second stay)
        ok(hospital.post(f"/fhir/List/{list_id}/$resume", headers={"If-Match": 'W/"3"'}))
        ok(
            hospital.post(
                f"/fhir/List/{list_id}/$pause",
                json={
                    "resourceType": "Parameters",
                    "parameter": [{"name": "reason", "valueString": REASON}],
                },
            )
        )
    with server.client("gp") as gp:
        before = snapshot(server.db, audit=False)
        r = send(gp, send_from(read, _resume()))
    assert r.status_code == 409, r.text
    assert "$getMedication" in outcome_text(r)
    assert snapshot(server.db, audit=False) == before


@pytest.mark.parametrize(
    "extension",
    [
        {"url": RESUME, "extension": [{"url": "confirm", "valueString": "ja"}]},
        {"url": RESUME, "extension": [{"url": "other", "valueBoolean": True}]},
    ],
)
def test_a_malformed_resume_says_what_is_wrong(
    server: LiveServer, paused: tuple[str, str], extension: dict[str, Any]
) -> None:
    fnr, _ = paused
    with server.client("gp") as gp:
        read = ok(get_medication(gp, fnr))

        def edit(bundle: dict[str, Any]) -> None:
            _pll_info(bundle)[1]["extension"].append(extension)

        before = snapshot(server.db)
        r = send(gp, send_from(read, edit))
    assert r.status_code == 400, r.text
    issue = r.json()["issue"][0]
    assert "pll-resume" in issue["diagnostics"]
    assert issue["expression"][0].startswith("Bundle.entry[")
    assert snapshot(server.db) == before


# -- the multidose parties and the pharmacy on a paused list (docs/multidose.md) ------------------


def test_a_paused_list_takes_no_multidose_change_but_records_a_dispensing(
    server: LiveServer,
) -> None:
    """A hospital stay is when multidose must not start or stop: registering e-multidose,
    ending it and paper multidose are refused on a paused list (409, in Norwegian too, with
    nothing written). A dispensing happens at the pharmacy whether the list is paused or
    not, and is recorded; the list stays paused."""
    with server.client("gp") as gp, server.client("pharmacist") as pharmacist:
        p = new_patient(server, gp)
        rx = prescription(f"Patient/{p.pid}", *DRUGS[0])
        rx["dispenseRequest"] = {"quantity": {"value": 100, "unit": "tablett"}}
        rx = ok(gp.post("/fhir/MedicationRequest", json=rx), 201)
        linked = {
            **p.entries["Metformin"],
            "basedOn": [{"reference": f"MedicationRequest/{rx['id']}"}],
        }
        ok(
            gp.put(
                f"/fhir/MedicationStatement/{linked['id']}",
                json=linked,
                headers={"If-Match": 'W/"1"'},
            )
        )
        ok(
            gp.post(
                f"/fhir/List/{p.list_id}/$pause",
                json={
                    "resourceType": "Parameters",
                    "parameter": [{"name": "reason", "valueString": REASON}],
                },
            )
        )
        before = snapshot(server.db, audit=False)
        refused = [
            gp.post(
                f"/fhir/Patient/{p.pid}/$multidose-register",
                json=params(pharmacy(TRONDHEIM, "Vitusapotek Trondheim")),
            ),
            gp.post(f"/fhir/Patient/{p.pid}/$multidose-end"),
            pharmacist.post(
                f"/fhir/Patient/{p.pid}/$paper-multidose",
                json=params({"name": "pharmacy", "valueString": "Vitusapotek Trondheim"}),
            ),
        ]
        for r in refused:
            assert r.status_code == 409, r.text
            assert "paused" in outcome_text(r)
        assert snapshot(server.db, audit=False) == before
        version = int(_list(gp, p.list_id)["meta"]["versionId"])
        r = pharmacist.post("/fhir/MedicationDispense", json=dispensed(rx["id"], p.pid, 100))
        assert r.status_code == 201, r.text
        assert int(r.headers["X-PLL-List-Version"]) == version + 1
        assert PAUSED in {e["url"] for e in _list(gp, p.list_id)["extension"]}
