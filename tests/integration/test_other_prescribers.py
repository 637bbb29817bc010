"""Prescribers other than doctors, and health personnel without prescribing rights (issue 18,
DESIGN §3 rule 4: "only prescribers change the list, and only doctors change other
prescribers' entries"), over real HTTP on both databases: the REST API and
``$sendMedication``."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from pll.auth.tokens import PERSONAS
from pll.store.schema import audit_event
from tests.conftest import LiveServer, snapshot
from tests.e2e.scenes import METFORMIN, patient_with_medicines
from tests.integration.builders import (
    new_patient_with_list,
    ok,
    outcome_text,
    prescription,
    small_catalogue_and_list,
    statement,
)
from tests.integration.test_cases import operation, report
from tests.integration.test_decision_support import CLARITHRO, SIMVA, _override_codes, kinds
from tests.integration.test_decision_support import entry as fest_entry
from tests.integration.test_sfm import (
    SD,
    at_reference_time,
    bundle_of,
    ext,
    get_medication,
    imported,
    params,
    send,
    send_from,
    set_dosage,
    statement_named,
)
from tests.integration.test_web import csrf, logged_in, opened

PRESCRIBERS = ["dentist", "midwife"]
READERS = ["public-health-nurse", "physiotherapist"]


def etag_version(r: httpx.Response) -> str:
    return str(r.headers["ETag"])


def put_on_list(client: httpx.Client, pid: str, name: str, atc: str) -> tuple[str, str]:
    """Prescribe and put the prescription on the list as a new entry: (rx id, entry id)."""
    rx = ok(
        client.post("/fhir/MedicationRequest", json=prescription(f"Patient/{pid}", name, atc)), 201
    )
    st = statement(f"Patient/{pid}", name, atc, based_on=[f"MedicationRequest/{rx['id']}"])
    entry = ok(client.post("/fhir/MedicationStatement", json=st), 201)
    return str(rx["id"]), str(entry["id"])


def discontinued(client: httpx.Client, entry_id: str) -> httpx.Response:
    r = client.get(f"/fhir/MedicationStatement/{entry_id}")
    body = dict(ok(r), status="stopped", statusReason=[{"text": "Ferdig behandlet"}])
    return client.put(
        f"/fhir/MedicationStatement/{entry_id}", json=body, headers={"If-Match": r.headers["ETag"]}
    )


def refusals_of(server: LiveServer, hpr: str, rid: str) -> list[Any]:
    with server.db.read() as conn:
        rows = conn.execute(
            sa.select(audit_event.c.actor, audit_event.c.outcome, audit_event.c.resource_id).where(
                audit_event.c.resource_id == rid, audit_event.c.outcome == "4"
            )
        ).all()
    return [r for r in rows if orjson.loads(r.actor).get("hpr") == hpr]


@pytest.fixture
def gp_listed(server: LiveServer) -> dict[str, str]:
    """A patient whose GP prescribed metformin and put it on the list."""
    with server.client("gp") as gp:
        pid, list_id = new_patient_with_list(gp)
        rx, entry = put_on_list(gp, pid, "Metformin tab 500 mg", "A10BA02")
    return {"pid": pid, "list": list_id, "rx": rx, "entry": entry}


# -- reading -------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PRESCRIBERS + READERS)
def test_every_health_worker_reads_the_list_with_a_basis(
    server: LiveServer, gp_listed: dict[str, str], persona: str
) -> None:
    with server.client(persona) as worker:
        r = worker.get(f"/fhir/MedicationStatement/{gp_listed['entry']}")
        assert r.status_code == 200, r.text
    with server.client(persona, basis=None) as worker:
        r = worker.get(f"/fhir/MedicationStatement/{gp_listed['entry']}")
        assert r.status_code == 403
        assert "X-PLL-Access-Basis" in outcome_text(r)


# -- prescribing their own -----------------------------------------------------------------


@pytest.mark.parametrize("persona", PRESCRIBERS)
def test_a_dentist_or_midwife_prescribes_and_discontinues_their_own_entry(
    server: LiveServer, gp_listed: dict[str, str], persona: str
) -> None:
    pid = gp_listed["pid"]
    with server.client(persona) as them:
        _rx, entry = put_on_list(them, pid, "Amoxicillin kaps 500 mg", "J01CA04")
        # they hold the baton for their change: the list's source is them
        source = ok(them.get(f"/fhir/List/{gp_listed['list']}"))["source"]
        assert source["identifier"]["value"] == PERSONAS[persona].hpr
        r = discontinued(them, entry)
        assert r.status_code == 200, r.text
        assert ok(r)["status"] == "stopped"


@pytest.mark.parametrize("persona", PRESCRIBERS)
def test_a_dentist_or_midwife_may_not_change_the_gps_entry(
    server: LiveServer, gp_listed: dict[str, str], persona: str
) -> None:
    before = snapshot(server.db, audit=False)
    with server.client(persona) as them:
        r = discontinued(them, gp_listed["entry"])
        assert r.status_code == 403, r.text
        text = outcome_text(r)
        assert "only doctors change another prescriber's entry" in text
        assert "Kari Fastlege" in text  # whose it is
        # nor recall the GP's prescription, nor renew it
        rx = them.get(f"/fhir/MedicationRequest/{gp_listed['rx']}")
        recalled = dict(ok(rx), status="stopped", statusReason={"text": "Feil"})
        r = them.put(
            f"/fhir/MedicationRequest/{gp_listed['rx']}",
            json=recalled,
            headers={"If-Match": rx.headers["ETag"]},
        )
        assert r.status_code == 403, r.text
        renewal = prescription(
            f"Patient/{gp_listed['pid']}",
            "Metformin tab 500 mg",
            "A10BA02",
            prior=f"MedicationRequest/{gp_listed['rx']}",
        )
        r = them.post("/fhir/MedicationRequest", json=renewal)
        assert r.status_code == 403, r.text
    assert snapshot(server.db, audit=False) == before  # nothing written
    hpr = str(PERSONAS[persona].hpr)
    assert refusals_of(server, hpr, gp_listed["entry"])  # the refusal is logged
    assert refusals_of(server, hpr, gp_listed["rx"])


def test_a_dentist_may_not_change_another_dentists_entry_but_a_doctor_may(
    server: LiveServer, gp_listed: dict[str, str]
) -> None:
    with server.client("dentist") as dentist:
        _rx, entry = put_on_list(dentist, gp_listed["pid"], "Amoxicillin kaps 500 mg", "J01CA04")
    with server.client("midwife") as midwife:
        assert discontinued(midwife, entry).status_code == 403
    with server.client("gp") as gp:
        r = discontinued(gp, entry)
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("persona", PRESCRIBERS)
def test_confirming_and_pausing_stay_with_doctors(
    server: LiveServer, gp_listed: dict[str, str], persona: str
) -> None:
    before = snapshot(server.db, audit=False)
    with server.client(persona) as them:
        r = them.get(f"/fhir/List/{gp_listed['list']}")
        version = r.headers["ETag"]
        r = them.post(f"/fhir/List/{gp_listed['list']}/$confirm", headers={"If-Match": version})
        assert r.status_code == 403, r.text
        assert "Only doctors" in outcome_text(r)
    assert snapshot(server.db, audit=False) == before


@pytest.mark.parametrize("operation", ["$confirm", "$pause", "$resume"])
@pytest.mark.parametrize("persona", ["dentist", "midwife"])
def test_a_dentists_or_midwifes_refused_act_on_the_list_is_logged(
    server: LiveServer, gp_listed: dict[str, str], persona: str, operation: str
) -> None:
    """Refused because only doctors act on the list as a whole, not by the policy's table:
    in the patient's access log all the same, as a refused change of the GP's entry is."""
    with server.client(persona) as them:
        etag = them.get(f"/fhir/List/{gp_listed['list']}").headers["ETag"]
        body = {
            "resourceType": "Parameters",
            "parameter": [{"name": "reason", "valueString": "Innlagt"}],
        }
        r = them.post(
            f"/fhir/List/{gp_listed['list']}/{operation}", json=body, headers={"If-Match": etag}
        )
    assert r.status_code == 403, r.text
    assert "Only doctors" in outcome_text(r)
    assert refusals_of(server, str(PERSONAS[persona].hpr), gp_listed["list"])


# -- decision support ----------------------------------------------------------------------


def test_decision_support_holds_a_dentists_prescribing_as_a_doctors(server: LiveServer) -> None:
    with server.client("gp") as gp:
        pid = small_catalogue_and_list(server.db, gp)["pid"]
        ok(gp.post("/fhir/MedicationStatement", json=fest_entry(pid, SIMVA)), 201)
    before = snapshot(server.db, audit=False)
    with server.client("dentist") as dentist:
        r = dentist.post("/fhir/MedicationStatement", json=fest_entry(pid, CLARITHRO))
        assert r.status_code == 422, r.text
        assert ("error", "interaction") in kinds(r.json())
        assert snapshot(server.db, audit=False) == before
        blocking = _override_codes(r)
        r = dentist.post(
            "/fhir/MedicationStatement", json=fest_entry(pid, CLARITHRO), headers=blocking
        )
        assert r.status_code == 201, r.text  # overridden with a reason, as a doctor would


# -- health personnel without prescribing rights ------------------------------------------


@pytest.mark.parametrize("persona", READERS)
def test_other_health_personnel_never_write(
    server: LiveServer, gp_listed: dict[str, str], persona: str
) -> None:
    before = snapshot(server.db, audit=False)
    with server.client(persona) as them:
        r = discontinued(them, gp_listed["entry"])
        assert r.status_code == 403
        assert "Only prescribers change the list" in outcome_text(r)
        st = statement(f"Patient/{gp_listed['pid']}", "Paracet", "N02BE01")
        r = them.post("/fhir/MedicationStatement", json=st)
        assert r.status_code == 403
    assert snapshot(server.db, audit=False) == before


@pytest.mark.parametrize("persona", READERS)
def test_other_health_personnel_report_a_discrepancy_that_reaches_the_prescriber(
    server: LiveServer, gp_listed: dict[str, str], persona: str
) -> None:
    with server.client(persona) as them:
        task = ok(report(them, f"MedicationStatement/{gp_listed['entry']}"), 201)
        assert task["owner"]["identifier"]["value"] == PERSONAS["gp"].org_id
        r = operation(them, task["id"], "resolve", "Ok")
        assert r.status_code == 403


def test_a_case_about_a_dentists_entry_goes_to_the_dentist_who_handles_it(
    server: LiveServer, gp_listed: dict[str, str]
) -> None:
    with server.client("dentist") as dentist:
        _rx, entry = put_on_list(dentist, gp_listed["pid"], "Amoxicillin kaps 500 mg", "J01CA04")
    with server.client("physiotherapist") as physio:
        task = ok(report(physio, f"MedicationStatement/{entry}"), 201)
    assert task["owner"]["identifier"]["value"] == PERSONAS["dentist"].org_id
    with server.client("midwife") as midwife:  # a prescriber, but not at that clinic
        assert operation(midwife, task["id"], "take").status_code == 403
    with server.client("dentist") as dentist:
        r = operation(dentist, task["id"], "take")
        assert r.status_code == 200, r.text


# -- $sendMedication -----------------------------------------------------------------------


@pytest.fixture
def sfm_read(server: LiveServer, clock: Any) -> None:
    """The SFM reference list imported (recorded by its doctors), at its time."""
    at_reference_time(server, clock)
    imported(server)


def new_medicine(bundle: dict[str, Any], rx_id: str) -> None:
    """A new prescription in a send, shaped after an existing statement."""
    st = copy.deepcopy(statement_named(bundle, "Lapatinib"))
    st["id"] = "new"
    st["identifier"] = [{"use": "usual", "type": {"text": "ReseptId"}, "value": rx_id}]
    amendment = ext(st, f"{SD}/sfm-reseptamendment")[0]
    amendment["extension"].append({"url": "createeresept", "valueBoolean": True})
    bundle["entry"].append({"fullUrl": "urn:uuid:" + rx_id, "resource": st})
    bundle["entry"][0]["resource"]["section"][0]["entry"].append({"reference": "urn:uuid:" + rx_id})


@pytest.mark.usefixtures("sfm_read")
@pytest.mark.parametrize("persona", PRESCRIBERS)
def test_a_send_that_changes_a_doctors_entry_is_refused(server: LiveServer, persona: str) -> None:
    with server.client(persona) as them:
        read = get_medication(them)
        assert read.status_code == 200, read.text
        before = snapshot(server.db, audit=False)
        body = send_from(read.json(), lambda b: set_dosage(b, "Lapatinib", "4 tabletter daglig"))
        r = send(them, body)
        assert r.status_code == 403, r.text
        assert "only doctors change another prescriber's entry" in outcome_text(r)
    after = snapshot(server.db, audit=False)
    assert {k: v for k, v in after.items() if k != "sfm_read"} == {
        k: v for k, v in before.items() if k != "sfm_read"
    }


@pytest.mark.usefixtures("sfm_read")
@pytest.mark.parametrize("persona", PRESCRIBERS)
def test_a_send_puts_a_dentists_prescription_on_the_list_and_lets_them_change_it(
    server: LiveServer, persona: str
) -> None:
    rx_id = str(uuid.uuid4())
    with server.client(persona) as them:
        read = get_medication(them)
        r = send(them, send_from(read.json(), lambda b: new_medicine(b, rx_id)))
        assert r.status_code == 200, r.text
        assert params(r.json())["prescriptionCount"] == [1]
        # the next send, based on a new read, changes their own entry's dosage
        read = get_medication(them)
        mine = next(
            st
            for st in bundle_of(read.json())["entry"]
            if st["resource"].get("resourceType") == "MedicationStatement"
            and any(i.get("value") == rx_id for i in st["resource"].get("identifier", []))
        )
        assert mine

        def change_mine(bundle: dict[str, Any]) -> None:
            for e in bundle["entry"]:
                res = e["resource"]
                if res["resourceType"] == "MedicationStatement" and any(
                    i.get("value") == rx_id for i in res.get("identifier", [])
                ):
                    res["dosage"][0]["text"] = "1 kapsel 3 ganger daglig"

        r = send(them, send_from(read.json(), change_mine))
        assert r.status_code == 200, r.text
        assert "PllResult" in params(r.json())  # a new list version: their change was made


@pytest.mark.usefixtures("sfm_read")
@pytest.mark.parametrize("persona", READERS)
def test_other_health_personnel_read_but_never_send(server: LiveServer, persona: str) -> None:
    with server.client(persona) as them:
        read = get_medication(them)
        assert read.status_code == 200, read.text
        r = send(them, send_from(read.json()))
        assert r.status_code == 403
        assert "Only prescribers change the list" in outcome_text(r)


# -- the web pages -------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PRESCRIBERS + READERS)
def test_they_land_on_the_list_pages_and_read_but_confirming_is_a_doctors(
    server: LiveServer, persona: str
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    with logged_in(server, persona) as them:
        assert them.get("/").headers["location"] == "/lege"
        page = opened(them, scene.fnr)
        html = them.get(page).text
        assert METFORMIN[2] in html
        before = snapshot(server.db, audit=False)
        r = them.post(f"{page}/bekreft", data={"csrf": csrf(them, page), "version": "3"})
        assert r.status_code == 403
        # a dentist or midwife is told confirming is a doctor's; others that they do not write
        said = "Bare leger bekrefter listen" if persona in PRESCRIBERS else "Bare forskrivere"
        assert said in r.text
        assert snapshot(server.db, audit=False) == before
