"""The rules of changing a PLL (DESIGN §3), driven directly on the domain objects.

Every test builds a ``MedicationList`` with ``start_list`` and ``ListChange`` the way the
services do, applies one operation, and checks one rule. Content dicts are shaped like the
normalised FHIR JSON the FHIR layer hands to the domain.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from pll.domain.changes import RECALL_ON_DISCONTINUE, ListChange, start_list
from pll.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionRequired,
    VersionConflict,
)
from pll.domain.model import Author, Entry, ListVersion, MedicationList, Role, Touched
from tests.unit.content import ATC, NOW, ONE_MORNING, PATIENT_ID, TWO_MORNING_EVENING

LIST_ID = "list-1"

LATER = NOW + timedelta(hours=3)
NEXT_DAY = NOW + timedelta(days=1)

GP = Author(
    "Kari Fastlege", Role.DOCTOR, hpr="565501872", org_id="974600951", org_name="Legesenteret Nord"
)
HOSPITAL_DOCTOR = Author(
    "Ola Overlege", Role.DOCTOR, hpr="565505933", org_id="983974899", org_name="Sykehuset Vest"
)
NURSE = Author("Nina Sykepleier", Role.NURSE, hpr="565509912")
PHARMACIST = Author("Per Farmasøyt", Role.PHARMACIST, hpr="565508011")
PATIENT = Author("Tore Testesen", Role.PATIENT, pid="13116900216")
NOT_DOCTORS = [NURSE, PHARMACIST, PATIENT]


# -- builders ------------------------------------------------------------------------------


def statement(
    name: str = "Paracet",
    atc: str = "N02BE01",
    *,
    based_on: tuple[str, ...] = (),
    status: str = "active",
    dosage: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A MedicationStatement (an entry) as the FHIR layer passes it to the domain."""
    content: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "status": status,
        "medicationCodeableConcept": {"coding": [{"system": ATC, "code": atc}], "text": name},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "dosage": copy.deepcopy(dosage if dosage is not None else ONE_MORNING),
    }
    if based_on:
        content["basedOn"] = [{"reference": f"MedicationRequest/{rx}"} for rx in based_on]
    return content


def prescription(
    name: str = "Paracet", atc: str = "N02BE01", *, prior: str | None = None
) -> dict[str, Any]:
    """A MedicationRequest (an e-prescription) as the FHIR layer passes it to the domain."""
    content: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": ATC, "code": atc}], "text": name},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "dosageInstruction": copy.deepcopy(ONE_MORNING),
    }
    if prior:
        content["priorPrescription"] = {"reference": f"MedicationRequest/{prior}"}
    return content


def edited(content: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of ``content`` with some elements replaced (what a client PUTs back)."""
    out = copy.deepcopy(content)
    out.update(copy.deepcopy(changes))
    return out


def with_status(content: dict[str, Any], status: str, reason: str | None = None) -> dict[str, Any]:
    """An entry with a new status (MedicationStatement.statusReason is a list)."""
    out = edited(content, status=status)
    if reason is not None:
        out["statusReason"] = [{"text": reason}]
    return out


def recalled(content: dict[str, Any], reason: str) -> dict[str, Any]:
    """A prescription recalled with a reason (MedicationRequest.statusReason is one concept)."""
    return edited(content, status="stopped", statusReason={"text": reason})


def list_with(
    entries: dict[str, dict[str, Any]] | None = None,
    prescriptions: dict[str, dict[str, Any]] | None = None,
) -> MedicationList:
    """A PLL at version 1 made by the GP at NOW with these prescriptions and entries."""
    lst = start_list(LIST_ID, PATIENT_ID, GP, NOW, exists=False)
    change = ListChange(lst, GP, NOW)
    for rx_id, content in (prescriptions or {}).items():
        change.add_prescription(rx_id, content)
    for entry_id, content in (entries or {}).items():
        change.add_entry(entry_id, content)
    assert change.finish() is not None
    return lst


def one_change(
    lst: MedicationList,
    apply: Callable[[ListChange], object],
    *,
    author: Author = HOSPITAL_DOCTOR,
    now: datetime = LATER,
    reason: str | None = None,
) -> ListVersion | None:
    """Apply one accepted change to ``lst`` and finish it."""
    change = ListChange(lst, author, now, reason)
    apply(change)
    return change.finish()


def refused(
    lst: MedicationList,
    error: type[DomainError],
    apply: Callable[[ListChange], object],
    *,
    author: Author = HOSPITAL_DOCTOR,
) -> DomainError:
    """Apply an operation that must be refused; check that it left the list untouched."""
    before = copy.deepcopy(lst)
    change = ListChange(lst, author, LATER)
    with pytest.raises(error) as caught:
        apply(change)
    assert type(caught.value) is error
    assert lst == before, "a refused operation must change nothing"
    return caught.value


def activities(record: ListVersion | None) -> list[str]:
    assert record is not None
    return record.activity.split("+")


# -- rule 4: only doctors change the list --------------------------------------------------


@pytest.mark.parametrize("author", NOT_DOCTORS, ids=lambda a: a.role.value)
def test_only_a_doctor_can_start_a_list(author: Author) -> None:
    with pytest.raises(Forbidden):
        start_list(LIST_ID, PATIENT_ID, author, NOW, exists=False)


@pytest.mark.parametrize("author", NOT_DOCTORS, ids=lambda a: a.role.value)
def test_only_a_doctor_can_change_a_list(author: Author) -> None:
    lst = list_with({"e1": statement()})
    before = copy.deepcopy(lst)

    with pytest.raises(Forbidden):
        ListChange(lst, author, LATER)

    assert lst == before


def test_a_doctor_can_change_a_list_another_doctor_made() -> None:
    lst = list_with({"e1": statement()})

    record = one_change(lst, lambda c: c.add_entry("e2", statement("Ibux", "M01AE01")))

    assert record is not None
    assert set(lst.entries) == {"e1", "e2"}


# -- rule 1: one list, versioned -----------------------------------------------------------


def test_a_patient_who_already_has_a_list_cannot_get_a_second() -> None:
    with pytest.raises(Conflict) as caught:
        start_list("list-2", PATIENT_ID, GP, NOW, exists=True)

    assert caught.value.expression == "List.subject"


def test_a_new_list_is_version_0_until_its_first_change_is_finished() -> None:
    lst = start_list(LIST_ID, PATIENT_ID, GP, NOW, exists=False)

    assert lst.version == 0
    assert lst.patient_id == PATIENT_ID
    assert lst.entries == {}
    assert lst.baton == GP


def test_finishing_the_first_change_makes_version_1_recorded_as_create_list() -> None:
    lst = start_list(LIST_ID, PATIENT_ID, GP, NOW, exists=False)

    record = ListChange(lst, GP, NOW).finish()

    assert record is not None
    assert record.version == lst.version == 1
    assert "create-list" in activities(record)
    assert record.touched == (Touched("List", LIST_ID, 1, "create"),)


def test_creating_a_list_with_prescriptions_and_entries_is_one_version() -> None:
    lst = start_list(LIST_ID, PATIENT_ID, GP, NOW, exists=False)
    change = ListChange(lst, GP, NOW)
    change.add_prescription("rx1", prescription())
    change.add_entry("e1", statement(based_on=("rx1",)))
    change.add_entry("e2", statement("Ibux", "M01AE01"))

    record = change.finish()

    assert record is not None
    assert record.version == lst.version == 1
    assert record.touched == (
        Touched("List", LIST_ID, 1, "create"),
        Touched("MedicationRequest", "rx1", 1, "create"),
        Touched("MedicationStatement", "e1", 1, "create"),
        Touched("MedicationStatement", "e2", 1, "create"),
    )
    assert activities(record) == ["create-list", "prescribe", "add-entry"]


def test_each_accepted_change_adds_exactly_one_list_version() -> None:
    lst = list_with({"e1": statement(), "e2": statement("Ibux", "M01AE01")})

    record = one_change(
        lst,
        lambda c: (
            c.update_entry("e1", edited(statement(), dosage=TWO_MORNING_EVENING), 1),
            c.update_entry("e2", with_status(statement("Ibux", "M01AE01"), "on-hold"), 1),
        ),
    )

    assert record is not None
    assert record.version == lst.version == 2


# -- rule 2: the relay baton ---------------------------------------------------------------


def test_updating_an_entry_without_if_match_is_refused_as_precondition_required() -> None:
    lst = list_with({"e1": statement()})
    new = edited(statement(), dosage=TWO_MORNING_EVENING)

    error = refused(lst, PreconditionRequired, lambda c: c.update_entry("e1", new, None))

    assert 'W/"1"' in error.message


def test_updating_a_stale_entry_version_is_a_conflict_naming_who_changed_it() -> None:
    lst = list_with({"e1": statement()})
    one_change(lst, lambda c: c.update_entry("e1", with_status(statement(), "on-hold"), 1))
    mine = edited(statement(), dosage=TWO_MORNING_EVENING)

    error = refused(lst, VersionConflict, lambda c: c.update_entry("e1", mine, 1), author=GP)

    assert error.details["resource"] == "MedicationStatement/e1"
    assert error.details["yourVersion"] == "1"
    assert error.details["currentVersion"] == "2"
    assert "Ola Overlege" in error.details["changedBy"]
    assert "HPR 565505933" in error.details["changedBy"]
    assert error.details["changedAt"] == LATER.isoformat()


def test_a_refused_stale_update_leaves_the_entry_as_the_other_doctor_left_it() -> None:
    lst = list_with({"e1": statement()})
    theirs = with_status(statement(), "on-hold")
    one_change(lst, lambda c: c.update_entry("e1", theirs, 1))
    change = ListChange(lst, GP, NEXT_DAY)

    with pytest.raises(VersionConflict):
        change.update_entry("e1", edited(statement(), dosage=TWO_MORNING_EVENING), 1)

    entry = lst.entries["e1"]
    assert entry.content == theirs
    assert (entry.version, entry.last_changed, entry.changed_by) == (2, LATER, HOSPITAL_DOCTOR)
    assert change.finish() is None
    assert lst.version == 2
    assert lst.baton == HOSPITAL_DOCTOR


def test_changes_to_different_entries_from_the_same_list_version_both_succeed() -> None:
    lst = list_with({"e1": statement(), "e2": statement("Ibux", "M01AE01")})
    # Both doctors read list version 1, where each entry is at version 1.
    hospital_edit = edited(statement(), dosage=TWO_MORNING_EVENING)
    gp_edit = with_status(statement("Ibux", "M01AE01"), "on-hold")

    first = one_change(lst, lambda c: c.update_entry("e1", hospital_edit, 1))
    second = one_change(lst, lambda c: c.update_entry("e2", gp_edit, 1), author=GP, now=NEXT_DAY)

    assert first is not None
    assert second is not None
    assert (first.version, second.version) == (2, 3)
    assert lst.entries["e1"].content == hospital_edit
    assert lst.entries["e2"].content == gp_edit
    assert lst.baton == GP


def test_updating_an_entry_that_is_not_on_the_list_is_not_found() -> None:
    lst = list_with({"e1": statement()})

    error = refused(lst, NotFound, lambda c: c.update_entry("nope", statement(), 1))

    assert error.expression == "MedicationStatement.id"


# -- rule 3: entries are stable ------------------------------------------------------------


def test_an_update_that_changes_nothing_keeps_version_and_last_changed() -> None:
    lst = list_with({"e1": statement()})
    original = lst.entries["e1"]
    change = ListChange(lst, HOSPITAL_DOCTOR, LATER)

    result = change.update_entry("e1", statement(), 1)

    assert result is original
    assert (result.version, result.last_changed, result.changed_by) == (1, NOW, GP)
    assert change.finish() is None
    assert (lst.version, lst.updated, lst.baton) == (1, NOW, GP)


def test_a_real_change_moves_version_and_last_changed_but_never_the_id() -> None:
    lst = list_with({"e1": statement()})
    new = edited(statement(), dosage=TWO_MORNING_EVENING)

    record = one_change(lst, lambda c: c.update_entry("e1", new, 1))

    entry = lst.entries["e1"]
    assert list(lst.entries) == ["e1"]
    assert entry.id == "e1"
    assert (entry.version, entry.last_changed, entry.changed_by) == (2, LATER, HOSPITAL_DOCTOR)
    assert entry.content == new
    assert record is not None
    assert Touched("MedicationStatement", "e1", 2, "update") in record.touched
    assert activities(record) == ["update-entry"]


# -- entry status transitions --------------------------------------------------------------


def test_pausing_an_entry_puts_it_on_hold() -> None:
    lst = list_with({"e1": statement()})

    record = one_change(lst, lambda c: c.update_entry("e1", with_status(statement(), "on-hold"), 1))

    assert lst.entries["e1"].status == "on-hold"
    assert lst.entries["e1"].ended_at is None
    assert activities(record) == ["pause-entry"]


def test_resuming_an_entry_makes_it_active_again() -> None:
    lst = list_with({"e1": statement(status="on-hold")})

    record = one_change(lst, lambda c: c.update_entry("e1", statement(), 1))

    assert lst.entries["e1"].status == "active"
    assert activities(record) == ["resume-entry"]


def test_discontinuing_an_entry_needs_a_status_reason() -> None:
    lst = list_with({"e1": statement()})

    error = refused(
        lst, InvalidInput, lambda c: c.update_entry("e1", with_status(statement(), "stopped"), 1)
    )

    assert error.expression == "MedicationStatement.statusReason"


def test_discontinuing_an_entry_stops_it_and_records_when_and_why() -> None:
    lst = list_with({"e1": statement()})
    stop = with_status(statement(), "stopped", "Bivirkning: magesmerter")

    record = one_change(lst, lambda c: c.update_entry("e1", stop, 1))

    entry = lst.entries["e1"]
    assert entry.status == "stopped"
    assert entry.ended_at == LATER
    assert record is not None
    assert record.reason == "Bivirkning: magesmerter"
    assert activities(record) == ["discontinue-entry"]


def test_a_status_reason_given_as_a_coding_counts_as_a_reason() -> None:
    lst = list_with({"e1": statement()})
    stop = edited(
        statement(),
        status="stopped",
        statusReason=[
            {"coding": [{"system": "urn:example", "code": "B", "display": "Bivirkning"}]}
        ],
    )

    record = one_change(lst, lambda c: c.update_entry("e1", stop, 1))

    assert record is not None
    assert record.reason == "Bivirkning"


def test_registering_an_entry_in_error_needs_a_reason() -> None:
    lst = list_with({"e1": statement()})
    removal = with_status(statement(), "entered-in-error")

    error = refused(lst, InvalidInput, lambda c: c.update_entry("e1", removal, 1))

    assert error.expression == "MedicationStatement.statusReason"


def test_an_entry_registered_in_error_is_removed_with_its_reason() -> None:
    lst = list_with({"e1": statement()})
    removal = with_status(statement(), "entered-in-error", "Feil pasient")

    record = one_change(lst, lambda c: c.update_entry("e1", removal, 1))

    assert lst.entries["e1"].status == "entered-in-error"
    assert not lst.entries["e1"].visible_at(LATER)
    assert record is not None
    assert record.reason == "Feil pasient"
    assert activities(record) == ["remove-entry"]


@pytest.mark.parametrize("status", ["active", "on-hold"])
def test_a_discontinued_entry_cannot_go_back_into_use(status: str) -> None:
    lst = list_with({"e1": statement()})
    one_change(
        lst, lambda c: c.update_entry("e1", with_status(statement(), "stopped", "Ferdig"), 1)
    )

    error = refused(
        lst,
        Conflict,
        lambda c: c.update_entry("e1", with_status(statement(), status), 2),
        author=GP,
    )

    assert error.expression == "MedicationStatement.status"


def test_a_discontinued_entry_can_still_be_registered_in_error() -> None:
    lst = list_with({"e1": statement()})
    one_change(
        lst, lambda c: c.update_entry("e1", with_status(statement(), "stopped", "Ferdig"), 1)
    )
    removal = with_status(statement(), "entered-in-error", "Registrert på feil pasient")

    one_change(lst, lambda c: c.update_entry("e1", removal, 2), author=GP, now=NEXT_DAY)

    assert lst.entries["e1"].status == "entered-in-error"
    assert lst.entries["e1"].version == 3


@pytest.mark.parametrize(
    "change_to",
    [
        with_status(statement(), "active"),
        with_status(statement(dosage=TWO_MORNING_EVENING), "entered-in-error", "Feil pasient"),
    ],
    ids=["back-to-active", "edit-dosage"],
)
def test_an_entry_registered_in_error_cannot_be_changed(change_to: dict[str, Any]) -> None:
    lst = list_with({"e1": statement()})
    removal = with_status(statement(), "entered-in-error", "Feil pasient")
    one_change(lst, lambda c: c.update_entry("e1", removal, 1))

    error = refused(lst, Conflict, lambda c: c.update_entry("e1", change_to, 2), author=GP)

    assert error.expression == "MedicationStatement.status"


@pytest.mark.parametrize("status", ["stopped", "completed", "entered-in-error", None])
def test_a_new_entry_must_be_active_or_on_hold(status: str | None) -> None:
    lst = list_with()
    content = statement()
    content["status"] = status

    error = refused(lst, InvalidInput, lambda c: c.add_entry("e1", content))

    assert error.expression == "MedicationStatement.status"


def test_a_new_entry_may_start_on_hold() -> None:
    lst = list_with()

    one_change(lst, lambda c: c.add_entry("e1", statement(status="on-hold")))

    assert lst.entries["e1"].status == "on-hold"
    assert lst.entries["e1"].version == 1


def test_an_unknown_entry_status_is_invalid_input() -> None:
    lst = list_with({"e1": statement()})

    error = refused(
        lst, InvalidInput, lambda c: c.update_entry("e1", with_status(statement(), "paused"), 1)
    )

    assert error.expression == "MedicationStatement.status"


# -- discontinuation recalls prescriptions -------------------------------------------------


def test_discontinuing_an_entry_recalls_its_active_prescriptions() -> None:
    lst = list_with({"e1": statement(based_on=("rx1",))}, {"rx1": prescription()})
    stop = with_status(statement(based_on=("rx1",)), "stopped", "Bivirkning: magesmerter")

    record = one_change(lst, lambda c: c.update_entry("e1", stop, 1))

    rx = lst.prescriptions["rx1"]
    assert rx.status == "stopped"
    assert rx.content["statusReason"] == {"text": RECALL_ON_DISCONTINUE}
    assert (rx.version, rx.last_changed, rx.changed_by) == (2, LATER, HOSPITAL_DOCTOR)
    assert record is not None
    assert Touched("MedicationRequest", "rx1", 2, "update") in record.touched
    assert activities(record) == ["discontinue-entry", "recall"]


def test_pausing_an_entry_does_not_recall_its_prescriptions() -> None:
    lst = list_with({"e1": statement(based_on=("rx1",))}, {"rx1": prescription()})

    record = one_change(
        lst, lambda c: c.update_entry("e1", with_status(statement(based_on=("rx1",)), "on-hold"), 1)
    )

    assert lst.prescriptions["rx1"].status == "active"
    assert record is not None
    assert [t.resource_type for t in record.touched] == ["List", "MedicationStatement"]


# -- links between entries and prescriptions -----------------------------------------------


def test_a_prescription_is_never_on_two_active_entries() -> None:
    lst = list_with({"e1": statement(based_on=("rx1",))}, {"rx1": prescription()})

    error = refused(
        lst, Conflict, lambda c: c.add_entry("e2", statement("Paracet 1 g", based_on=("rx1",)))
    )

    assert error.expression == "MedicationStatement.basedOn[0]"
    assert "MedicationStatement/e1" in error.message


def test_an_update_cannot_link_a_prescription_already_on_another_active_entry() -> None:
    lst = list_with(
        {"e1": statement(based_on=("rx1",)), "e2": statement("Ibux", "M01AE01")},
        {"rx1": prescription()},
    )
    relink = statement("Ibux", "M01AE01", based_on=("rx1",))

    error = refused(lst, Conflict, lambda c: c.update_entry("e2", relink, 1))

    assert error.expression == "MedicationStatement.basedOn[0]"


def test_linking_a_prescription_the_patient_does_not_have_is_invalid_input() -> None:
    lst = list_with({}, {"rx1": prescription()})

    error = refused(
        lst, InvalidInput, lambda c: c.add_entry("e1", statement(based_on=("rx1", "rx-unknown")))
    )

    assert error.expression == "MedicationStatement.basedOn[1]"


def test_linking_a_recalled_prescription_is_a_conflict() -> None:
    lst = list_with({}, {"rx1": prescription()})
    recall = recalled(prescription(), "Feil styrke")
    one_change(lst, lambda c: c.update_prescription("rx1", recall, 1))

    error = refused(lst, Conflict, lambda c: c.add_entry("e1", statement(based_on=("rx1",))))

    assert error.expression == "MedicationStatement.basedOn[0]"
    assert "stopped" in error.message


def test_linking_a_renewed_prescription_is_a_conflict_naming_the_head_of_chain() -> None:
    lst = list_with({}, {"rx1": prescription()})
    one_change(lst, lambda c: c.add_prescription("rx2", prescription(prior="rx1")))

    error = refused(lst, Conflict, lambda c: c.add_entry("e1", statement(based_on=("rx1",))))

    assert error.expression == "MedicationStatement.basedOn[0]"
    assert "MedicationRequest/rx2" in error.message


# -- prescriptions: renewal and recall -----------------------------------------------------


def test_a_new_prescription_is_an_active_order() -> None:
    lst = list_with()

    record = one_change(lst, lambda c: c.add_prescription("rx1", prescription()))

    assert lst.prescriptions["rx1"].version == 1
    assert record is not None
    assert Touched("MedicationRequest", "rx1", 1, "create") in record.touched
    assert activities(record) == ["prescribe"]


@pytest.mark.parametrize(
    ("element", "value"),
    [("status", "draft"), ("intent", "proposal")],
)
def test_a_new_prescription_that_is_not_an_active_order_is_refused(
    element: str, value: str
) -> None:
    lst = list_with()

    error = refused(
        lst,
        InvalidInput,
        lambda c: c.add_prescription("rx1", edited(prescription(), **{element: value})),
    )

    assert error.expression == f"MedicationRequest.{element}"


def test_renewal_completes_the_prior_and_moves_the_entry_link_to_the_new_head() -> None:
    lst = list_with({"e1": statement(based_on=("rx1",))}, {"rx1": prescription()})

    record = one_change(lst, lambda c: c.add_prescription("rx2", prescription(prior="rx1")))

    prior, entry = lst.prescriptions["rx1"], lst.entries["e1"]
    assert prior.status == "completed"
    assert prior.version == 2
    assert lst.prescriptions["rx2"].status == "active"
    assert entry.prescription_ids == ("rx2",)
    assert (entry.version, entry.last_changed) == (2, LATER)
    assert record is not None
    assert set(record.touched) == {
        Touched("List", LIST_ID, 2, "update"),
        Touched("MedicationRequest", "rx1", 2, "update"),
        Touched("MedicationStatement", "e1", 2, "update"),
        Touched("MedicationRequest", "rx2", 1, "create"),
    }
    assert activities(record) == ["renew"]


def test_renewing_two_prescriptions_of_one_entry_moves_its_version_once() -> None:
    lst = list_with(
        {"e1": statement(based_on=("rx1", "rx2"))}, {"rx1": prescription(), "rx2": prescription()}
    )

    record = one_change(
        lst,
        lambda c: (
            c.add_prescription("rx3", prescription(prior="rx1")),
            c.add_prescription("rx4", prescription(prior="rx2")),
        ),
    )

    assert lst.entries["e1"].prescription_ids == ("rx3", "rx4")
    assert lst.entries["e1"].version == 2
    assert record is not None
    entry_touches = [t for t in record.touched if t.resource_type == "MedicationStatement"]
    assert entry_touches == [Touched("MedicationStatement", "e1", 2, "update")]


def test_renewal_leaves_an_ended_entry_pointing_at_the_prior() -> None:
    lst = list_with({"e1": statement(based_on=("rx1",))}, {"rx1": prescription()})
    # A course that is completed keeps its link; only entries in use follow the chain.
    done = with_status(statement(based_on=("rx1",)), "completed", "Kuren er fullført")
    one_change(lst, lambda c: c.update_entry("e1", done, 1))

    one_change(lst, lambda c: c.add_prescription("rx2", prescription(prior="rx1")), author=GP)

    assert lst.prescriptions["rx1"].status == "completed"
    assert lst.entries["e1"].prescription_ids == ("rx1",)
    assert lst.entries["e1"].version == 2


def test_renewing_a_prescription_that_was_already_renewed_is_a_conflict() -> None:
    lst = list_with({}, {"rx1": prescription()})
    one_change(lst, lambda c: c.add_prescription("rx2", prescription(prior="rx1")))

    error = refused(
        lst, Conflict, lambda c: c.add_prescription("rx3", prescription(prior="rx1")), author=GP
    )

    assert error.expression == "MedicationRequest.priorPrescription"
    assert "MedicationRequest/rx2" in error.message


def test_renewing_a_recalled_prescription_is_a_conflict() -> None:
    lst = list_with({}, {"rx1": prescription()})
    one_change(
        lst,
        lambda c: c.update_prescription("rx1", recalled(prescription(), "Feil"), 1),
    )

    error = refused(
        lst, Conflict, lambda c: c.add_prescription("rx2", prescription(prior="rx1")), author=GP
    )

    assert error.expression == "MedicationRequest.priorPrescription"


def test_renewing_a_prescription_the_patient_does_not_have_is_invalid_input() -> None:
    lst = list_with()

    error = refused(
        lst, InvalidInput, lambda c: c.add_prescription("rx2", prescription(prior="rx1"))
    )

    assert error.expression == "MedicationRequest.priorPrescription"


def test_recalling_a_prescription_stops_it_with_its_reason() -> None:
    lst = list_with({}, {"rx1": prescription()})
    # as issued: with its authoredOn and validity, which the client's copy may leave out
    issued = lst.prescriptions["rx1"].content
    recall = recalled(prescription(), "Feil styrke forskrevet")

    record = one_change(lst, lambda c: c.update_prescription("rx1", recall, 1))

    rx = lst.prescriptions["rx1"]
    assert (rx.status, rx.version) == ("stopped", 2)
    assert rx.content == recalled(issued, "Feil styrke forskrevet")
    assert record is not None
    assert record.reason == "Feil styrke forskrevet"
    assert activities(record) == ["recall"]


def test_recalling_without_a_reason_is_invalid_input() -> None:
    lst = list_with({}, {"rx1": prescription()})

    error = refused(
        lst,
        InvalidInput,
        lambda c: c.update_prescription("rx1", with_status(prescription(), "stopped"), 1),
    )

    assert error.expression == "MedicationRequest.statusReason"


@pytest.mark.parametrize(
    "change_to",
    [
        edited(prescription(), dosageInstruction=TWO_MORNING_EVENING),
        edited(prescription(), status="on-hold"),
        edited(
            prescription(),
            dosageInstruction=TWO_MORNING_EVENING,
            status="stopped",
            statusReason={"text": "Ny dose"},
        ),
    ],
    ids=["dose", "status-on-hold", "recall-with-new-dose"],
)
def test_a_prescription_can_only_be_recalled_never_edited(change_to: dict[str, Any]) -> None:
    lst = list_with({}, {"rx1": prescription()})

    error = refused(lst, InvalidInput, lambda c: c.update_prescription("rx1", change_to, 1))

    assert error.expression == "MedicationRequest"


def test_a_completed_prescription_cannot_be_recalled() -> None:
    lst = list_with({}, {"rx1": prescription()})
    one_change(lst, lambda c: c.add_prescription("rx2", prescription(prior="rx1")))
    recall = recalled(lst.prescriptions["rx1"].content, "Feil")

    error = refused(lst, Conflict, lambda c: c.update_prescription("rx1", recall, 2), author=GP)

    assert error.expression == "MedicationRequest.status"


def test_a_prescription_update_names_the_version_it_is_based_on() -> None:
    lst = list_with({}, {"rx1": prescription()})
    recall = recalled(prescription(), "Feil")

    refused(lst, PreconditionRequired, lambda c: c.update_prescription("rx1", recall, None))
    error = refused(lst, VersionConflict, lambda c: c.update_prescription("rx1", recall, 7))

    assert error.details["resource"] == "MedicationRequest/rx1"
    assert error.details["currentVersion"] == "1"


def test_an_identical_prescription_write_changes_nothing() -> None:
    lst = list_with({}, {"rx1": prescription()})
    original = lst.prescriptions["rx1"]
    change = ListChange(lst, HOSPITAL_DOCTOR, LATER)

    assert change.update_prescription("rx1", prescription(), 1) is original
    assert change.finish() is None


# -- one change writes each resource once --------------------------------------------------


def test_an_entry_updated_then_relinked_by_a_renewal_gets_one_new_version() -> None:
    lst = list_with({"e1": statement(based_on=("rx1",))}, {"rx1": prescription()})
    new_dose = statement(based_on=("rx1",), dosage=TWO_MORNING_EVENING)

    record = one_change(
        lst,
        lambda c: (
            c.update_entry("e1", new_dose, 1),
            c.add_prescription("rx2", prescription(prior="rx1")),
        ),
    )

    entry = lst.entries["e1"]
    assert entry.version == 2
    assert entry.prescription_ids == ("rx2",)
    assert entry.content["dosage"] == TWO_MORNING_EVENING
    assert record is not None
    entry_touches = [t for t in record.touched if t.resource_type == "MedicationStatement"]
    assert entry_touches == [Touched("MedicationStatement", "e1", 2, "update")]


def test_a_renewal_and_an_update_of_its_entry_in_one_change_give_the_entry_one_version() -> None:
    # A transaction Bundle: POST the renewal, PUT the entry with the version the doctor read
    # (If-Match: W/"1") and a new dose. The transaction applies POSTs before PUTs, so the
    # renewal has already moved the entry's link within this very change. That is not
    # someone else's change (rule 2), so the update must not be refused as stale.
    lst = list_with({"e1": statement(based_on=("rx1",))}, {"rx1": prescription()})
    new_dose = statement(based_on=("rx2",), dosage=TWO_MORNING_EVENING)

    record = one_change(
        lst,
        lambda c: (
            c.add_prescription("rx2", prescription(prior="rx1")),
            c.update_entry("e1", new_dose, 1),
        ),
        author=GP,
    )

    entry = lst.entries["e1"]
    assert (entry.version, entry.content) == (2, new_dose)
    assert record is not None
    entry_touches = [t for t in record.touched if t.resource_type == "MedicationStatement"]
    assert entry_touches == [Touched("MedicationStatement", "e1", 2, "update")]


def test_an_entry_created_and_updated_in_one_change_is_created_at_version_1() -> None:
    lst = list_with()
    change = ListChange(lst, GP, LATER)
    change.add_entry("e1", statement())
    change.update_entry("e1", edited(statement(), dosage=TWO_MORNING_EVENING), 1)

    record = change.finish()

    assert lst.entries["e1"].version == 1
    assert record is not None
    assert record.touched[1:] == (Touched("MedicationStatement", "e1", 1, "create"),)


# -- the list as a whole: confirm, pause, resume -------------------------------------------


def test_confirming_needs_the_list_version_the_doctor_saw() -> None:
    lst = list_with({"e1": statement()})

    refused(lst, PreconditionRequired, lambda c: c.confirm(None))
    error = refused(lst, VersionConflict, lambda c: c.confirm(0))

    assert error.details["resource"] == f"List/{LIST_ID}"
    assert error.details["currentVersion"] == "1"
    assert "Kari Fastlege" in error.details["changedBy"]


def test_confirming_records_who_confirmed_which_new_version() -> None:
    lst = list_with({"e1": statement()})

    record = one_change(lst, lambda c: c.confirm(1))

    assert record is not None
    assert lst.confirmation is not None
    assert lst.confirmation.by == HOSPITAL_DOCTOR
    assert lst.confirmation.at == LATER
    assert lst.confirmation.version == record.version == lst.version == 2
    assert activities(record) == ["confirm"]


def test_pausing_the_list_needs_a_reason() -> None:
    lst = list_with({"e1": statement()})

    error = refused(lst, InvalidInput, lambda c: c.pause(""))

    assert error.expression == "reason"


def test_pausing_the_list_records_who_when_and_why() -> None:
    lst = list_with({"e1": statement()})

    record = one_change(lst, lambda c: c.pause("Innlagt på sykehus"))

    assert lst.pause is not None
    assert (lst.pause.by, lst.pause.at, lst.pause.reason) == (
        HOSPITAL_DOCTOR,
        LATER,
        "Innlagt på sykehus",
    )
    assert record is not None
    assert record.reason == "Innlagt på sykehus"
    assert activities(record) == ["pause-list"]


def test_pausing_a_paused_list_is_a_conflict() -> None:
    lst = list_with({"e1": statement()})
    one_change(lst, lambda c: c.pause("Innlagt på sykehus"))

    refused(lst, Conflict, lambda c: c.pause("Innlagt igjen"), author=GP)


def test_resuming_a_list_that_is_not_paused_is_a_conflict() -> None:
    lst = list_with({"e1": statement()})

    refused(lst, Conflict, lambda c: c.resume(1))


def test_resuming_needs_the_current_list_version() -> None:
    lst = list_with({"e1": statement()})
    one_change(lst, lambda c: c.pause("Innlagt på sykehus"))

    refused(lst, PreconditionRequired, lambda c: c.resume(None), author=GP)
    refused(lst, VersionConflict, lambda c: c.resume(1), author=GP)

    assert lst.pause is not None


def test_resuming_unpauses_and_confirms_the_list() -> None:
    lst = list_with({"e1": statement()})
    one_change(lst, lambda c: c.pause("Innlagt på sykehus"))

    record = one_change(lst, lambda c: c.resume(2), author=GP, now=NEXT_DAY)

    assert record is not None
    assert lst.pause is None
    assert lst.confirmation is not None
    assert (lst.confirmation.by, lst.confirmation.at) == (GP, NEXT_DAY)
    assert lst.confirmation.version == record.version == 3
    assert activities(record) == ["resume-list"]


# -- finishing a change --------------------------------------------------------------------


def test_finishing_hands_the_baton_to_the_author_and_adds_one_version() -> None:
    lst = list_with({"e1": statement()})

    record = one_change(lst, lambda c: c.update_entry("e1", with_status(statement(), "on-hold"), 1))

    assert record is not None
    assert (record.version, record.recorded, record.author) == (2, LATER, HOSPITAL_DOCTOR)
    assert (lst.version, lst.updated, lst.baton) == (2, LATER, HOSPITAL_DOCTOR)
    assert lst.created == NOW


def test_the_touched_resources_begin_with_the_list() -> None:
    lst = list_with({"e1": statement()})

    record = one_change(lst, lambda c: c.update_entry("e1", with_status(statement(), "on-hold"), 1))

    assert record is not None
    assert record.touched == (
        Touched("List", LIST_ID, 2, "update"),
        Touched("MedicationStatement", "e1", 2, "update"),
    )


def test_the_reason_of_a_change_is_the_one_given_explicitly() -> None:
    lst = list_with({"e1": statement()})
    stop = with_status(statement(), "stopped", "Bivirkning")

    record = one_change(lst, lambda c: c.update_entry("e1", stop, 1), reason="Samstemming")

    assert record is not None
    assert record.reason == "Samstemming"


def test_without_an_explicit_reason_the_status_reasons_are_the_reason() -> None:
    lst = list_with(
        {
            "e1": statement(),
            "e2": statement("Ibux", "M01AE01"),
            "e3": statement("Imovane", "N05CF01"),
        }
    )

    record = one_change(
        lst,
        lambda c: (
            c.update_entry("e1", with_status(statement(), "stopped", "Bivirkning"), 1),
            c.update_entry(
                "e2", with_status(statement("Ibux", "M01AE01"), "stopped", "Interaksjon"), 1
            ),
            c.update_entry(
                "e3", with_status(statement("Imovane", "N05CF01"), "stopped", "Bivirkning"), 1
            ),
        ),
    )

    assert record is not None
    assert record.reason == "Bivirkning; Interaksjon"


def test_a_change_without_reasons_has_no_reason() -> None:
    lst = list_with({"e1": statement()})

    record = one_change(lst, lambda c: c.update_entry("e1", with_status(statement(), "on-hold"), 1))

    assert record is not None
    assert record.reason is None


# -- rule 3: discontinued entries stay visible for 90 days ---------------------------------


def discontinued_at(when: datetime, entry_id: str = "e1") -> Entry:
    lst = list_with({entry_id: statement()})
    stop = with_status(statement(), "stopped", "Ferdig")
    one_change(lst, lambda c: c.update_entry(entry_id, stop, 1), now=when)
    return lst.entries[entry_id]


def test_a_discontinued_entry_is_visible_for_89_days_and_gone_at_90() -> None:
    entry = discontinued_at(LATER)

    assert entry.visible_at(LATER)
    assert entry.visible_at(LATER + timedelta(days=89))
    assert entry.visible_at(LATER + timedelta(days=90) - timedelta(microseconds=1))
    assert not entry.visible_at(LATER + timedelta(days=90))
    assert entry.hidden_after() == LATER + timedelta(days=90)


def test_an_entry_in_use_is_always_visible() -> None:
    lst = list_with({"e1": statement(), "e2": statement("Ibux", "M01AE01", status="on-hold")})

    years_later = NOW + timedelta(days=3650)
    assert [e.id for e in lst.visible_entries(years_later)] == ["e1", "e2"]
    assert lst.next_hide(NOW) is None


def test_an_entry_registered_in_error_is_never_visible() -> None:
    lst = list_with({"e1": statement()})
    removal = with_status(statement(), "entered-in-error", "Feil pasient")
    one_change(lst, lambda c: c.update_entry("e1", removal, 1))

    assert not lst.entries["e1"].visible_at(LATER)
    assert lst.visible_entries(LATER) == []
    assert lst.next_hide(LATER) is None


def test_next_hide_is_the_earliest_future_drop_off() -> None:
    lst = list_with(
        {
            "e1": statement(),
            "e2": statement("Ibux", "M01AE01"),
            "e3": statement("Imovane", "N05CF01"),
        }
    )
    one_change(
        lst, lambda c: c.update_entry("e1", with_status(statement(), "stopped", "Ferdig"), 1)
    )
    one_change(
        lst,
        lambda c: c.update_entry(
            "e2", with_status(statement("Ibux", "M01AE01"), "stopped", "Ferdig"), 1
        ),
        now=LATER + timedelta(days=10),
    )
    first_gone = LATER + timedelta(days=90)
    second_gone = LATER + timedelta(days=100)

    assert lst.next_hide(LATER) == first_gone
    assert lst.next_hide(first_gone) == second_gone
    assert [e.id for e in lst.visible_entries(first_gone)] == ["e2", "e3"]
    assert lst.next_hide(second_gone) is None
    assert [e.id for e in lst.visible_entries(second_gone)] == ["e3"]


# -- links a doctor already had, and ids that already exist --------------------------------


def test_an_entry_keeps_a_link_to_a_prescription_recalled_since() -> None:
    lst = list_with({"e1": statement(based_on=("rx1",))}, {"rx1": prescription()})
    one_change(
        lst, lambda c: c.update_prescription("rx1", recalled(prescription(), "Feil styrke"), 1)
    )

    # A dose change keeps the old link; the medicine may still be in use.
    record = one_change(
        lst,
        lambda c: c.update_entry(
            "e1", edited(statement(based_on=("rx1",)), dosage=TWO_MORNING_EVENING), 1
        ),
    )

    assert record is not None
    assert lst.entries["e1"].version == 2


def test_a_new_link_to_a_recalled_prescription_is_refused() -> None:
    lst = list_with({"e1": statement()}, {"rx1": prescription()})
    one_change(
        lst, lambda c: c.update_prescription("rx1", recalled(prescription(), "Feil styrke"), 1)
    )

    error = refused(lst, Conflict, lambda c: c.update_entry("e1", statement(based_on=("rx1",)), 1))

    assert "stopped" in error.message


def test_an_entry_id_that_exists_is_refused() -> None:
    lst = list_with({"e1": statement()})

    refused(lst, Conflict, lambda c: c.add_entry("e1", statement("Ibux", "M01AE01")))


def test_a_prescription_id_that_exists_is_refused() -> None:
    lst = list_with(prescriptions={"rx1": prescription()})

    refused(lst, Conflict, lambda c: c.add_prescription("rx1", prescription("Ibux", "M01AE01")))


def test_discontinuing_an_entry_never_recalls_another_entrys_prescription() -> None:
    lst = list_with(
        {"a": statement(based_on=("rx1",)), "b": statement("Ibux", "M01AE01")},
        {"rx1": prescription()},
    )

    error = refused(
        lst,
        Conflict,
        lambda c: c.update_entry(
            "b",
            edited(
                with_status(statement("Ibux", "M01AE01"), "stopped", "Ferdig"),
                basedOn=[{"reference": "MedicationRequest/rx1"}],
            ),
            1,
        ),
    )

    assert "never on two active entries" in error.message
    assert lst.prescriptions["rx1"].status == "active"


def test_removing_an_entry_cannot_add_a_link_to_a_missing_prescription() -> None:
    lst = list_with({"b": statement("Ibux", "M01AE01")})

    refused(
        lst,
        InvalidInput,
        lambda c: c.update_entry(
            "b",
            edited(
                with_status(statement("Ibux", "M01AE01"), "entered-in-error", "Feil"),
                basedOn=[{"reference": "MedicationRequest/nope"}],
            ),
            1,
        ),
    )


def test_entries_leaving_after_90_days_make_a_version_without_moving_the_baton() -> None:
    from pll.domain.changes import SYSTEM, expire_entries

    lst = list_with({"e1": statement(), "e2": statement("Ibux", "M01AE01")})
    one_change(
        lst,
        lambda c: c.update_entry(
            "e2", with_status(statement("Ibux", "M01AE01"), "stopped", "Ferdig"), 1
        ),
    )
    baton = lst.baton

    assert expire_entries(lst, {"e1", "e2"}, LATER + timedelta(days=89)) is None
    record = expire_entries(lst, {"e1", "e2"}, LATER + timedelta(days=90))

    assert record is not None
    assert (record.version, record.author, record.activity) == (3, SYSTEM, "expire-entries")
    assert lst.baton == baton
