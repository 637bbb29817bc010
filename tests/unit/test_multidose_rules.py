"""The rules of e-multidose (M25, M27) driven directly on the domain objects."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from pll.domain import multidose as rules
from pll.domain.errors import Conflict, Forbidden, InvalidInput
from pll.domain.model import (
    Author,
    Entry,
    MedicationList,
    Multidose,
    Pause,
    Pharmacy,
    Role,
)
from tests.unit.content import ATC, NOW, ONE_MORNING, PATIENT_ID

GP = Author("Kari Fastlege", Role.DOCTOR, hpr="565501872", org_id="974600951")
HOSPITAL = Author("Ola Overlege", Role.DOCTOR, hpr="565505933")
PHARMACIST = Author("Per Farmasøyt", Role.PHARMACIST, hpr="565508011", org_id="985563756")
NURSE = Author("Nina Sykepleier", Role.NURSE, hpr="565509912")
BERGEN = Pharmacy("Apotek 1 Bergen multidose", "985563756")
TRONDHEIM = Pharmacy("Vitusapotek Trondheim", "987654325")


def content(name: str = "Paracet", *, packed: bool | None = True, status: str = "active") -> dict:
    out: dict[str, Any] = {
        "status": status,
        "medicationCodeableConcept": {"coding": [{"system": ATC, "code": "N02BE01"}], "text": name},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "dosage": ONE_MORNING,
    }
    if packed is not None:
        out["extension"] = [
            {
                "url": rules.ADMINISTRATION,
                "extension": [{"url": "mddispensed", "valueBoolean": packed}],
            }
        ]
    return out


def a_list(*entries: tuple[str, dict[str, Any]], state: Multidose | None = None) -> MedicationList:
    lst = MedicationList("list-1", PATIENT_ID, 3, NOW, NOW, GP)
    for eid, c in entries:
        lst.entries[eid] = Entry(eid, 1, c, NOW, GP)
    if state is not None:
        lst.multidose = state
    return lst


def registered() -> Multidose:
    found = rules.register(Multidose(), GP, BERGEN, NOW)
    assert found is not None
    return found


# -- the mark on entries -------------------------------------------------------------------


@pytest.mark.parametrize(("packed", "expected"), [(True, True), (False, False), (None, False)])
def test_entries_are_marked_packed_in_multidose_or_not(packed: bool | None, expected: bool) -> None:
    assert rules.packed_in_multidose(content(packed=packed)) is expected


def test_a_mark_of_the_wrong_type_is_not_packed() -> None:
    odd = content()
    odd["extension"][0]["extension"][0] = {"url": "mddispensed", "valueString": "true"}
    assert rules.packed_in_multidose(odd) is False


# -- the registration (M27) ----------------------------------------------------------------


def test_a_doctor_registers_as_responsible_with_one_pharmacy() -> None:
    state = registered()
    assert state.registration is not None
    assert state.registration.doctor == GP
    assert state.registration.pharmacy == BERGEN


def test_one_pharmacy_per_patient() -> None:
    state = registered()
    with pytest.raises(Conflict, match="one multidose pharmacy"):
        rules.register(state, GP, TRONDHEIM, NOW)
    with pytest.raises(Conflict, match="only that doctor ends"):
        rules.register(state, HOSPITAL, TRONDHEIM, NOW)
    assert rules.register(state, GP, BERGEN, NOW) is None  # the same again: nothing changes


@pytest.mark.parametrize("who", [PHARMACIST, NURSE, replace(GP, hpr=None)])
def test_only_doctors_register(who: Author) -> None:
    with pytest.raises(Forbidden):
        rules.register(Multidose(), who, BERGEN, NOW)


def test_a_pharmacy_without_organisation_number_is_refused() -> None:
    with pytest.raises(InvalidInput, match="organisation number"):
        rules.register(Multidose(), GP, Pharmacy("Apoteket"), NOW)


def test_only_the_registered_doctor_ends_the_registration() -> None:
    state = registered()
    for other in (HOSPITAL, PHARMACIST, replace(GP, role=Role.NURSE)):
        with pytest.raises(Forbidden, match="Kari Fastlege"):
            rules.end(state, other)
    assert rules.end(state, GP).registration is None
    with pytest.raises(Conflict, match="no e-multidose registration"):
        rules.end(Multidose(), GP)


def test_paper_multidose_is_recorded_once_by_doctors_and_pharmacies() -> None:
    state = rules.register_paper(Multidose(), PHARMACIST, "Vitusapotek", None, NOW)
    assert state.paper is not None
    assert state.paper.by == PHARMACIST
    with pytest.raises(Conflict, match="already recorded"):
        rules.register_paper(state, GP, None, None, NOW)
    with pytest.raises(Forbidden):
        rules.register_paper(Multidose(), NURSE, None, None, NOW)
    assert rules.end_paper(state, PHARMACIST).paper is None  # the pharmacy that recorded it
    assert rules.end_paper(state, GP).paper is None  # a doctor
    stranger = replace(PHARMACIST, org_id="987654321", org_name="Et annet apotek")
    with pytest.raises(Forbidden, match="recorded paper multidose"):
        rules.end_paper(state, stranger)
    with pytest.raises(Conflict):
        rules.end_paper(Multidose(), GP)


def test_a_new_state_is_a_list_version_that_leaves_the_baton() -> None:
    lst = a_list()
    state = registered()
    record = rules.record(lst, state, GP, NOW, "multidose-register", "why")
    assert record is not None
    assert (lst.version, record.version, record.author) == (4, 4, GP)
    assert lst.multidose == state
    paper = rules.register_paper(state, PHARMACIST, None, None, NOW)
    record = rules.record(lst, paper, PHARMACIST, NOW, "paper-multidose", None)
    assert record is not None
    assert lst.baton == GP  # a pharmacist never holds the baton
    assert rules.record(lst, paper, PHARMACIST, NOW, "paper-multidose", None) is None


# -- packing (M25.1, M25.3) ------------------------------------------------------------------


def packed_item(entry: str = "e1", days: int = 13) -> rules.Packed:
    return rules.Packed(entry, NOW, NOW + timedelta(days=days), "item[0]")


def test_a_paused_list_is_not_packed() -> None:
    lst = a_list(("e1", content()), state=registered())
    assert rules.packing_refusal(lst, lst.multidose) is None
    lst.pause = Pause(HOSPITAL, NOW, "Innlagt på sykehus")
    assert "paused" in str(rules.packing_refusal(lst, lst.multidose))
    with pytest.raises(Conflict, match="paused"):
        rules.check_packing(
            lst, lst.multidose, NOW, NOW + timedelta(days=14), [packed_item()], None
        )


def test_no_packing_without_registration_or_list() -> None:
    assert "registration" in str(rules.packing_refusal(a_list(), Multidose()))
    assert "not sent" in str(rules.packing_refusal(None, registered()))


def test_only_what_the_list_marks_as_packed_is_reported() -> None:
    lst = a_list(("e1", content()), ("e2", content(packed=False)), state=registered())
    end = NOW + timedelta(days=14)
    rules.check_packing(lst, lst.multidose, NOW, end, [packed_item()], 3)
    with pytest.raises(Conflict, match="not marked as packed"):
        rules.check_packing(lst, lst.multidose, NOW, end, [packed_item("e2")], None)
    with pytest.raises(InvalidInput, match="not on this patient's list"):
        rules.check_packing(lst, lst.multidose, NOW, end, [packed_item("e9")], None)
    with pytest.raises(InvalidInput, match="twice"):
        rules.check_packing(lst, lst.multidose, NOW, end, [packed_item(), packed_item()], None)
    with pytest.raises(InvalidInput, match="within the report's period"):
        rules.check_packing(lst, lst.multidose, NOW, end, [packed_item(days=20)], None)
    with pytest.raises(InvalidInput, match="ends before"):
        rules.check_packing(lst, lst.multidose, end, NOW, [packed_item()], None)
    with pytest.raises(InvalidInput, match="version 9"):
        rules.check_packing(lst, lst.multidose, NOW, end, [packed_item()], 9)
    with pytest.raises(InvalidInput, match="at least one"):
        rules.check_packing(lst, lst.multidose, NOW, end, [], None)


# -- proposals (M25.2) -----------------------------------------------------------------------


def test_a_proposal_names_what_the_doctor_needs() -> None:
    lst = a_list(("e1", content()), ("e2", content(status="stopped")))
    good = [
        rules.Proposed("new", "item[0]", content=content("Ibux")),
        rules.Proposed("change", "item[1]", "e1", 1, content("Paracet 1 g")),
    ]
    rules.check_proposal(lst, good)
    rules.check_proposal(lst, [rules.Proposed("remove", "item[0]", "e1", 1, reason="Brukes ikke")])
    bad: list[tuple[rules.Proposed, type[Exception], str]] = [
        (rules.Proposed("new", "i", "e1", 1, content()), InvalidInput, "names no entry"),
        (rules.Proposed("new", "i"), InvalidInput, "carries the proposed"),
        (rules.Proposed("new", "i", content=content(status="stopped")), InvalidInput, "status"),
        (rules.Proposed("change", "i", "e1", None, content()), InvalidInput, "_history"),
        (rules.Proposed("change", "i", "e9", 1, content()), InvalidInput, "not on this"),
        (rules.Proposed("change", "i", "e2", 1, content()), Conflict, "in use"),
        (rules.Proposed("change", "i", "e1", 1), InvalidInput, "carries the entry"),
        (rules.Proposed("remove", "i", "e1", 1), InvalidInput, "why"),
        (rules.Proposed("remove", "i", "e1", 1, content(), "x"), InvalidInput, "no statement"),
    ]
    for item, error, words in bad:
        with pytest.raises(error, match=words):
            rules.check_proposal(lst, [item])
    twice = rules.Proposed("remove", "i", "e1", 1, reason="x")
    with pytest.raises(InvalidInput, match="two items"):
        rules.check_proposal(lst, [twice, twice])
    with pytest.raises(InvalidInput, match="at least one"):
        rules.check_proposal(lst, [])


def test_each_item_is_decided_once() -> None:
    items = {
        "a": rules.Held("a", "p", "new", "pending"),
        "b": rules.Held("b", "p", "new", "rejected", decided_by="Kari Fastlege", decided_at=NOW),
    }
    rules.check_rulings(items, [rules.Ruling("a", True, "d[0]")])
    with pytest.raises(Conflict, match="already rejected by Kari Fastlege"):
        rules.check_rulings(items, [rules.Ruling("b", True, "d[0]")])
    with pytest.raises(InvalidInput, match="not an item"):
        rules.check_rulings(items, [rules.Ruling("z", True, "d[0]")])
    with pytest.raises(InvalidInput, match="twice"):
        rules.check_rulings(
            items, [rules.Ruling("a", True, "d[0]"), rules.Ruling("a", False, "d[1]")]
        )
    with pytest.raises(InvalidInput, match="at least one"):
        rules.check_rulings(items, [])


def test_a_removal_discontinues_with_the_pharmacys_reason() -> None:
    before = content()
    after = rules.removed(before, "Brukes ikke")
    assert (after["status"], after["statusReason"]) == ("stopped", [{"text": "Brukes ikke"}])
    assert before["status"] == "active"
