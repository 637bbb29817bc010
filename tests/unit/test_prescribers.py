"""Dentists and midwives change only what they prescribed (DESIGN §3 rule 4, issue 18),
driven on the domain objects: ``ListChange`` with the originators the store would give."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pll.domain.changes import ListChange, start_list
from pll.domain.errors import Forbidden
from pll.domain.model import Author, MedicationList, Role
from pll.domain.prescribers import NotYourEntry, Originators
from tests.unit.content import NOW, PATIENT_ID
from tests.unit.test_changes import (
    GP,
    LATER,
    LIST_ID,
    edited,
    list_with,
    prescription,
    recalled,
    statement,
    with_status,
)

DENTIST = Author("Tor Tannlege", Role.DENTIST, hpr="9144951", org_id="991000100")
#: the same dentist at another clinic: still the same person
DENTIST_ELSEWHERE = Author("Tor Tannlege", Role.DENTIST, hpr="9144951", org_id="991000607")
MIDWIFE = Author("Jorunn Jordmor", Role.MIDWIFE, hpr="9144978", org_id="991000208")
OTHER_DENTIST = Author("Tone Tannlege", Role.DENTIST, hpr="9144999", org_id="991000100")
PHYSIO = Author("Fredrik Fysioterapeut", Role.HEALTH_WORKER, hpr="9144994")


def gp_list() -> MedicationList:
    """The GP's list: rx-gp on e-gp."""
    return list_with({"e-gp": statement(based_on=("rx-gp",))}, {"rx-gp": prescription()})


def by(author: Author, lst: MedicationList, apply: Callable[[ListChange], object]) -> None:
    """One change by ``author``, with the originators: the GP's and the dentist's."""
    owners = Originators(
        {"e-gp": GP, "e-dent": DENTIST},
        {"rx-gp": GP, "rx-dent": DENTIST},
    )
    change = ListChange(lst, author, LATER, None, owners)
    apply(change)
    change.finish()


def with_dentists(lst: MedicationList) -> MedicationList:
    def prescribe(c: ListChange) -> None:
        c.add_prescription("rx-dent", prescription("Amoxicillin", "J01CA04"))
        c.add_entry("e-dent", statement("Amoxicillin", "J01CA04", based_on=("rx-dent",)))

    by(DENTIST, lst, prescribe)
    return lst


@pytest.mark.parametrize("author", [DENTIST, MIDWIFE], ids=lambda a: a.role.value)
def test_a_dentist_or_midwife_puts_what_they_prescribe_on_the_list(author: Author) -> None:
    lst = gp_list()

    def prescribe(c: ListChange) -> None:
        c.add_prescription("rx-new", prescription("Amoxicillin", "J01CA04"))
        c.add_entry("e-new", statement("Amoxicillin", "J01CA04", based_on=("rx-new",)))
        # and changes it within the same change: it is theirs
        c.update_entry("e-new", edited(lst.entries["e-new"].content, note=[{"text": "x"}]), 1)

    by(author, lst, prescribe)
    assert lst.entries["e-new"].changed_by == author
    assert lst.baton == author  # they hold the baton for their change


def test_a_dentist_changes_and_discontinues_their_own_entry() -> None:
    lst = with_dentists(gp_list())
    # as the same person at another clinic
    by(
        DENTIST_ELSEWHERE,
        lst,
        lambda c: c.update_entry(
            "e-dent", with_status(lst.entries["e-dent"].content, "stopped", "Ferdig kur"), 1
        ),
    )
    assert lst.entries["e-dent"].status == "stopped"
    assert lst.prescriptions["rx-dent"].status == "stopped"  # recalled with it


def test_a_dentist_renews_their_own_prescription() -> None:
    lst = with_dentists(gp_list())
    by(DENTIST, lst, lambda c: c.add_prescription("rx-dent-2", prescription(prior="rx-dent")))
    assert lst.entries["e-dent"].prescription_ids == ("rx-dent-2",)


REFUSED: list[tuple[str, Callable[[MedicationList], Callable[[ListChange], object]]]] = [
    (
        "change the GP's entry",
        lambda lst: (
            lambda c: c.update_entry(
                "e-gp", edited(lst.entries["e-gp"].content, note=[{"text": "x"}]), 1
            )
        ),
    ),
    (
        "discontinue the GP's entry",
        lambda lst: (
            lambda c: c.update_entry(
                "e-gp", with_status(lst.entries["e-gp"].content, "stopped", "Unødvendig"), 1
            )
        ),
    ),
    (
        "recall the GP's prescription",
        lambda lst: (
            lambda c: c.update_prescription(
                "rx-gp", recalled(lst.prescriptions["rx-gp"].content, "Feil"), 1
            )
        ),
    ),
    (
        "renew the GP's prescription",
        lambda lst: lambda c: c.add_prescription("rx-2", prescription(prior="rx-gp")),
    ),
    (
        "put the GP's prescription on a new entry of theirs",
        lambda lst: lambda c: c.add_entry("e-x", statement(based_on=("rx-gp",))),
    ),
    ("confirm the list", lambda lst: lambda c: c.confirm(lst.version)),
    ("pause the list", lambda lst: lambda c: c.pause("Innlagt")),
]


@pytest.mark.parametrize(("what", "make"), REFUSED, ids=[w for w, _ in REFUSED])
@pytest.mark.parametrize("author", [DENTIST, MIDWIFE, OTHER_DENTIST], ids=lambda a: a.hpr)
def test_a_dentist_or_midwife_may_not_touch_another_prescribers_entries(
    author: Author, what: str, make: Callable[[MedicationList], Callable[[ListChange], object]]
) -> None:
    lst = gp_list()
    before = {k: (e.version, e.status) for k, e in lst.entries.items()}
    with pytest.raises(Forbidden) as refused:
        by(author, lst, make(lst))
    assert "only" in refused.value.message.lower()
    assert refused.value.norwegian
    assert {k: (e.version, e.status) for k, e in lst.entries.items()} == before, what


def test_another_dentist_may_not_change_a_dentists_entry() -> None:
    lst = with_dentists(gp_list())
    with pytest.raises(NotYourEntry) as refused:
        by(
            OTHER_DENTIST,
            lst,
            lambda c: c.update_entry(
                "e-dent", with_status(lst.entries["e-dent"].content, "stopped", "x"), 1
            ),
        )
    assert refused.value.rid == "e-dent"
    assert "Tor Tannlege" in refused.value.message  # whose it is


def test_a_doctor_changes_a_dentists_entry() -> None:
    lst = with_dentists(gp_list())
    change = ListChange(lst, GP, LATER)  # a doctor needs no originators
    change.update_entry("e-dent", with_status(lst.entries["e-dent"].content, "stopped", "x"), 1)
    assert change.finish() is not None


def test_an_entry_nobody_is_known_to_have_recorded_is_not_a_dentists() -> None:
    lst = gp_list()
    change = ListChange(lst, DENTIST, LATER)  # no originators at all
    with pytest.raises(NotYourEntry):
        change.update_entry("e-gp", with_status(lst.entries["e-gp"].content, "stopped", "x"), 1)


def test_other_health_personnel_never_change_the_list() -> None:
    with pytest.raises(Forbidden, match="Only prescribers"):
        ListChange(gp_list(), PHYSIO, LATER)
    with pytest.raises(Forbidden, match="Only prescribers"):
        start_list(LIST_ID, PATIENT_ID, PHYSIO, NOW, exists=False)


def test_a_dentist_starts_a_list_with_what_they_prescribe() -> None:
    lst = start_list(LIST_ID, PATIENT_ID, DENTIST, NOW, exists=False)
    change = ListChange(lst, DENTIST, NOW)
    change.add_prescription("rx-dent", prescription("Amoxicillin", "J01CA04"))
    change.add_entry("e-dent", statement("Amoxicillin", "J01CA04", based_on=("rx-dent",)))
    assert change.finish() is not None
    assert lst.confirmation is None  # confirming is a doctor's
