"""Any two versions of a PLL can be diffed, element by element, in words a clinician reads.

Contents are shaped like the stored MedicationStatements the service hands to ``diff_lists``
(with ``resourceType``, without ``id``/``meta``).
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from pll.domain.changes import ListChange, start_list
from pll.domain.diff import (
    ChangeSummary,
    EntryDifference,
    FieldChange,
    ListDifference,
    Versions,
    diff_lists,
    medication_name,
    summarise,
)
from pll.domain.model import Author, MedicationList, Role
from tests.unit.content import ATC, NOW, ONE_MORNING, PATIENT_ID, TWO_MORNING_EVENING

TREATMENT_TYPE = "urn:oid:2.16.578.1.12.4.1.1.9101"
GP = Author("Kari Fastlege", Role.DOCTOR, hpr="565501872", org_name="Legesenteret Nord")
NO_STATE: dict[str, str | None] = {"paused": None, "confirmed": None}


def statement(
    name: str = "Paracet",
    atc: str = "N02BE01",
    *,
    dosage: list[dict[str, Any]] | None = None,
    **elements: Any,
) -> dict[str, Any]:
    content: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {"coding": [{"system": ATC, "code": atc}], "text": name},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "dosage": copy.deepcopy(dosage if dosage is not None else ONE_MORNING),
    }
    content.update(copy.deepcopy(elements))
    return content


def treatment_type(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": TREATMENT_TYPE, "code": code, "display": display}]}


def diff_members(
    from_version: int,
    to_version: int,
    before: dict[str, int],
    after: dict[str, int],
    contents: dict[tuple[str, int], dict[str, Any]],
    before_state: dict[str, str | None],
    after_state: dict[str, str | None],
) -> ListDifference:
    """``diff_lists`` for lists given as {entry id: version}; an entry missing from ``after``
    has left the list."""
    entries = {
        eid: Versions(before.get(eid), after.get(eid), eid in after)
        for eid in set(before) | set(after)
    }
    return diff_lists(from_version, to_version, entries, {}, contents, before_state, after_state)


def test_a_changed_prescription_is_reported_with_its_elements() -> None:
    contents = {
        ("rx1", 1): {"resourceType": "MedicationRequest", "status": "active", "intent": "order"},
        ("rx1", 2): {
            "resourceType": "MedicationRequest",
            "status": "stopped",
            "intent": "order",
            "statusReason": {"text": "Feil styrke"},
        },
    }

    result = diff_lists(1, 2, {}, {"rx1": Versions(1, 2)}, contents, NO_STATE, NO_STATE)

    assert [(d.entry_id, d.kind) for d in result.prescriptions] == [("rx1", "changed")]
    assert result.prescriptions[0].fields == (
        FieldChange("status", "active", "stopped"),
        FieldChange("statusReason", None, "Feil styrke"),
    )


def diff_one(
    before: dict[str, Any] | None, after: dict[str, Any] | None, entry_id: str = "e1"
) -> EntryDifference:
    """The difference of one entry between version 1 (``before``) and 2 (``after``)."""
    contents: dict[tuple[str, int], dict[str, Any]] = {}
    before_members: dict[str, int] = {}
    after_members: dict[str, int] = {}
    if before is not None:
        contents[(entry_id, 1)] = before
        before_members[entry_id] = 1
    if after is not None:
        version = 2 if before is not None else 1
        contents[(entry_id, version)] = after
        after_members[entry_id] = version
    result = diff_members(1, 2, before_members, after_members, contents, NO_STATE, NO_STATE)
    assert len(result.entries) == 1
    return result.entries[0]


def elements(difference: EntryDifference) -> list[str]:
    return [f.element for f in difference.fields]


# -- added, removed, changed, unchanged ----------------------------------------------------


def test_an_added_entry_shows_each_element_it_brings() -> None:
    added = diff_one(None, statement())

    assert (added.entry_id, added.kind) == ("e1", "added")
    assert (added.before_version, added.after_version) == (None, 1)
    assert added.medication == "Paracet"
    assert elements(added) == ["dosage", "medicationCodeableConcept", "status", "subject"]
    assert FieldChange("dosage", None, "1 tablett morgen") in added.fields
    assert FieldChange("medicationCodeableConcept", None, "Paracet") in added.fields
    assert FieldChange("status", None, "active") in added.fields


def test_a_removed_entry_shows_each_element_it_takes_away() -> None:
    removed = diff_one(statement(), None)

    assert (removed.entry_id, removed.kind) == ("e1", "removed")
    assert (removed.before_version, removed.after_version) == (1, None)
    assert removed.medication == "Paracet"
    assert FieldChange("dosage", "1 tablett morgen", None) in removed.fields
    assert FieldChange("status", "active", None) in removed.fields


def test_the_resource_type_is_never_reported_as_a_changed_element() -> None:
    # A removal must mirror an addition: the resource type is not an element of the entry.
    added = diff_one(None, statement())
    removed = diff_one(statement(), None)

    assert "resourceType" not in elements(added)
    assert "resourceType" not in elements(removed)
    assert elements(removed) == elements(added)


def test_a_dose_change_shows_the_dosage_texts_and_nothing_else() -> None:
    changed = diff_one(statement(), statement(dosage=TWO_MORNING_EVENING))

    assert changed.kind == "changed"
    assert (changed.before_version, changed.after_version) == (1, 2)
    assert changed.fields == (
        FieldChange("dosage", "1 tablett morgen", "2 tabletter morgen og kveld"),
    )


def test_a_discontinuation_shows_the_status_and_its_reason() -> None:
    stopped = statement(status="stopped", statusReason=[{"text": "Bivirkning: magesmerter"}])

    changed = diff_one(statement(), stopped)

    assert changed.fields == (
        FieldChange("status", "active", "stopped"),
        FieldChange("statusReason", None, "Bivirkning: magesmerter"),
    )


def test_a_coded_status_reason_is_shown_by_its_display() -> None:
    coded = [{"coding": [{"system": "urn:example", "code": "BIV", "display": "Bivirkning"}]}]

    changed = diff_one(statement(), statement(status="stopped", statusReason=coded))

    assert FieldChange("statusReason", None, "Bivirkning") in changed.fields


def test_a_changed_treatment_type_is_shown_by_name() -> None:
    before = statement(category=treatment_type("1", "Fast"))
    after = statement(category=treatment_type("3", "Behov"))

    changed = diff_one(before, after)

    assert changed.fields == (FieldChange("category", "Fast", "Behov"),)


def test_a_moved_prescription_link_shows_the_references() -> None:
    before = statement(basedOn=[{"reference": "MedicationRequest/rx1"}])
    after = statement(basedOn=[{"reference": "MedicationRequest/rx2"}])

    changed = diff_one(before, after)

    assert changed.fields == (
        FieldChange("basedOn", "MedicationRequest/rx1", "MedicationRequest/rx2"),
    )


def test_a_changed_drug_names_the_new_drug() -> None:
    changed = diff_one(statement("Paracet", "N02BE01"), statement("Pinex", "N02BE01"))

    assert changed.medication == "Pinex"
    assert changed.fields == (FieldChange("medicationCodeableConcept", "Paracet", "Pinex"),)


def test_unchanged_entries_are_left_out() -> None:
    contents = {
        ("e1", 1): statement(),
        ("e2", 1): statement("Ibux", "M01AE01"),
        ("e2", 2): statement("Ibux", "M01AE01", status="on-hold"),
    }

    result = diff_members(
        1, 2, {"e1": 1, "e2": 1}, {"e1": 1, "e2": 2}, contents, NO_STATE, NO_STATE
    )

    assert [d.entry_id for d in result.entries] == ["e2"]
    assert result.entries[0].fields == (FieldChange("status", "active", "on-hold"),)


def test_identical_lists_have_no_differences() -> None:
    contents = {("e1", 3): statement()}

    result = diff_members(4, 5, {"e1": 3}, {"e1": 3}, contents, NO_STATE, NO_STATE)

    assert (result.from_version, result.to_version) == (4, 5)
    assert result.entries == ()
    assert result.list_changes == ()


# -- the summary beside "Bekreft versjon N" ---------------------------------------------------


def test_the_summary_sorts_the_medicines_by_what_happened_to_them() -> None:
    stopped = {"status": "stopped", "statusReason": [{"text": "Bivirkning"}]}
    contents = {
        ("e1", 1): statement("Paracet", "N02BE01"),
        ("e1", 2): statement("Paracet", "N02BE01", dosage=TWO_MORNING_EVENING),
        ("e2", 1): statement("Ibux", "M01AE01"),
        ("e2", 2): statement("Ibux", "M01AE01", **stopped),
        ("e3", 1): statement("Lipitor", "C10AA05"),
        ("e4", 1): statement("Zoloft", "N06AB06", status="on-hold"),
        ("e5", 1): statement("Imovane", "N05CF01"),
        ("e6", 1): statement("Somac", "A02BC02", **stopped),
        ("e7", 1): statement("Norvasc", "C08CA01"),
    }

    result = summarise(
        diff_members(
            1,
            4,
            {"e1": 1, "e2": 1, "e5": 1, "e7": 1},
            {"e1": 2, "e2": 2, "e3": 1, "e4": 1, "e6": 1, "e7": 1},
            contents,
            NO_STATE,
            NO_STATE,
        )
    )

    # a paused entry added is added; one added and stopped in between counts as ended
    assert result == ChangeSummary(
        added=("Lipitor", "Zoloft"),
        changed=("Paracet",),
        ended=("Ibux", "Somac"),
        removed=("Imovane",),
    )
    assert result


def test_an_unchanged_list_has_an_empty_summary() -> None:
    contents = {("e1", 3): statement()}

    result = summarise(diff_members(4, 5, {"e1": 3}, {"e1": 3}, contents, NO_STATE, NO_STATE))

    assert result == ChangeSummary()
    assert not result


def test_a_prescription_changed_without_its_entry_is_counted_once_by_its_medicine() -> None:
    rx = {"resourceType": "MedicationRequest", "status": "active", "intent": "order"}
    named = {"medicationCodeableConcept": {"text": "Paracet"}}
    contents = {
        ("r1", 1): {**rx, **named},
        ("r1", 2): {**rx, **named, "status": "stopped"},
        ("r2", 1): {**rx, **named},
        ("r3", 1): {**rx, "medicationCodeableConcept": {"text": "Ibux"}},
        ("e1", 1): statement("Ibux", "M01AE01"),
    }
    difference = diff_lists(
        1,
        2,
        {"e1": Versions(None, 1)},
        {"r1": Versions(1, 2), "r2": Versions(None, 1), "r3": Versions(None, 1)},
        contents,
        NO_STATE,
        NO_STATE,
    )

    result = summarise(difference)

    # Ibux's prescription came with its entry: the entry says it
    assert result == ChangeSummary(added=("Ibux",), prescriptions=("Paracet",))


# -- list-level state ----------------------------------------------------------------------


def test_pausing_the_list_is_a_list_level_change() -> None:
    paused = {"paused": "2026-03-02T09:30:00.000Z: Innlagt på sykehus", "confirmed": None}

    result = diff_members(1, 2, {}, {}, {}, NO_STATE, paused)

    assert result.list_changes == (
        FieldChange("paused", None, "2026-03-02T09:30:00.000Z: Innlagt på sykehus"),
    )


def test_resuming_reports_both_the_pause_ending_and_the_new_confirmation() -> None:
    before = {"paused": "2026-03-02T09:30:00.000Z: Innlagt på sykehus", "confirmed": None}
    after = {"paused": None, "confirmed": "2026-03-05T14:00:00.000Z av Kari Fastlege"}

    result = diff_members(2, 3, {}, {}, {}, before, after)

    assert result.list_changes == (
        FieldChange("confirmed", None, "2026-03-05T14:00:00.000Z av Kari Fastlege"),
        FieldChange("paused", "2026-03-02T09:30:00.000Z: Innlagt på sykehus", None),
    )


def test_an_unchanged_list_state_is_not_reported() -> None:
    state = {"paused": None, "confirmed": "2026-03-05T14:00:00.000Z av Kari Fastlege"}

    result = diff_members(3, 4, {}, {}, {}, state, dict(state))

    assert result.list_changes == ()


# -- medication names ----------------------------------------------------------------------


def test_the_medication_is_named_by_its_text_then_its_coding() -> None:
    coded = {"coding": [{"system": ATC, "code": "N02BE01", "display": "paracetamol"}]}
    code_only = {"coding": [{"system": ATC, "code": "N02BE01"}]}

    assert medication_name({"medicationCodeableConcept": {**coded, "text": "Paracet"}}) == "Paracet"
    assert medication_name({"medicationCodeableConcept": coded}) == "paracetamol"
    assert medication_name({"medicationCodeableConcept": code_only}) == "N02BE01"
    assert medication_name({}) == "ukjent legemiddel"


# -- two versions of a list made by real changes -------------------------------------------


def snapshot(
    lst: MedicationList, contents: dict[tuple[str, int], dict[str, Any]]
) -> dict[str, int]:
    """The entry versions a list version shows, remembering each entry version's content."""
    members = {}
    for entry in lst.visible_entries(lst.updated):
        members[entry.id] = entry.version
        contents[(entry.id, entry.version)] = copy.deepcopy(entry.content)
    return members


def test_two_versions_of_a_list_built_by_changes_can_be_diffed() -> None:
    contents: dict[tuple[str, int], dict[str, Any]] = {}
    lst = start_list("list-1", PATIENT_ID, GP, NOW, exists=False)
    first = ListChange(lst, GP, NOW)
    first.add_entry("e1", statement())
    first.add_entry("e2", statement("Ibux", "M01AE01"))
    first.finish()
    v1 = snapshot(lst, contents)

    second = ListChange(lst, GP, NOW + timedelta(days=1))
    second.update_entry("e1", statement(dosage=TWO_MORNING_EVENING), 1)
    second.finish()
    snapshot(lst, contents)

    third = ListChange(lst, GP, NOW + timedelta(days=2))
    stop = statement("Ibux", "M01AE01", status="stopped", statusReason=[{"text": "Magesår"}])
    third.update_entry("e2", stop, 1)
    third.add_entry("e3", statement("Imovane", "N05CF01"))
    third.finish()
    v3 = snapshot(lst, contents)

    result = diff_members(1, 3, v1, v3, contents, NO_STATE, NO_STATE)

    assert [(d.entry_id, d.kind, d.before_version, d.after_version) for d in result.entries] == [
        ("e1", "changed", 1, 2),
        ("e2", "changed", 1, 2),
        ("e3", "added", None, 1),
    ]
    e1, e2, e3 = result.entries
    assert e1.fields == (FieldChange("dosage", "1 tablett morgen", "2 tabletter morgen og kveld"),)
    assert e2.fields == (
        FieldChange("status", "active", "stopped"),
        FieldChange("statusReason", None, "Magesår"),
    )
    assert e3.medication == "Imovane"
