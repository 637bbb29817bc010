"""The rules of discrepancy cases driven directly on the domain objects: routing to the
responsible prescriber, who may do what, the status a case moves through, and its Task."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from pll.domain import cases as rules
from pll.domain.cases import Action, Case, Status
from pll.domain.errors import Conflict, Forbidden, InvalidInput, VersionConflict
from pll.domain.model import Author, Entry, MedicationList, Role
from pll.fhir import cases as fhir_cases
from pll.fhir.validate import validate
from tests.unit.content import ATC, NOW, ONE_MORNING, PATIENT_ID

GP_ORG, HOSPITAL_ORG, HOME_CARE = "974600951", "983974724", "964338531"
GP = Author("Kari Fastlege", Role.DOCTOR, "9144889", GP_ORG, "Bergen legesenter")
GP_COLLEAGUE = Author("Per Fastlege", Role.DOCTOR, "9144870", GP_ORG, "Bergen legesenter")
GP_NURSE = Author("Lise Sykepleier", Role.NURSE, "9144862", GP_ORG, "Bergen legesenter")
HOSPITAL = Author("Ola Sykehuslege", Role.DOCTOR, "9144897", HOSPITAL_ORG, "Haukeland")
NURSE = Author("Siri Sykepleier", Role.NURSE, "9144900", HOME_CARE, "Bergen hjemmetjeneste")
PATIENT = Author("Pasient", Role.PATIENT, pid="17855116340")
SYSTEM = Author("PLL (automatisk)", Role.SYSTEM)


def content(name: str = "Metformin tab 500 mg", status: str = "active") -> dict[str, Any]:
    return {
        "status": status,
        "medicationCodeableConcept": {"coding": [{"system": ATC, "code": "A10BA02"}], "text": name},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "dosage": ONE_MORNING,
    }


def a_list(baton: Author = HOSPITAL, **entries: tuple[Author, dict[str, Any]]) -> MedicationList:
    lst = MedicationList("list-1", PATIENT_ID, 7, NOW, NOW, baton)
    for eid, (author, body) in entries.items():
        ended = NOW - timedelta(days=100) if body["status"] == "stopped" else None
        lst.entries[eid] = Entry(eid, 3, body, NOW, author, ended_at=ended)
    return lst


def reported(
    lst: MedicationList | None = None, entry: str | None = "e1", by: Author = NURSE
) -> Case:
    lst = lst or a_list(e1=(GP, content()))
    case, step = rules.report("case-1", lst, entry, None, by, "Tar ikke dette lenger", NOW)
    assert (step.version, step.action, step.status) == (1, Action.REPORT, Status.OPEN)
    return case


# -- routing -----------------------------------------------------------------------------------


def test_a_case_on_an_entry_goes_to_the_organisation_of_its_last_author() -> None:
    case = reported(a_list(baton=HOSPITAL, e1=(GP, content())), "e1")
    assert (case.recipient.org_id, case.recipient.org_name) == (GP_ORG, "Bergen legesenter")
    assert case.recipient.person == GP  # the person as well as the organisation
    assert (case.entry_id, case.focus_version, case.status) == ("e1", 3, Status.OPEN)


def test_a_case_on_the_list_goes_to_the_baton_holder() -> None:
    case = reported(a_list(baton=HOSPITAL, e1=(GP, content())), None)
    assert (case.recipient.org_id, case.recipient.person) == (HOSPITAL_ORG, HOSPITAL)
    assert (case.entry_id, case.focus_version) == (None, 7)


def test_without_a_responsible_organisation_on_the_entry_the_baton_holder_is_asked() -> None:
    imported = Author("Importert fra SFM", Role.SYSTEM)
    no_org = Author("Lege uten virksomhet", Role.DOCTOR, "9144811")
    assert reported(a_list(e1=(imported, content())), "e1").recipient.person == HOSPITAL
    assert reported(a_list(e1=(no_org, content())), "e1").recipient.person == HOSPITAL
    # no one with an organisation: the person alone
    alone = reported(a_list(baton=no_org, e1=(no_org, content())), "e1").recipient
    assert (alone.org_id, alone.person) == (None, no_org)
    with pytest.raises(Conflict, match="No responsible prescriber"):
        reported(a_list(baton=SYSTEM, e1=(SYSTEM, content())), "e1")


# -- what a report must say ------------------------------------------------------------------


def test_a_report_says_what_is_wrong_about_something_on_the_list() -> None:
    lst = a_list(e1=(GP, content()), gone=(GP, content(status="stopped")))
    for description in (None, "", "   "):
        with pytest.raises(InvalidInput, match="Say what is wrong") as caught:
            rules.report("c", lst, "e1", None, NURSE, description, NOW)
        assert caught.value.expression == "Task.description"
    with pytest.raises(InvalidInput, match="at most 4000"):
        rules.report("c", lst, "e1", None, NURSE, "x" * 4001, NOW)
    with pytest.raises(Conflict, match="not on the list"):  # left the list after 90 days
        rules.report("c", lst, "gone", None, NURSE, "Feil", NOW)
    with pytest.raises(Conflict, match="not on the list"):
        rules.report("c", lst, "unknown", None, NURSE, "Feil", NOW)
    with pytest.raises(InvalidInput, match="current version is 3"):
        rules.report("c", lst, "e1", 4, NURSE, "Feil", NOW)
    case, _ = rules.report("c", lst, "e1", 2, NURSE, "  Feil dose  ", NOW)
    assert (case.focus_version, case.description) == (2, "Feil dose")


# -- who may do what -------------------------------------------------------------------------

ALLOWED = [
    # who, action, may
    (GP, Action.TAKE, True),
    (GP_COLLEAGUE, Action.TAKE, True),  # the organisation's, not only the person's
    (GP_NURSE, Action.TAKE, False),  # rule 4: a doctor handles it
    (HOSPITAL, Action.TAKE, False),  # another organisation
    (NURSE, Action.TAKE, False),  # the reporter does not handle their own report
    (GP, Action.RESOLVE, True),
    (GP, Action.REJECT, True),
    (HOSPITAL, Action.RESOLVE, False),
    (PATIENT, Action.REJECT, False),
    (NURSE, Action.COMMENT, True),  # the reporter
    (GP_NURSE, Action.COMMENT, True),  # the receiving organisation's health personnel
    (HOSPITAL, Action.COMMENT, False),
    (PATIENT, Action.COMMENT, False),
    (NURSE, Action.WITHDRAW, True),
    (GP, Action.WITHDRAW, False),
    (replace(NURSE, org_id=HOSPITAL_ORG), Action.WITHDRAW, True),  # the person, wherever
]


@pytest.mark.parametrize(("who", "action", "may"), ALLOWED)
def test_who_may_do_what(who: Author, action: Action, may: bool) -> None:
    case = reported()
    why = rules.refusal(case, action, who)
    assert (why is None) == may, why
    if not may:
        assert rules.in_norwegian(why or "")  # a page shows it in Norwegian
        with pytest.raises(Forbidden):
            rules.act(case, action, who, "En kommentar", NOW)


def test_a_patient_who_reported_follows_up_their_own_case() -> None:
    case = reported(by=PATIENT)
    assert rules.allowed(case, PATIENT) == {Action.COMMENT, Action.WITHDRAW}
    other = Author("Annen", Role.PATIENT, pid="09857215521")
    assert rules.allowed(case, other) == frozenset()


def test_what_each_one_is_offered() -> None:
    case = reported()
    assert rules.allowed(case, GP) == {Action.TAKE, Action.COMMENT, Action.RESOLVE, Action.REJECT}
    assert rules.allowed(case, NURSE) == {Action.COMMENT, Action.WITHDRAW}
    assert rules.allowed(case, HOSPITAL) == frozenset()
    taken, _ = rules.act(case, Action.TAKE, GP, None, NOW)
    assert Action.TAKE not in rules.allowed(taken, GP)  # theirs already
    assert Action.TAKE in rules.allowed(taken, GP_COLLEAGUE)  # a colleague may take it over
    closed, _ = rules.act(taken, Action.RESOLVE, GP, None, NOW)
    assert rules.allowed(closed, GP) == rules.allowed(closed, NURSE) == frozenset()


# -- the status a case moves through ---------------------------------------------------------


def test_open_taken_commented_resolved() -> None:
    later = NOW + timedelta(hours=1)
    case = reported()
    taken, step = rules.act(case, Action.TAKE, GP, None, later)
    assert (taken.status, taken.version, taken.handler, taken.updated_at) == (
        Status.IN_PROGRESS,
        2,
        GP,
        later,
    )
    assert (step.version, step.action, step.by, step.comment) == (2, Action.TAKE, GP, None)
    with pytest.raises(Conflict, match="already taken"):
        rules.act(taken, Action.TAKE, GP, None, later)
    commented, step = rules.act(taken, Action.COMMENT, NURSE, "  Gjelder morgendosen ", later)
    assert (commented.status, step.comment) == (Status.IN_PROGRESS, "Gjelder morgendosen")
    over, _ = rules.act(commented, Action.TAKE, GP_COLLEAGUE, None, later)
    assert over.handler == GP_COLLEAGUE
    done, step = rules.act(over, Action.RESOLVE, GP, "Dosen er rettet", later)
    assert (done.status, done.version, step.status) == (Status.RESOLVED, 5, Status.RESOLVED)
    assert done.reported_at == NOW


@pytest.mark.parametrize(
    ("who", "action", "status"),
    [
        (GP, Action.RESOLVE, Status.RESOLVED),
        (GP, Action.REJECT, Status.REJECTED),
        (NURSE, Action.WITHDRAW, Status.WITHDRAWN),
    ],
)
def test_a_closed_case_stays_closed(who: Author, action: Action, status: Status) -> None:
    closed, _ = rules.act(reported(), action, who, "Ferdig", NOW)
    assert closed.status is status
    assert closed.status.closed
    if action is not Action.WITHDRAW:
        assert closed.handler == who  # who closed it handled it
    for again, by in ((Action.TAKE, GP), (Action.COMMENT, NURSE), (Action.RESOLVE, GP)):
        with pytest.raises(Conflict, match="closed"):
            rules.act(closed, again, by, "Mer", NOW)


def test_a_rejection_and_a_comment_say_something() -> None:
    case = reported()
    with pytest.raises(InvalidInput, match="why the case is rejected"):
        rules.act(case, Action.REJECT, GP, " ", NOW)
    with pytest.raises(InvalidInput, match="the comment"):
        rules.act(case, Action.COMMENT, NURSE, None, NOW)
    with pytest.raises(InvalidInput, match="at most 4000"):
        rules.act(case, Action.COMMENT, NURSE, "x" * 4001, NOW)
    resolved, step = rules.act(case, Action.RESOLVE, GP, None, NOW)  # resolving may be silent
    assert (resolved.status, step.comment) == (Status.RESOLVED, None)


def test_acting_on_a_version_one_has_not_seen_is_refused() -> None:
    case = reported()
    with pytest.raises(VersionConflict) as caught:
        rules.act(case, Action.RESOLVE, GP, None, NOW, expected=2)
    assert caught.value.details == {"currentVersion": "1", "yourVersion": "2"}
    assert rules.act(case, Action.RESOLVE, GP, None, NOW, expected=1)[0].version == 2


def test_every_action_announces_itself_as_a_case_event() -> None:
    kinds = {a: a.event for a in Action}
    assert kinds[Action.REPORT] == "case-reported"
    assert kinds[Action.RESOLVE] == "case-resolved"
    assert all(k.startswith(rules.EVENT_PREFIX) for k in kinds.values())
    assert len(set(kinds.values())) == len(Action)


# -- the Task ----------------------------------------------------------------------------------


def test_a_case_is_a_valid_r4_task() -> None:
    case = reported()
    steps = [rules.Step(1, NOW, NURSE, Action.REPORT, Status.OPEN)]
    taken, step = rules.act(case, Action.TAKE, GP, None, NOW)
    steps.append(step)
    closed, step = rules.act(taken, Action.REJECT, GP, "Pasienten bruker det", NOW)
    steps.append(step)
    for shown_case, upto, status in (
        (case, 1, "requested"),
        (taken, 2, "in-progress"),
        (closed, 3, "rejected"),
    ):
        task = fhir_cases.task(shown_case, steps[:upto], "Metformin tab 500 mg")
        assert validate(task, "Task") == task
        assert task["status"] == status
        assert task["intent"] == "order"
        assert task["code"]["text"] == "Avvik i legemiddellisten"
        assert task["focus"] == {
            "reference": "MedicationStatement/e1/_history/3",
            "type": "MedicationStatement",
            "display": "Metformin tab 500 mg",
        }
        assert task["for"] == {"reference": f"Patient/{PATIENT_ID}"}
        assert task["owner"]["identifier"]["value"] == GP_ORG
        assert task["owner"]["display"] == "Bergen legesenter"
        assert "Siri Sykepleier" in task["requester"]["display"]
        recipient = task["extension"][0]
        assert recipient["url"] == fhir_cases.EXT_RECIPIENT
        assert recipient["valueReference"]["identifier"]["value"] == GP.hpr
    assert task["statusReason"] == {"text": "Pasienten bruker det"}
    assert [n["text"] for n in task["note"]] == ["Pasienten bruker det"]
    assert fhir_cases.action_of(task["note"][0]) is Action.REJECT
    assert task["businessStatus"]["text"] == "Avvist"


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"status": "in-progress"}, "Task.status"),
        ({"intent": "plan"}, "Task.intent"),
        ({"focus": {"reference": "MedicationRequest/x"}}, "Task.focus"),
        ({"focus": None}, "Task.focus"),
        ({"for": {"reference": "Group/x"}}, "Task.for"),
        ({"owner": {"display": "Meg selv"}}, "Task.owner"),
        ({"requester": {"display": "Noen andre"}}, "Task.requester"),
        ({"code": {"coding": [{"system": "http://x", "code": "y"}]}}, "Task.code"),
        ({"intent": None}, "Task.intent"),
    ],
)
def test_a_report_request_says_where_it_is_wrong(change: dict[str, Any], where: str) -> None:
    task: dict[str, Any] = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "focus": {"reference": "MedicationStatement/e1"},
        "description": "Feil",
    }
    for key, value in change.items():
        if value is None:
            task.pop(key)
        else:
            task[key] = value
    with pytest.raises(InvalidInput) as caught:
        fhir_cases.report_request(task)
    assert caught.value.expression == where


def test_a_report_request_names_the_version_seen_and_the_patient() -> None:
    found = fhir_cases.report_request(
        {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "code": fhir_cases.CODE,
            "focus": {"reference": "List/l1/_history/4"},
            "for": {"reference": "Patient/p1"},
            "description": "Listen mangler insulin",
        }
    )
    assert found == fhir_cases.Reported("List", "l1", 4, "p1", "Listen mangler insulin")
    assert found.entry_id is None
    assert fhir_cases.statuses("requested, in-progress") == rules.OPEN
    with pytest.raises(InvalidInput, match="Unknown Task status"):
        fhir_cases.statuses("open")
