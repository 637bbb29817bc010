"""Technical cases and case deadlines (issue 18) over real HTTP, on SQLite and PostgreSQL:
the register of client systems, a technical case reaching the client's operator (or PLL's
own operations), handled there with status, comments and history, never showing the
operator a patient's data; cases past their deadline shown as overdue and counted; a
subscription that keeps failing opening exactly one case."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from pll.cli import main
from pll.domain.deadlines import Deadlines
from pll.domain.technical_cases import client_system
from pll.events.dispatcher import Dispatcher
from pll.events.run import consumers, failing
from pll.fhir import cases as fhir_cases
from pll.fhir import technical_cases as fhir_technical
from pll.services.subscriptions import SECRET_EXTENSION
from pll.services.technical_cases import TechnicalCaseService
from pll.stats.indicators import week
from pll.store.schema import audit_event, technical_case
from tests.conftest import LiveServer, snapshot
from tests.e2e.scenes import METFORMIN, patient_with_medicines
from tests.integration.builders import ok, outcome_text
from tests.integration.test_web import logged_in, opened

VENDOR_ORG, OPERATIONS_ORG, GP_ORG = "999000010", "999000002", "974600951"
CLIENT = "demo-journal"


def technical(
    client: httpx.Client,
    client_id: str = CLIENT,
    text: str = "Sending av listen feilet med tidsavbrudd",
    **extra: Any,
) -> httpx.Response:
    body = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": fhir_technical.CODE,
        "focus": {"identifier": {"system": fhir_technical.CLIENT_ID, "value": client_id}},
        "description": text,
        **extra,
    }
    return client.post("/fhir/Task", json=body)


def operation(client: httpx.Client, task_id: str, name: str, comment: str | None = None) -> Any:
    body = None
    if comment is not None:
        body = {
            "resourceType": "Parameters",
            "parameter": [{"name": "comment", "valueString": comment}],
        }
    return client.post(f"/fhir/Task/{task_id}/${name}", json=body)


def inbox(client: httpx.Client, org: str, **params: str) -> httpx.Response:
    return client.get("/fhir/Task", params={"owner": org, **params})


def register(server: LiveServer, orgnr: str | None = VENDOR_ORG, client_id: str = CLIENT) -> None:
    TechnicalCaseService(server.service).register(
        client_system(
            client_id, "Demo Journal", "Journalsystem AS", "drift@journal.test", None, orgnr
        )
    )


@pytest.fixture
def rules(server: LiveServer) -> Iterator[Any]:
    """The server's case rules, put back after the test."""
    before = server.service.case_rules
    yield server.service
    server.service.case_rules = before


def test_pll_clients_registers_lists_updates_and_removes(server: LiveServer) -> None:
    env = {"PLL_DATABASE_URL": server.db.url, "PLL_DATA_DIR": str(server.data_dir)}
    run = CliRunner().invoke
    added = run(
        main,
        [
            "clients",
            "add",
            "--client-id",
            CLIENT,
            "--name",
            "Demo Journal",
            "--vendor",
            "Journalsystem AS",
            "--email",
            "drift@journal.test",
            "--orgnr",
            VENDOR_ORG,
        ],
        env=env,
    )
    assert added.exit_code == 0, added.output
    assert f"registered {CLIENT}" in added.output
    assert VENDOR_ORG in added.output
    before = snapshot(server.db)
    bad = run(
        main,
        [
            "clients",
            "add",
            "--client-id",
            "x",
            "--name",
            "X",
            "--vendor",
            "Y",
            "--orgnr",
            "123456789",
        ],
        env=env,
    )
    assert bad.exit_code != 0
    assert "not an organisation number" in bad.output
    assert snapshot(server.db) == before  # nothing written
    updated = run(
        main,
        ["clients", "add", "--client-id", CLIENT, "--name", "Demo Journal 2", "--vendor", "J AS"],
        env=env,
    )
    assert "updated demo-journal" in updated.output
    assert "PLL's operations" in updated.output
    listed = run(main, ["clients", "list"], env=env)
    assert listed.output.splitlines() == [f"{CLIENT}\tDemo Journal 2\tJ AS\t-\t-\t-"]
    assert run(main, ["clients", "remove", "--client-id", CLIENT], env=env).exit_code == 0
    assert run(main, ["clients", "list"], env=env).output == ""
    assert run(main, ["clients", "remove", "--client-id", CLIENT], env=env).exit_code != 0


def test_a_technical_case_goes_to_the_clients_operator_and_is_handled_there(
    server: LiveServer,
) -> None:
    register(server)
    with server.client("gp") as gp:
        r = technical(gp)
        case = ok(r, 201)
    assert r.headers["Location"].endswith(f"/fhir/Task/{case['id']}/_history/1")
    assert case["code"]["coding"][0]["code"] == "technical"
    assert case["owner"]["identifier"] == {"system": fhir_cases.systems.ORGNR, "value": VENDOR_ORG}
    assert case["focus"]["identifier"]["value"] == CLIENT
    assert case["focus"]["display"] == "Demo Journal (Journalsystem AS)"
    assert "for" not in case
    assert case["restriction"]["period"]["end"] > case["authoredOn"]
    assert "Kari Fastlege" in case["requester"]["display"]
    tid = case["id"]
    with server.client("operator") as operator:
        found = ok(inbox(operator, VENDOR_ORG))
        assert [e["resource"]["id"] for e in found["entry"]] == [tid]
        assert ok(operator.get(f"/fhir/Task/{tid}"))["description"] == case["description"]
        assert ok(operation(operator, tid, "take"))["status"] == "in-progress"
        ok(operation(operator, tid, "comment", "Ser på tidsavbruddet"))
    with server.client("gp") as gp:
        # the reporter comments; a doctor cannot handle an operator's case
        ok(operation(gp, tid, "comment", "Skjer hver morgen"))
        refused = operation(gp, tid, "resolve")
        assert refused.status_code == 403
        assert "Only operators" in outcome_text(refused)
    with server.client("nurse") as nurse:
        # neither reporter nor operator: not shown a case about no patient
        assert nurse.get(f"/fhir/Task/{tid}").status_code == 403
    with server.client("operator") as operator:
        done = ok(operation(operator, tid, "resolve", "Rettet i versjon 4.2"))
        assert done["status"] == "completed"
        assert [n["text"] for n in done["note"]] == [
            "Ser på tidsavbruddet",
            "Skjer hver morgen",
            "Rettet i versjon 4.2",
        ]
        assert operation(operator, tid, "comment", "Etterpå").status_code == 409
        history = ok(operator.get(f"/fhir/Task/{tid}/_history"))
        assert [e["resource"]["status"] for e in history["entry"]] == [
            "completed",
            "in-progress",
            "in-progress",
            "in-progress",
            "requested",
        ]
        assert ok(operator.get(f"/fhir/Task/{tid}/_history/1"))["status"] == "requested"
    with server.client("operations") as operations:
        # another organisation's operator: none of theirs
        assert operations.get(f"/fhir/Task/{tid}").status_code == 403
        assert operation(operations, tid, "comment", "Hei").status_code == 403


def test_an_unregistered_client_goes_to_the_national_queue(server: LiveServer) -> None:
    with server.client("pharmacist") as pharmacy:
        case = ok(technical(pharmacy, "ukjent-apoteksystem"), 201)
    assert case["owner"]["identifier"]["value"] == OPERATIONS_ORG
    assert case["focus"]["display"] == "ukjent-apoteksystem (ikke registrert)"
    with server.client("operations") as operations:
        found = ok(inbox(operations, OPERATIONS_ORG))
        assert [e["resource"]["id"] for e in found["entry"]] == [case["id"]]
        ok(operation(operations, case["id"], "take"))
    # registered with an operator later: a case already sent stays where it went
    register(server, client_id="ukjent-apoteksystem")
    with server.client("operator") as operator:
        assert ok(inbox(operator, VENDOR_ORG))["total"] == 0


def test_the_operator_is_refused_what_is_not_theirs(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    before = snapshot(server.db)
    with server.client("operator") as operator:
        # no registered client system names this organisation as its operator yet
        r = inbox(operator, VENDOR_ORG)
        assert r.status_code == 403
        assert "operates no registered client system" in outcome_text(r)
        register_needed = snapshot(server.db)
        assert register_needed == before
    register(server)
    with server.client("operator") as operator:
        assert inbox(operator, OPERATIONS_ORG).status_code == 403  # not their organisation
        # an operator never reads a patient's data, whatever basis it states
        headers = {"X-PLL-Access-Basis": "HPBEHANDLINGSRELASJON"}
        assert operator.get(f"/fhir/List/{scene.list_id}", headers=headers).status_code == 403
        assert operator.get("/fhir/Task", params={"patient": scene.pid}).status_code == 403
    with server.client("gp") as gp:
        # a doctor's inbox is the discrepancy cases of their own organisation
        assert inbox(gp, VENDOR_ORG).status_code == 403


def test_bad_reports_are_refused_and_write_nothing(server: LiveServer) -> None:
    register(server)
    before = snapshot(server.db)
    with server.client("gp") as gp:
        cases = [
            (technical(gp, text="  "), "Task.description"),
            (technical(gp, text="x" * 4001), "Task.description"),
            (technical(gp, focus={"reference": "Device/1"}), "Task.focus"),
            (
                technical(gp, focus={"identifier": {"system": "urn:x", "value": CLIENT}}),
                "Task.focus",
            ),
            (technical(gp, client_id="has space"), "Task.focus"),
            (technical(gp, **{"for": {"reference": "Pasient/1"}}), "Task.for"),
            (technical(gp, **{"for": {"reference": "Patient/nobody"}}), "Task.for"),
            (technical(gp, owner={"display": "Meg"}), "Task.owner"),
            (technical(gp, status="in-progress"), "Task.status"),
        ]
        for response, where in cases:
            assert response.status_code == 400, (where, response.text)
            body = response.json()
            assert body["resourceType"] == "OperationOutcome"
            assert where in body["issue"][0]["expression"], (where, body)
        assert inbox(gp, GP_ORG, overdue="maybe").status_code == 400
        assert gp.get("/fhir/Task", params={"overdue": "true"}).status_code == 400
    with server.client("patient", "17855116340") as patient:
        refused = technical(patient)
        assert refused.status_code == 403
        assert "discrepancy" in outcome_text(refused)
    assert snapshot(server.db) == before


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"text": "Sending feilet\u0000"}, "Task.description"),
        ({"text": "Sending \u0007feilet"}, "Task.description"),
        ({"client_id": "demo-journal\u0000"}, "Task.focus.identifier.value"),
    ],
    ids=["nul-description", "bell-description", "nul-client-id"],
)
def test_a_control_character_in_a_technical_report_is_refused_before_the_database(
    server: LiveServer, fields: dict[str, str], where: str
) -> None:
    """PostgreSQL cannot store NUL in a text column while SQLite can: refused (400) on both
    databases alike, with nothing written, before the client id is looked up."""
    register(server)
    before = snapshot(server.db, audit=False)
    with server.client("gp") as gp:
        r = technical(gp, **fields)
    assert r.status_code == 400, r.text
    assert "control character" in outcome_text(r)
    assert r.json()["issue"][0]["expression"] == [where]
    assert snapshot(server.db, audit=False) == before


def test_a_control_character_is_refused_in_a_comment_and_in_any_other_body(
    server: LiveServer,
) -> None:
    """One check for every request body (pll.fhir.validate.parse_json): a comment on a case
    and a medicine's note are refused alike; tab and line feed are text."""
    register(server)
    scene = patient_with_medicines(server, METFORMIN)
    with server.client("gp") as gp:
        case = ok(technical(gp, text="Linje 1\n\tLinje 2"), 201)
        assert case["description"] == "Linje 1\n\tLinje 2"
        before = snapshot(server.db, audit=False)
        commented = operation(gp, case["id"], "comment", "Fortsatt feil\u0000")
        assert commented.status_code == 400, commented.text
        entry = gp.get(f"/fhir/MedicationStatement?patient={scene.pid}").json()["entry"][0]
        noted = {**entry["resource"], "note": [{"text": "Tas om morgenen\u0000"}]}
        r = gp.put(
            f"/fhir/MedicationStatement/{noted['id']}",
            json=noted,
            headers={"If-Match": f'W/"{noted["meta"]["versionId"]}"'},
        )
        assert r.status_code == 400, r.text
        assert r.json()["issue"][0]["expression"] == ["MedicationStatement.note[0].text"]
        assert snapshot(server.db, audit=False) == before


def test_a_case_about_a_patient_keeps_the_patient_from_the_operator(server: LiveServer) -> None:
    register(server)
    scene = patient_with_medicines(server, METFORMIN)
    with server.client("gp") as gp:
        case = ok(
            technical(
                gp,
                text="Listen til Ola Nordmann ble tom etter lagring",
                **{"for": {"reference": f"Patient/{scene.pid}"}},
            ),
            201,
        )
    assert case["for"] == {"reference": f"Patient/{scene.pid}"}
    tid = case["id"]
    with server.db.read() as conn:
        logged = (
            conn.execute(
                sa.select(audit_event.c.action).where(
                    audit_event.c.patient_id == scene.pid, audit_event.c.resource_id == tid
                )
            )
            .scalars()
            .all()
        )
    assert logged == ["create"]  # the report is in the patient's access log
    with server.client("operator") as operator:
        shown = ok(operator.get(f"/fhir/Task/{tid}"))
        assert "for" not in shown
        assert "Ola Nordmann" not in orjson.dumps(shown).decode()
        assert shown["description"] == fhir_technical.WITHHELD
        listed = ok(inbox(operator, VENDOR_ORG))["entry"][0]["resource"]
        assert "for" not in listed
        assert listed["description"] == fhir_technical.WITHHELD
        commented = ok(operation(operator, tid, "comment", "Hvilken versjon kjører dere?"))
        assert commented["note"][0]["text"] == "Hvilken versjon kjører dere?"
        assert operator.get(f"/fhir/Task/{tid}/_history").status_code == 403
    with server.client("gp") as gp:
        ok(operation(gp, tid, "comment", "4.1, gjelder Ola"))
        full = ok(gp.get(f"/fhir/Task/{tid}"))
        assert full["description"] == "Listen til Ola Nordmann ble tom etter lagring"
    with server.client("operator") as operator:
        notes = ok(operator.get(f"/fhir/Task/{tid}"))["note"]
        assert [n["text"] for n in notes] == [
            "Hvilken versjon kjører dere?",
            fhir_technical.WITHHELD,
        ]


def test_cases_past_their_deadline_are_overdue_in_the_inbox_and_counted(
    server: LiveServer, rules: Any
) -> None:
    rules.case_rules = dataclasses.replace(
        rules.case_rules, deadlines=Deadlines.parse("clinical=3wd,technical=1wd")
    )
    register(server)
    scene = patient_with_medicines(server, METFORMIN)
    reported_at = server.service.clock()  # the week they are counted in
    with server.client("nurse") as nurse:
        clinical = [
            ok(
                nurse.post(
                    "/fhir/Task",
                    json={
                        "resourceType": "Task",
                        "status": "requested",
                        "intent": "order",
                        "focus": {"reference": f"List/{scene.list_id}"},
                        "description": f"Avvik {n}",
                    },
                ),
                201,
            )["id"]
            for n in range(5)
        ]
        tech = [ok(technical(nurse, text=f"Feil {n}"), 201)["id"] for n in range(6)]
    with server.client("gp") as gp:
        ok(operation(gp, clinical[0], "resolve", "Rettet"))  # closed in time
    server.service.clock.advance(hours=1)  # type: ignore[attr-defined]
    with server.client("gp") as gp:
        assert ok(inbox(gp, GP_ORG, overdue="true"))["total"] == 0
        shown = ok(gp.get(f"/fhir/Task/{clinical[1]}"))
        assert "tag" not in shown["meta"]
    server.service.clock.advance(days=20)  # type: ignore[attr-defined]
    with server.client("gp") as gp:
        late = ok(inbox(gp, GP_ORG, overdue="true"))
        assert sorted(e["resource"]["id"] for e in late["entry"]) == sorted(clinical[1:])
        assert all(e["resource"]["meta"]["tag"] == [fhir_cases.OVERDUE_TAG] for e in late["entry"])
        everything = ok(inbox(gp, GP_ORG))
        tags = {e["resource"]["id"]: e["resource"]["meta"].get("tag") for e in everything["entry"]}
        assert tags[clinical[0]] is None  # closed: never overdue
        assert ok(gp.get(f"/fhir/Task/{clinical[2]}"))["meta"]["tag"] == [fhir_cases.OVERDUE_TAG]
        ok(operation(gp, clinical[1], "resolve", "For sent, men rettet"))  # closed late
    with logged_in(server, "gp") as browser:
        page = browser.get(opened(browser, scene.fnr)).text
        # the three clinical cases still open, each marked on the list page
        assert page.count("Fristen er overskredet") == 3
    with server.client("operator") as operator:
        ok(operation(operator, tech[0], "resolve", "Rettet"))
        late = ok(inbox(operator, VENDOR_ORG, overdue="true"))
        assert late["total"] == 5
    stats = httpx.get(f"{server.base}/stats/cases").json()
    rows = {r["kind"]: r for r in stats["rows"]}
    # the clinical counts under five are suppressed, as every small count about patients
    assert rows["clinical"]["reported"] == 5
    assert rows["clinical"]["overdue"] is None
    assert rows["clinical"]["overdue_open"] is None
    assert rows["technical"]["reported"] == 6
    assert rows["technical"]["overdue"] == 6  # closed after its deadline, or still open
    assert rows["technical"]["overdue_open"] == 5
    assert rows["technical"]["closed_in_time"] is None  # none: shown as suppressed too
    assert {r["week"] for r in stats["rows"]} == {week(reported_at)}


SECRET = "a-subscriber-secret-of-forty-characters!"


def test_a_subscription_failing_long_enough_opens_exactly_one_case(
    server: LiveServer, rules: Any
) -> None:
    rules.case_rules = dataclasses.replace(
        rules.case_rules, subscription_case_after=timedelta(hours=1)
    )
    register(server, client_id="pll-dev-client")  # the client the development tokens name
    scene = patient_with_medicines(server, METFORMIN)
    with server.client("gp") as gp:
        sub = ok(
            gp.post(
                "/fhir/Subscription",
                json={
                    "resourceType": "Subscription",
                    "status": "requested",
                    "reason": "journal system follows the list",
                    "criteria": f"List?patient={scene.pid}",
                    # nothing listens on port 9 (discard): every delivery fails
                    "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/hook"},
                    "extension": [{"url": SECRET_EXTENSION, "valueString": SECRET}],
                },
            ),
            201,
        )["id"]
    clock = server.service.clock
    dispatcher = Dispatcher(
        server.db,
        consumers(server.db, "http://pll.test/fhir", None, server.service.trail),
        clock,
        on_failing=failing(server.service),
    )

    def fail_again(**later: float) -> None:
        clock.advance(**later)  # type: ignore[attr-defined]
        with server.client("gp") as gp:  # something to deliver
            seen = gp.get(f"/fhir/List/{scene.list_id}").headers["ETag"]
            ok(gp.post(f"/fhir/List/{scene.list_id}/$confirm", headers={"If-Match": seen}))
        for each in dispatcher.consumers():
            dispatcher.step(each)
            each.close()

    def opened() -> list[Any]:
        with server.db.read() as conn:
            return conn.execute(
                sa.select(
                    technical_case.c.id, technical_case.c.status, technical_case.c.owner_org
                ).where(technical_case.c.subscription_id == sub)
            ).all()

    fail_again()
    fail_again(minutes=30)
    assert opened() == []  # failing, but not for an hour yet
    fail_again(minutes=31)
    first = opened()
    assert len(first) == 1
    assert first[0].owner_org == VENDOR_ORG
    fail_again(minutes=10)
    fail_again(hours=2)
    assert opened() == first  # once, not per failure
    with server.client("gp") as gp:
        shown = ok(gp.get(f"/fhir/Subscription/{sub}"))
    assert shown["status"] == "error"
    assert f"Task/{first[0].id}" in shown["error"]
    with server.client("operator") as operator:
        case = ok(operator.get(f"/fhir/Task/{first[0].id}"))
        assert f"Subscription/{sub}" in case["description"]
        assert "for" not in case
        assert scene.pid not in orjson.dumps(case).decode()
        assert case["requester"]["display"] == "PLL (automatisk)"
        ok(operation(operator, first[0].id, "resolve", "Endepunktet er flyttet"))
    fail_again(minutes=10)  # still failing after the case was closed: a new one
    assert len(opened()) == 2
