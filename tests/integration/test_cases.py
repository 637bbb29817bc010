"""Discrepancy cases over real HTTP, on SQLite and PostgreSQL: a report reaches the
responsible prescriber's organisation, is handled there by the right people only, keeps its
history, is announced through events (rest-hook subscriptions hear it; the list's own
subscribers and the read copy are not misled by it), and shows on the list until closed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pll.events.dispatcher import Dispatcher
from pll.events.readcopy import ReadCopy
from pll.events.run import consumers
from pll.fhir import cases as fhir_cases
from pll.services.subscriptions import SECRET_EXTENSION
from pll.store.db import Database
from pll.store.schema import access_block, audit_event, discrepancy_case_version, outbox
from tests.conftest import LiveServer, serving, snapshot
from tests.e2e.scenes import METFORMIN, SIMVASTATIN, add_medicine, patient_with_medicines
from tests.integration.builders import block_consent, ok, outcome_text
from tests.integration.test_web import csrf, logged_in, opened

ORGNR = fhir_cases.systems.ORGNR
GP_ORG, HOSPITAL_ORG = "974600951", "983974724"
GP_HPR, HOSPITAL_HPR = "9144889", "9144897"
SECRET = "a-subscriber-secret-of-forty-characters!"
WARFARIN = (None, "B01AA03", "Warfarin tab 2,5 mg")


def report(
    client: httpx.Client, focus: str, text: str = "Pasienten sier hun sluttet for en måned siden"
) -> httpx.Response:
    return client.post(
        "/fhir/Task",
        json={
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "code": fhir_cases.CODE,
            "focus": {"reference": focus},
            "description": text,
        },
    )


def operation(
    client: httpx.Client,
    task_id: str,
    name: str,
    comment: str | None = None,
    if_match: str | None = None,
) -> httpx.Response:
    body = None
    if comment is not None:
        body = {
            "resourceType": "Parameters",
            "parameter": [{"name": "comment", "valueString": comment}],
        }
    headers = {"If-Match": if_match} if if_match else {}
    return client.post(f"/fhir/Task/{task_id}/${name}", json=body, headers=headers)


def hospital_adds(server: LiveServer, pid: str) -> str:
    """The hospital prescribes warfarin: it then holds the baton, and wrote that entry."""
    with server.client("hospital-doctor") as hospital:
        entry_id, _ = add_medicine(hospital, pid, WARFARIN)
    return entry_id


def open_ids(client: httpx.Client, pid: str) -> list[str]:
    found = ok(client.get("/fhir/Task", params={"patient": pid, "status": "requested,in-progress"}))
    return [e["resource"]["id"] for e in found.get("entry", [])]


# -- routing -------------------------------------------------------------------------------------


def test_a_case_goes_to_the_entrys_last_author_or_the_baton_holder(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)  # the GP wrote metformin
    warfarin = hospital_adds(server, scene.pid)  # ... and the hospital now holds the baton
    metformin = scene.entries[METFORMIN[2]]
    with server.client("nurse") as nurse:
        r = report(nurse, f"MedicationStatement/{metformin}")
        on_entry = ok(r, 201)
        assert r.headers["ETag"] == 'W/"1"'
        assert r.headers["Location"].endswith(f"/fhir/Task/{on_entry['id']}/_history/1")
        on_list = ok(report(nurse, f"List/{scene.list_id}", "Listen mangler insulinet"), 201)
        on_hospitals = ok(report(nurse, f"MedicationStatement/{warfarin}/_history/1"), 201)
    # the entry's last author's organisation, and the person
    assert on_entry["owner"]["identifier"] == {"system": fhir_cases.systems.ORGNR, "value": GP_ORG}
    assert on_entry["owner"]["display"] == "Bergen legesenter"
    recipient = on_entry["extension"][0]
    assert recipient["url"] == fhir_cases.EXT_RECIPIENT
    assert recipient["valueReference"]["identifier"]["value"] == GP_HPR
    assert on_entry["status"] == "requested"
    assert on_entry["intent"] == "order"
    assert on_entry["for"] == {"reference": f"Patient/{scene.pid}"}
    assert on_entry["focus"]["reference"] == f"MedicationStatement/{metformin}/_history/1"
    assert on_entry["focus"]["display"] == METFORMIN[2]
    assert "Siri Sykepleier" in on_entry["requester"]["display"]
    assert on_entry["authoredOn"] == on_entry["lastModified"]
    # the list as a whole: the baton holder
    assert on_list["owner"]["identifier"]["value"] == HOSPITAL_ORG
    assert on_list["extension"][0]["valueReference"]["identifier"]["value"] == HOSPITAL_HPR
    assert on_list["focus"]["reference"] == f"List/{scene.list_id}/_history/5"
    assert on_hospitals["owner"]["identifier"]["value"] == HOSPITAL_ORG
    with server.client("gp") as gp:
        assert ok(gp.get(f"/fhir/Task/{on_entry['id']}")) == on_entry


def test_anyone_with_access_reports_a_patient_too_but_not_without_access(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    focus = f"MedicationStatement/{scene.entries[METFORMIN[2]]}"
    for persona in ("pharmacist", "hospital-doctor", "gp"):
        with server.client(persona) as client:
            ok(report(client, focus), 201)
    with server.client("patient", pid=scene.fnr) as patient:
        mine = ok(report(patient, focus, "Jeg tar bare én tablett"), 201)
        assert mine["requester"]["identifier"]["value"] == scene.fnr
        assert len(ok(patient.get("/fhir/Task", params={"patient": scene.pid}))["entry"]) == 4
    other = patient_with_medicines(server, METFORMIN)
    before = snapshot(server.db, audit=False)
    with server.client("nurse", basis=None) as no_basis:
        r = report(no_basis, focus)
        assert r.status_code == 403
        assert "X-PLL-Access-Basis" in outcome_text(r)
    with server.client("patient", pid=other.fnr) as stranger:
        assert report(stranger, focus).status_code == 403
        assert stranger.get("/fhir/Task", params={"patient": scene.pid}).status_code == 403
    with server.db.write() as conn:  # a patient's block on the nurse holds here too
        conn.execute(
            access_block.insert().values(
                id="block-1",
                patient_id=scene.pid,
                hpr="9144900",
                created_at=server.service.clock(),
                resource="{}",
            )
        )
    blocked = snapshot(server.db, audit=False)
    with server.client("nurse") as nurse:
        r = report(nurse, focus)
        assert r.status_code == 403
        assert "blocked" in outcome_text(r)
    assert snapshot(server.db, audit=False) == blocked
    assert {k: v for k, v in before.items() if k != "access_block"} == {
        k: v for k, v in blocked.items() if k != "access_block"
    }


# -- who handles it --------------------------------------------------------------------------


def _refusals(server: LiveServer, task_id: str) -> list[tuple[str, str, str]]:
    with server.db.read() as conn:
        rows = conn.execute(
            sa.select(audit_event.c.actor, audit_event.c.action, audit_event.c.outcome).where(
                audit_event.c.resource_id == task_id, audit_event.c.outcome != "0"
            )
        ).all()
    return [(orjson.loads(r.actor)["name"], r.action, r.outcome) for r in rows]


def test_only_the_receiving_organisation_handles_it_and_every_refusal_is_logged(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    with server.client("nurse") as nurse:
        task = ok(report(nurse, f"MedicationStatement/{scene.entries[METFORMIN[2]]}"), 201)
    tid = task["id"]
    before = snapshot(server.db, audit=False)
    refused = [
        ("hospital-doctor", "take", None, "Only prescribers (doctors, and dentists and"),
        ("hospital-doctor", "resolve", "Ikke vårt", "Only prescribers (doctors, and dentists"),
        ("nurse", "resolve", None, "Only prescribers take, resolve or reject"),
        ("pharmacist", "comment", "Vi ser noe annet", "Only the person who reported"),
        ("hospital-doctor", "withdraw", None, "Only the person who reported the case"),
        ("gp", "withdraw", None, "Only the person who reported the case"),
    ]
    for persona, name, comment, words in refused:
        with server.client(persona) as client:
            r = operation(client, tid, name, comment)
        assert r.status_code == 403, (persona, name, r.text)
        assert words in outcome_text(r), (persona, name)
    with server.client("patient", pid=scene.fnr) as patient:
        r = operation(patient, tid, "take")
        assert r.status_code == 403
        assert "responsible prescriber's organisation" in outcome_text(r)
    assert snapshot(server.db, audit=False) == before  # refused: nothing changed ...
    logged = _refusals(server, tid)  # ... and each refusal is in the patient's access log
    assert len(logged) == 5
    assert {action for _, action, _ in logged} == {"update"}
    assert {name for name, _, _ in logged} == {"Ola Sykehuslege", "Per Farmasøyt", "Kari Fastlege"}

    # the reporter comments; the GP takes it, comments, resolves
    with server.client("nurse") as nurse:
        commented = ok(operation(nurse, tid, "comment", "Gjelder morgendosen"))
    assert (commented["status"], commented["meta"]["versionId"]) == ("requested", "2")
    with server.client("gp") as gp:
        taken = ok(operation(gp, tid, "take", if_match='W/"2"'))
        assert taken["status"] == "in-progress"
        assert taken["extension"][1]["url"] == fhir_cases.EXT_HANDLER
        assert "Kari Fastlege" in taken["extension"][1]["valueReference"]["display"]
        r = operation(gp, tid, "take")
        assert r.status_code == 409
        assert "already taken" in outcome_text(r)
        ok(operation(gp, tid, "comment", "Ringer pasienten i dag"))
        done = ok(operation(gp, tid, "resolve", "Metformin er seponert", if_match='W/"4"'))
        assert done["status"] == "completed"
        assert done["businessStatus"]["text"] == "Løst"
        assert done["statusReason"]["text"] == "Metformin er seponert"
        assert [n["text"] for n in done["note"]] == [
            "Gjelder morgendosen",
            "Ringer pasienten i dag",
            "Metformin er seponert",
        ]
        # closed is closed
        r = operation(gp, tid, "reject", "Likevel ikke")
        assert r.status_code == 409
        assert "closed" in outcome_text(r)


def test_a_rejection_says_why_and_the_reporter_may_withdraw(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    focus = f"List/{scene.list_id}"
    with server.client("nurse") as nurse:
        first = ok(report(nurse, focus), 201)["id"]
        second = ok(report(nurse, focus, "Feil pasient, beklager"), 201)["id"]
        withdrawn = ok(operation(nurse, second, "withdraw"))
    assert withdrawn["status"] == "cancelled"
    assert withdrawn["businessStatus"]["text"] == "Trukket tilbake"
    with server.client("gp") as gp:
        r = operation(gp, first, "reject")
        assert r.status_code == 400
        assert "why the case is rejected" in outcome_text(r)
        rejected = ok(operation(gp, first, "reject", "Listen stemmer; insulinet står der"))
    assert rejected["status"] == "rejected"
    assert rejected["statusReason"]["text"] == "Listen stemmer; insulinet står der"


# -- history, events and the list -------------------------------------------------------------


@pytest.fixture
def hook() -> Iterator[tuple[str, list[tuple[dict[str, Any], dict[str, str], bytes]]]]:
    got: list[tuple[dict[str, Any], dict[str, str], bytes]] = []

    async def receive(request: Request) -> Response:
        body = await request.body()
        got.append((orjson.loads(body), dict(request.headers), body))
        return Response(status_code=200)

    with serving(Starlette(routes=[Route("/hook", receive, methods=["POST"])])) as base:
        yield f"{base}/hook", got


def _subscribe(client: httpx.Client, criteria: str, endpoint: str) -> None:
    ok(
        client.post(
            "/fhir/Subscription",
            json={
                "resourceType": "Subscription",
                "status": "requested",
                "reason": "journal system follows the patient's cases",
                "criteria": criteria,
                "channel": {"type": "rest-hook", "endpoint": endpoint},
                "extension": [{"url": SECRET_EXTENSION, "valueString": SECRET}],
            },
        ),
        201,
    )


def _deliver(server: LiveServer) -> None:
    d = Dispatcher(
        server.db,
        consumers(server.db, "http://pll.test/fhir", None, server.service.trail),
        server.service.clock,
    )
    for each in d.consumers():
        d.drain(each)
        each.close()


def test_the_history_the_events_and_the_list_until_closed(
    server: LiveServer, hook: tuple[str, list[Any]], tmp_path: Path
) -> None:
    endpoint, got = hook
    scene = patient_with_medicines(server, METFORMIN, SIMVASTATIN)
    with server.client("gp") as gp:
        _subscribe(gp, f"Task?patient={scene.pid}", f"{endpoint}?cases")
        _subscribe(gp, f"List?patient={scene.pid}", f"{endpoint}?list")
    copy = ReadCopy(
        server.db, Database(f"sqlite:///{tmp_path / 'copy.sqlite3'}"), server.service.clock
    )
    copy.setup()
    while copy.step():
        pass
    with server.client("nurse") as nurse:
        tid = ok(report(nurse, f"MedicationStatement/{scene.entries[METFORMIN[2]]}"), 201)["id"]
    with server.client("gp") as gp:
        assert open_ids(gp, scene.pid) == [tid]  # shown on the list while open
        ok(operation(gp, tid, "take"))
        assert open_ids(gp, scene.pid) == [tid]
        ok(operation(gp, tid, "comment", "Avklarer med pasienten"))
        add_medicine(gp, scene.pid, WARFARIN)  # the list itself changes meanwhile
        ok(operation(gp, tid, "resolve", "Rettet"))
        assert open_ids(gp, scene.pid) == []  # closed: no longer on the list
        everything = ok(gp.get("/fhir/Task", params={"patient": scene.pid}))
        assert [e["resource"]["status"] for e in everything["entry"]] == ["completed"]
        assert (
            ok(gp.get("/fhir/Task", params={"patient": scene.pid, "status": "completed"}))["total"]
            == 1
        )

        # the history: every status change and comment, who and when, newest first
        history = ok(gp.get(f"/fhir/Task/{tid}/_history"))
        versions = [e["resource"] for e in history["entry"]]
        assert [v["meta"]["versionId"] for v in versions] == ["4", "3", "2", "1"]
        assert [v["status"] for v in versions] == [
            "completed",
            "in-progress",
            "in-progress",
            "requested",
        ]
        assert history["entry"][-1]["request"] == {"method": "POST", "url": "Task"}
        second = ok(gp.get(f"/fhir/Task/{tid}/_history/2"))
        assert second == versions[2]
        assert gp.get(f"/fhir/Task/{tid}/_history/9").status_code == 404
    with server.db.read() as conn:
        steps = conn.execute(
            sa.select(
                discrepancy_case_version.c.version,
                discrepancy_case_version.c.action,
                discrepancy_case_version.c.status,
                discrepancy_case_version.c.comment,
            )
            .where(discrepancy_case_version.c.case_id == tid)
            .order_by(discrepancy_case_version.c.version)
        ).all()
    assert [tuple(s) for s in steps] == [
        (1, "report", "open", None),
        (2, "take", "in-progress", None),
        (3, "comment", "in-progress", "Avklarer med pasienten"),
        (4, "resolve", "resolved", "Rettet"),
    ]
    # the history is append-only in the database itself
    for change in (
        sa.update(discrepancy_case_version).values(comment="Endret i ettertid"),
        sa.delete(discrepancy_case_version),
    ):
        with pytest.raises(sa.exc.DBAPIError), server.db.write() as conn:
            conn.execute(change.where(discrepancy_case_version.c.case_id == tid))

    # one event per change, in the change's own transaction
    with server.db.read() as conn:
        kinds = conn.execute(
            sa.select(outbox.c.kind, outbox.c.list_version, outbox.c.payload)
            .where(outbox.c.patient_id == scene.pid, outbox.c.kind.like("case-%"))
            .order_by(outbox.c.id)
        ).all()
    assert [k.kind for k in kinds] == [
        "case-reported",
        "case-taken",
        "case-commented",
        "case-resolved",
    ]
    payloads = [orjson.loads(k.payload) for k in kinds]
    assert [p["task"] for p in payloads] == [f"Task/{tid}/_history/{v}" for v in (1, 2, 3, 4)]
    assert [p["status"] for p in payloads][-1] == "completed"
    assert {p["owner"] for p in payloads} == {GP_ORG}
    assert [k.list_version for k in kinds] == [5, 5, 5, 7]  # the list's version at the time

    # delivered: the Task subscription hears the cases, the List subscription the list only
    _deliver(server)
    by_focus = [b["entry"][1]["fullUrl"].split("/fhir/")[1] for b, _, _ in got]
    assert [f for f in by_focus if f.startswith("Task/")] == [
        f"Task/{tid}/_history/{v}" for v in (1, 2, 3, 4)
    ]
    assert [f.rsplit("/", 1)[1] for f in by_focus if f.startswith("List/")] == ["6", "7"]
    for bundle, headers, raw in got:
        assert (
            headers["x-pll-signature"]
            == "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        )
        topic = next(
            p["valueCanonical"]
            for p in bundle["entry"][0]["resource"]["parameter"]
            if p["name"] == "topic"
        )
        about_case = bundle["entry"][1]["fullUrl"].split("/fhir/")[1].startswith("Task/")
        assert topic.endswith("case-changed" if about_case else "list-changed")

    # the read copy passes over the case events and still equals the store
    while copy.step(limit=2):
        pass
    assert copy.differences() == []
    assert copy.lag().behind == 0
    copy.copy.dispose()


def test_a_case_and_a_list_change_do_not_hold_each_other_up(server: LiveServer) -> None:
    """Reporting locks the list as a change does; both go through, each as itself."""
    scene = patient_with_medicines(server, METFORMIN)
    focus = f"List/{scene.list_id}"

    async def both() -> list[int]:
        async with (
            httpx.AsyncClient(base_url=server.base, headers=_headers(server, "nurse")) as nurse,
            httpx.AsyncClient(base_url=server.base, headers=_headers(server, "gp")) as gp,
        ):
            body = {
                "resourceType": "Task",
                "status": "requested",
                "intent": "order",
                "focus": {"reference": focus},
                "description": "Mangler",
            }
            answers = await asyncio.gather(
                *(nurse.post("/fhir/Task", json=body) for _ in range(4)),
                *(
                    gp.post(
                        "/fhir/MedicationStatement",
                        json={
                            "resourceType": "MedicationStatement",
                            "status": "active",
                            "medicationCodeableConcept": {"text": f"Legemiddel {i}"},
                            "subject": {"reference": f"Patient/{scene.pid}"},
                        },
                    )
                    for i in range(4)
                ),
            )
            return [a.status_code for a in answers]

    assert asyncio.run(both()) == [201] * 8
    with server.client("gp") as gp:
        assert len(open_ids(gp, scene.pid)) == 4


def _headers(server: LiveServer, persona: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {server.token(persona)}",
        "X-PLL-Access-Basis": "HPBEHANDLINGSRELASJON",
        "Content-Type": "application/fhir+json",
    }


# -- bad input ---------------------------------------------------------------------------------


def test_bad_input_gets_a_clear_outcome_and_changes_nothing(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    other = patient_with_medicines(server, METFORMIN)
    entry = scene.entries[METFORMIN[2]]
    with server.client("nurse") as nurse:
        tid = ok(report(nurse, f"List/{scene.list_id}"), 201)["id"]
    good = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "focus": {"reference": f"MedicationStatement/{entry}"},
        "description": "Feil dose",
    }
    reports: list[tuple[Any, int, str, str | None]] = [
        ({**good, "resourceType": "List"}, 400, "Expected resourceType 'Task'", "resourceType"),
        (
            {k: v for k, v in good.items() if k != "description"},
            400,
            "Say what is wrong",
            "Task.description",
        ),
        ({**good, "description": "  "}, 400, "Say what is wrong", "Task.description"),
        ({**good, "status": "completed"}, 400, "status 'requested'", "Task.status"),
        ({**good, "intent": "plan"}, 400, "intent 'order'", "Task.intent"),
        ({**good, "focus": {"reference": "MedicationRequest/x"}}, 400, "Task.focus", "Task.focus"),
        ({**good, "focus": {"reference": "List/nowhere"}}, 400, "does not exist", "Task.focus"),
        (
            {**good, "focus": {"reference": "MedicationStatement/nowhere"}},
            400,
            "does not exist",
            "Task.focus",
        ),
        (
            {**good, "focus": {"reference": f"MedicationStatement/{entry}/_history/7"}},
            400,
            "current version is 1",
            "Task.focus",
        ),
        ({**good, "for": {"reference": f"Patient/{other.pid}"}}, 400, "Task.for names", "Task.for"),
        ({**good, "owner": {"display": "Meg"}}, 400, "PLL sets Task.owner", "Task.owner"),
        ({**good, "priority": "urgent"}, 400, "PLL sets Task.priority", "Task.priority"),
        ({**good, "description": "x" * 4001}, 400, "at most 4000", "Task.description"),
        ({**good, "statusx": 1}, 400, "Unknown element", None),
    ]
    ops: list[tuple[str, str, Any, dict[str, str], int, str]] = [
        (tid, "reject", None, {}, 400, "why the case is rejected"),
        (tid, "comment", None, {}, 400, "the comment"),
        (
            tid,
            "comment",
            {"resourceType": "Parameters", "parameter": [{"name": "note", "valueString": "x"}]},
            {},
            400,
            "Unknown parameter 'note'",
        ),
        (
            tid,
            "comment",
            {"resourceType": "Parameters", "parameter": [{"name": "comment", "valueInteger": 3}]},
            {},
            400,
            "valueString",
        ),
        (tid, "resolve", None, {"If-Match": 'W/"7"'}, 412, "you hold version 7"),
        (tid, "resolve", None, {"If-Match": "seven"}, 400, "If-Match must be"),
        ("nowhere", "take", None, {}, 404, "Task/nowhere does not exist"),
    ]
    before = snapshot(server.db)
    with server.client("nurse") as nurse:
        for body, status, words, where in reports:
            r = nurse.post("/fhir/Task", json=body)
            assert r.status_code == status, (body, r.text)
            assert words in outcome_text(r), (words, r.text)
            if where:
                assert r.json()["issue"][0]["expression"] == [where], r.text
        r = nurse.post(
            "/fhir/Task", content=b"{not json", headers={"Content-Type": "application/fhir+json"}
        )
        assert r.status_code == 400
    with server.client("gp") as gp:
        for task_id, name, body, headers, status, words in ops:
            r = gp.post(f"/fhir/Task/{task_id}/${name}", json=body, headers=headers)
            assert r.status_code == status, (name, r.text)
            assert words in outcome_text(r), (name, r.text)
    assert snapshot(server.db) == before  # nothing, not even an audit record, was written
    with server.client("gp") as gp:
        for params, words in [
            ({"patient": scene.pid, "status": "open"}, "Unknown Task status"),
            ({"status": "requested"}, "Search by patient"),
            ({"patient": scene.pid, "owner": GP_ORG}, "not both"),
            ({"patient": scene.pid, "requester": GP_ORG}, "Unsupported search parameter"),
        ]:
            r = gp.get("/fhir/Task", params=params)
            assert r.status_code == 400, r.text
            assert words in outcome_text(r)
        assert gp.get("/fhir/Task/nowhere").status_code == 404
        assert gp.get("/fhir/Task/nowhere/_history").status_code == 404


def test_the_capability_statement_names_task_and_its_operations(server: LiveServer) -> None:
    with server.client("gp") as gp:
        meta = ok(gp.get("/fhir/metadata"))
    task = next(r for r in meta["rest"][0]["resource"] if r["type"] == "Task")
    assert {i["code"] for i in task["interaction"]} == {
        "create",
        "read",
        "vread",
        "history-instance",
        "search-type",
    }
    assert {o["name"] for o in task["operation"]} == {
        "take",
        "comment",
        "resolve",
        "reject",
        "withdraw",
    }
    assert {p["name"] for p in task["searchParam"]} >= {"patient", "status"}


# -- the list page -----------------------------------------------------------------------------


def test_the_list_page_shows_open_cases_escaped_and_acts_on_the_form(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    entry = scene.entries[METFORMIN[2]]
    evil = "<script>alert(1)</script>"
    with logged_in(server, "nurse") as nurse:
        page = opened(nurse, scene.fnr)
        html = nurse.get(page).text
        assert "Meld avvik" in html
        # no open case: the page's read of the list is all the access log gets
        assert _task_reads(server, scene.pid) == []
        r = nurse.post(
            f"{page}/avvik",
            data={
                "csrf": csrf(nurse, page),
                "gjelder": f"MedicationStatement/{entry}/_history/1",
                "beskrivelse": f"Feil dose {evil}",
            },
        )
        assert r.status_code == 303, r.text
        html = nurse.get(page).text
        assert "Avviket er meldt til Bergen legesenter" in html
        assert "&lt;script&gt;" in html
        assert "<script>alert" not in html
        assert 'value="ta"' not in html  # the reporter does not handle it ...
        assert 'value="trekk"' in html  # ... but may withdraw it
        with server.client("gp") as api:
            found = ok(api.get("/fhir/Task", params={"patient": scene.pid}))
        tid = found["entry"][0]["resource"]["id"]
        # a form without its anti-forgery token changes nothing
        before = snapshot(server.db, audit=False)
        r = nurse.post(f"{page}/avvik/{tid}", data={"handling": "trekk"})
        assert r.status_code == 403
        assert snapshot(server.db, audit=False) == before
    with logged_in(server, "hospital-doctor") as hospital:
        page = opened(hospital, scene.fnr)
        html = hospital.get(page).text
        assert f"avvik-{tid}" in html
        # a case shown is part of the page's one look, the read of the list it is shown on
        # (one record per page view in the patient's access log)
        assert ("Ola Sykehuslege", "read") in _reads(server, scene.pid, "List")
        assert ("Ola Sykehuslege", "search") not in _task_reads(server, scene.pid)
        assert 'value="ta"' not in html  # not theirs to handle
        r = hospital.post(
            f"{page}/avvik/{tid}", data={"csrf": csrf(hospital, page), "handling": "ta"}
        )
        assert r.status_code == 403
        assert (
            "Bare forskrivere (leger, tannleger og jordmødre) ved virksomheten avviket er sendt til"
            in r.text
        )
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        html = gp.get(page).text
        assert 'value="ta"' in html
        assert 'value="avvis"' in html
        r = gp.post(f"{page}/avvik/{tid}", data={"csrf": csrf(gp, page), "handling": "avvis"})
        assert r.status_code == 400
        assert "Skriv hvorfor avviket avvises" in r.text
        r = gp.post(
            f"{page}/avvik/{tid}",
            data={"csrf": csrf(gp, page), "handling": "los", "kommentar": "Rettet", "versjon": "1"},
        )
        assert r.status_code == 303, r.text
        html = gp.get(page).text
        assert "Avviket er løst og lukket" in html
        assert f"avvik-{tid}" not in html  # closed: gone from the list


def _reads(server: LiveServer, pid: str, rtype: str) -> list[tuple[str, str]]:
    """Who read what of this patient's ``rtype`` (allowed accesses in the audit log)."""
    with server.db.read() as conn:
        rows = conn.execute(
            sa.select(audit_event.c.actor, audit_event.c.action).where(
                audit_event.c.patient_id == pid,
                audit_event.c.resource_type == rtype,
                audit_event.c.outcome == "0",
            )
        ).all()
    return [(orjson.loads(r.actor)["name"], r.action) for r in rows]


def _task_reads(server: LiveServer, pid: str) -> list[tuple[str, str]]:
    return _reads(server, pid, "Task")


# -- an organisation's inbox -------------------------------------------------------------------


def test_an_organisation_finds_the_cases_addressed_to_it(server: LiveServer) -> None:
    first = patient_with_medicines(server, METFORMIN)
    second = patient_with_medicines(server, METFORMIN)
    warfarin = hospital_adds(server, first.pid)  # the hospital wrote this entry
    with server.client("nurse") as nurse:
        to_gp = ok(report(nurse, f"MedicationStatement/{second.entries[METFORMIN[2]]}"), 201)
        to_hospital = ok(report(nurse, f"MedicationStatement/{warfarin}"), 201)
        on_list = ok(report(nurse, f"List/{first.list_id}"), 201)  # the baton: the hospital
    with server.client("hospital-doctor") as hospital:
        ok(operation(hospital, on_list["id"], "resolve", "Ordnet"))
        inbox = ok(hospital.get("/fhir/Task", params={"owner": f"{ORGNR}|{HOSPITAL_ORG}"}))
        assert [e["resource"]["id"] for e in inbox["entry"]] == [on_list["id"], to_hospital["id"]]
        open_only = ok(
            hospital.get("/fhir/Task", params={"owner": HOSPITAL_ORG, "status": "requested"})
        )
        assert [e["resource"]["id"] for e in open_only["entry"]] == [to_hospital["id"]]
        # another organisation's inbox is not theirs to read
        r = hospital.get("/fhir/Task", params={"owner": GP_ORG})
        assert r.status_code == 403
        assert "your own organisation" in outcome_text(r)
    with server.client("gp") as gp:
        mine = ok(gp.get("/fhir/Task", params={"owner": GP_ORG}))
        assert [e["resource"]["id"] for e in mine["entry"]] == [to_gp["id"]]
    with server.db.read() as conn:
        logged = conn.execute(
            sa.select(audit_event.c.patient_id).where(
                audit_event.c.action == "search",
                audit_event.c.resource_type == "Task",
                audit_event.c.resource_id == to_gp["id"],
            )
        ).all()
    assert [r.patient_id for r in logged] == [second.pid]  # the read, in that patient's log


def test_a_patient_who_blocked_the_worker_is_left_out_of_the_inbox(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    with server.client("nurse") as nurse:
        ok(report(nurse, f"MedicationStatement/{scene.entries[METFORMIN[2]]}"), 201)
    with server.client("patient", pid=scene.fnr) as patient:
        ok(patient.post("/fhir/Consent", json=block_consent(GP_HPR, scene.pid)), 201)
    with server.client("gp") as gp:
        r = gp.get("/fhir/Task", params={"owner": GP_ORG})
        body = ok(r)
        assert body["total"] == 1
        assert body.get("entry", []) == []
        assert r.headers["X-PLL-Left-Out"] == "1"


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"owner": "urn:oid:1.2.3|974600951"}, "organisation number"),
        ({"owner": "Bergen legesenter"}, "organisation number"),
        ({"owner": GP_ORG, "patient": "x"}, "not both"),
    ],
)
def test_a_bad_inbox_search_is_refused_clearly(
    server: LiveServer, params: dict[str, str], says: str
) -> None:
    with server.client("gp") as gp:
        r = gp.get("/fhir/Task", params=params)
        assert r.status_code == 400
        assert says in outcome_text(r)
    with server.client("patient", pid="13116900216") as patient:
        assert patient.get("/fhir/Task", params={"owner": GP_ORG}).status_code == 403


def test_the_patient_sees_the_open_cases_on_their_own_list(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    with server.client("nurse") as nurse:
        case = ok(
            report(nurse, f"MedicationStatement/{scene.entries[METFORMIN[2]]}", "<b>Feil dose</b>"),
            201,
        )
    with logged_in(server, "patient", scene.fnr) as me:
        page = me.get(f"/pasient/{scene.pid}").text
        assert f'id="avvik-{case["id"]}"' in page
        assert "&lt;b&gt;Feil dose&lt;/b&gt;" in page  # the reporter's words, as text
        assert "Bergen legesenter" in page  # where it went
    with server.client("gp") as gp:
        ok(operation(gp, case["id"], "resolve", "Dosen er rettet"))
    with logged_in(server, "patient", scene.fnr) as me:
        assert f'id="avvik-{case["id"]}"' not in me.get(f"/pasient/{scene.pid}").text
