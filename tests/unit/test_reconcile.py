"""Reconciliation (samstemming) driven directly on the domain: each kind of difference, how
medicines are matched, the ids, and what accepting each difference does."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pll.domain.errors import InvalidInput
from pll.domain.reconcile import (
    Difference,
    Drug,
    Kind,
    Listed,
    Origin,
    SourceItem,
    accepted_ids,
    action,
    compare,
)
from tests.unit.content import NOW

METFORMIN = Drug("Metformin 500 mg", atc=("A10BA02",))
ATORVASTATIN = Drug("Atorvastatin 20 mg", atc=("C10AA05",))
AMLODIPIN = Drug("Amlodipin 5 mg", atc=("C08CA01",))


def entry(
    eid: str,
    drug: Drug,
    dosage: str | None = "1 tablett morgen",
    status: str = "active",
    *,
    ended_days_ago: int | None = None,
    rx: tuple[str, ...] = (),
) -> Listed:
    ended = NOW - timedelta(days=ended_days_ago) if ended_days_ago is not None else None
    return Listed(eid, 2, status, drug, dosage, ended, rx)


def item(
    drug: Drug,
    dosage: str | None = "1 tablett morgen",
    status: str = "active",
    where: str = "Bundle.entry[0].resource",
) -> SourceItem:
    return SourceItem(drug, status, dosage, where)


def dispensed(drug: Drug, days_ago: int, rx: str | None = None, n: int = 0) -> SourceItem:
    return SourceItem(
        drug,
        where=f"MedicationDispense/d{n}-{days_ago}",
        when=NOW - timedelta(days=days_ago),
        prescription=rx,
    )


def kinds(found: list[Difference]) -> list[tuple[Kind, str]]:
    return [(d.kind, d.drug.display) for d in found]


# -- a list as the source (discharge, patient, other) ------------------------------------------


def test_the_same_list_on_both_sides_has_no_differences() -> None:
    listed = [entry("e1", METFORMIN), entry("e2", ATORVASTATIN, "1 tablett kveld")]
    items = [item(METFORMIN), item(ATORVASTATIN, "1 tablett kveld")]
    assert compare(listed, items, Origin.DISCHARGE, NOW) == []


def test_a_medicine_in_the_discharge_list_is_missing_on_the_list() -> None:
    found = compare(
        [entry("e1", METFORMIN)], [item(METFORMIN), item(AMLODIPIN)], Origin.DISCHARGE, NOW
    )
    (d,) = found
    assert d.kind is Kind.MISSING_ON_LIST
    assert d.text == "Amlodipin 5 mg står i epikrisen, men ikke på listen"
    assert d.entry_id is None
    assert d.source_dosage == "1 tablett morgen"
    assert d.item is not None
    assert d.item.drug == AMLODIPIN


def test_an_entry_in_use_not_in_the_source_is_reported_and_a_discontinued_one_is_not() -> None:
    listed = [
        entry("e1", METFORMIN),
        entry("e2", ATORVASTATIN, status="on-hold"),
        entry("e3", AMLODIPIN, status="stopped", ended_days_ago=10),
    ]
    found = compare(listed, [item(METFORMIN)], Origin.DISCHARGE, NOW)
    (d,) = found
    assert (d.kind, d.entry_id, d.list_status) == (Kind.NOT_IN_SOURCE, "e2", "on-hold")
    assert d.text == "Atorvastatin 20 mg står på listen, men ikke i epikrisen"
    assert d.entry_version == 2


def test_a_different_dosage_is_reported_with_both_texts() -> None:
    found = compare(
        [entry("e1", METFORMIN, "1 tablett morgen")],
        [item(METFORMIN, "2 tabletter morgen og kveld")],
        Origin.DISCHARGE,
        NOW,
    )
    (d,) = found
    assert d.kind is Kind.DOSAGE_DIFFERS
    assert (d.list_dosage, d.source_dosage) == ("1 tablett morgen", "2 tabletter morgen og kveld")
    assert d.text == (
        "Metformin 500 mg: dosering på listen «1 tablett morgen», "
        "i epikrisen «2 tabletter morgen og kveld»"
    )


def test_dosages_are_compared_without_case_spacing_or_punctuation() -> None:
    listed = [entry("e1", METFORMIN, "1 tablett morgen")]
    assert compare(listed, [item(METFORMIN, " 1 Tablett  morgen.")], Origin.DISCHARGE, NOW) == []
    # a source that says no dosage says nothing against the list's
    assert compare(listed, [item(METFORMIN, None)], Origin.DISCHARGE, NOW) == []


def test_a_medicine_stopped_in_the_source_but_in_use_on_the_list_differs_in_status() -> None:
    found = compare(
        [entry("e1", METFORMIN)], [item(METFORMIN, status="stopped")], Origin.DISCHARGE, NOW
    )
    (d,) = found
    assert (d.kind, d.list_status, d.source_status) == (Kind.STATUS_DIFFERS, "active", "stopped")
    assert d.text == "Metformin 500 mg er i bruk på listen, men seponert i epikrisen"


def test_a_paused_medicine_differs_in_status_and_can_differ_in_dosage_too() -> None:
    found = compare(
        [entry("e1", METFORMIN, "1 tablett morgen", status="on-hold")],
        [item(METFORMIN, "2 tabletter morgen")],
        Origin.PATIENT,
        NOW,
    )
    assert [d.kind for d in found] == [Kind.STATUS_DIFFERS, Kind.DOSAGE_DIFFERS]
    assert (
        found[0].text
        == "Metformin 500 mg er pauset på listen, men pasienten oppgir at den er i bruk"
    )
    assert "pasienten oppgir «2 tabletter morgen»" in found[1].text


def test_a_discontinued_entry_explains_a_source_medicine_as_a_status_difference() -> None:
    listed = [entry("e1", METFORMIN, status="stopped", ended_days_ago=30)]
    (d,) = compare(listed, [item(METFORMIN)], Origin.DISCHARGE, NOW)
    assert (d.kind, d.entry_id) == (Kind.STATUS_DIFFERS, "e1")
    assert d.text == "Metformin 500 mg er seponert på listen, men i bruk i epikrisen"
    # both say it has ended: nothing to reconcile
    assert compare(listed, [item(METFORMIN, status="completed")], Origin.DISCHARGE, NOW) == []
    # a medicine the source has ended and the list never had is not a difference either
    assert compare([], [item(AMLODIPIN, status="stopped")], Origin.DISCHARGE, NOW) == []


def test_an_entry_discontinued_over_a_year_ago_explains_nothing() -> None:
    listed = [entry("e1", METFORMIN, status="stopped", ended_days_ago=400)]
    (d,) = compare(listed, [item(METFORMIN)], Origin.DISCHARGE, NOW)
    assert d.kind is Kind.MISSING_ON_LIST


def test_a_source_that_stops_one_strength_and_starts_another_pairs_the_one_in_use() -> None:
    listed = [entry("e1", METFORMIN, "1 tablett morgen")]
    items = [
        item(METFORMIN, "1 tablett morgen", status="stopped"),
        item(METFORMIN, "2 tabletter morgen"),
    ]
    (d,) = compare(listed, items, Origin.DISCHARGE, NOW)
    assert (d.kind, d.source_dosage) == (Kind.DOSAGE_DIFFERS, "2 tabletter morgen")


def test_the_patients_own_list_is_described_in_the_patients_words() -> None:
    found = compare([entry("e1", METFORMIN)], [item(AMLODIPIN)], Origin.PATIENT, NOW)
    assert [d.text for d in found] == [
        "Pasienten oppgir at hen bruker Amlodipin 5 mg, men den står ikke på listen",
        "Metformin 500 mg står på listen, men pasienten oppgir ikke at hen bruker den",
    ]


# -- matching ----------------------------------------------------------------------------------


def test_matching_by_fest_id_whatever_the_names() -> None:
    on_list = Drug("Glucophage", fest=("ID_A1B2",))
    in_source = Drug("Metformin Teva", fest=("ID_A1B2",))
    assert compare([entry("e1", on_list)], [item(in_source)], Origin.DISCHARGE, NOW) == []


def test_matching_by_atc_code_when_the_fest_ids_differ() -> None:
    on_list = Drug("Glucophage", fest=("ID_1",), atc=("A10BA02",))
    in_source = Drug("Metformin Teva", fest=("ID_2",), atc=("a10ba02",))
    assert compare([entry("e1", on_list)], [item(in_source)], Origin.DISCHARGE, NOW) == []


def test_matching_by_name_when_there_are_no_codes() -> None:
    on_list = Drug("Paracet 500 mg")
    assert (
        compare([entry("e1", on_list)], [item(Drug("PARACET  500 mg."))], Origin.OTHER, NOW) == []
    )
    found = compare([entry("e1", on_list)], [item(Drug("Pinex 500 mg"))], Origin.OTHER, NOW)
    assert sorted(d.kind for d in found) == [Kind.MISSING_ON_LIST, Kind.NOT_IN_SOURCE]
    assert found[0].text == "Pinex 500 mg står i den andre listen, men ikke på listen"


def test_a_fest_match_wins_over_an_atc_match() -> None:
    brand_a = Drug("Metformin A", fest=("ID_A",), atc=("A10BA02",))
    brand_b = Drug("Metformin B", fest=("ID_B",), atc=("A10BA02",))
    listed = [entry("ea", brand_a, "1 tablett morgen"), entry("eb", brand_b, "1 tablett kveld")]
    source = [item(Drug("Metformin B", fest=("ID_B",), atc=("A10BA02",)), "2 tabletter kveld")]
    found = compare(listed, source, Origin.DISCHARGE, NOW)
    by_kind = {d.kind: d for d in found}
    assert by_kind[Kind.DOSAGE_DIFFERS].entry_id == "eb"
    assert by_kind[Kind.NOT_IN_SOURCE].entry_id == "ea"


def test_each_line_pairs_with_one_entry() -> None:
    listed = [entry("e1", METFORMIN)]
    found = compare(listed, [item(METFORMIN), item(METFORMIN, where="x")], Origin.DISCHARGE, NOW)
    assert kinds(found) == [(Kind.MISSING_ON_LIST, "Metformin 500 mg")]


# -- the dispensing history --------------------------------------------------------------------


def test_a_dispensed_medicine_missing_on_the_list_is_reported_once_and_first() -> None:
    listed = [entry("e1", METFORMIN), entry("e2", ATORVASTATIN)]
    packages = [
        dispensed(METFORMIN, 20),
        dispensed(ATORVASTATIN, 30),
        dispensed(Drug("Amlodipin Sandoz", fest=("PKG1",), atc=("C08CA01",)), 40),
        dispensed(Drug("Amlodipin Actavis", fest=("PKG2",), atc=("C08CA01",)), 90),
    ]
    (d,) = compare(listed, packages, Origin.DISPENSING, NOW)
    assert d.kind is Kind.MISSING_ON_LIST
    assert d.item is not None
    assert d.item.when == NOW - timedelta(days=40)  # the newest dispensing of it
    day = f"{(NOW - timedelta(days=40)):%d.%m.%Y}"
    assert d.text == f"Amlodipin Sandoz er utlevert {day}, men står ikke på listen"


def test_an_entry_never_dispensed_in_twelve_months_is_shown_after_what_is_missing() -> None:
    listed = [entry("e1", METFORMIN), entry("e2", ATORVASTATIN)]
    history = [dispensed(METFORMIN, 400), dispensed(AMLODIPIN, 10)]  # metformin: too long ago
    found = compare(listed, history, Origin.DISPENSING, NOW)
    assert kinds(found) == [
        (Kind.MISSING_ON_LIST, "Amlodipin 5 mg"),
        (Kind.NOT_IN_SOURCE, "Atorvastatin 20 mg"),
        (Kind.NOT_IN_SOURCE, "Metformin 500 mg"),
    ]
    assert (
        found[1].text == "Atorvastatin 20 mg står på listen, men er ikke utlevert siste 12 måneder"
    )


def test_a_dispensing_matches_its_prescriptions_entry_whatever_it_is_called() -> None:
    listed = [entry("e1", METFORMIN, rx=("rx-1",))]
    package = Drug("Glucophage 500 mg 100 stk", fest=("PKG9",))
    assert compare(listed, [dispensed(package, 5, rx="rx-1")], Origin.DISPENSING, NOW) == []


def test_a_dispensing_says_nothing_of_dosage() -> None:
    history = [SourceItem(METFORMIN, dosage="3 tabletter daglig", when=NOW, where="d")]
    assert compare([entry("e1", METFORMIN)], history, Origin.DISPENSING, NOW) == []


def test_a_dispensing_after_discontinuation_differs_in_status_one_before_does_not() -> None:
    listed = [entry("e1", METFORMIN, status="stopped", ended_days_ago=60)]
    assert compare(listed, [dispensed(METFORMIN, 90)], Origin.DISPENSING, NOW) == []
    (d,) = compare(
        listed, [dispensed(METFORMIN, 90), dispensed(METFORMIN, 10)], Origin.DISPENSING, NOW
    )
    assert (d.kind, d.entry_id) == (Kind.STATUS_DIFFERS, "e1")
    assert d.text.startswith("Metformin 500 mg er seponert på listen (")
    assert d.text.endswith(f"men utlevert {(NOW - timedelta(days=10)):%d.%m.%Y}")


def test_a_dispensing_joins_the_entry_in_use_rather_than_a_discontinued_one() -> None:
    listed = [
        entry("old", METFORMIN, status="stopped", ended_days_ago=60, rx=("rx-old",)),
        entry("new", METFORMIN),
    ]
    assert compare(listed, [dispensed(METFORMIN, 5, rx="rx-old")], Origin.DISPENSING, NOW) == []


# -- ids ---------------------------------------------------------------------------------------


def test_ids_are_stable_and_change_with_what_the_difference_says() -> None:
    listed = [entry("e1", METFORMIN, "1 tablett morgen"), entry("e2", ATORVASTATIN)]
    items = [item(METFORMIN, "2 tabletter morgen"), item(AMLODIPIN)]
    first = compare(listed, items, Origin.DISCHARGE, NOW)
    again = compare(list(reversed(listed)), list(reversed(items)), Origin.DISCHARGE, NOW)
    assert [d.id for d in first] == [d.id for d in again]
    assert len({d.id for d in first}) == 3
    moved = [entry("e1", METFORMIN, "1 tablett kveld"), entry("e2", ATORVASTATIN)]
    changed = compare(moved, items, Origin.DISCHARGE, NOW)
    dosage = next(d for d in changed if d.kind is Kind.DOSAGE_DIFFERS)
    assert dosage.id not in {d.id for d in first}
    # the other differences say the same as before, so they keep their ids
    assert {d.id for d in changed} - {dosage.id} <= {d.id for d in first}
    # another kind of source is another comparison
    other = compare(listed, items, Origin.PATIENT, NOW)
    assert not {d.id for d in other} & {d.id for d in first}


def test_two_identical_lines_get_two_ids() -> None:
    found = compare([], [item(AMLODIPIN), item(AMLODIPIN)], Origin.DISCHARGE, NOW)
    assert len(found) == 2
    assert found[1].id == f"{found[0].id}-2"
    assert accepted_ids([d.id for d in found]) == [d.id for d in found]


def test_accepted_ids_are_well_formed_and_named_once() -> None:
    (d,) = compare([], [item(AMLODIPIN)], Origin.DISCHARGE, NOW)
    with pytest.raises(InvalidInput, match="not the id of a difference") as bad:
        accepted_ids([d.id, "nonsense"])
    assert bad.value.expression == "accept[1]"
    with pytest.raises(InvalidInput, match="accepted twice"):
        accepted_ids([d.id, d.id], ["a", "b"])


# -- what accepting a difference does ----------------------------------------------------------


def test_accepting_each_kind_takes_the_sources_side() -> None:
    listed = [
        entry("dose", METFORMIN, "1 tablett morgen"),
        entry("gone", ATORVASTATIN),
        entry("paused", AMLODIPIN, status="active"),
        entry("ended", Drug("Sertralin", atc=("N06AB06",)), status="stopped", ended_days_ago=5),
    ]
    items = [
        item(METFORMIN, "2 tabletter morgen"),
        item(AMLODIPIN, status="on-hold"),
        item(Drug("Sertralin", atc=("N06AB06",))),
        item(Drug("Levaxin", atc=("H03AA01",))),
    ]
    found = {d.entry_id or d.drug.display: d for d in compare(listed, items, Origin.DISCHARGE, NOW)}
    missing = action(found["Levaxin"], Origin.DISCHARGE)
    assert missing.create is not None
    assert missing.create.drug.display == "Levaxin"
    gone = action(found["gone"], Origin.DISCHARGE)
    assert (gone.entry_id, gone.status, gone.reason) == (
        "gone",
        "stopped",
        "Samstemming: står ikke i epikrisen",
    )
    dose = action(found["dose"], Origin.DISCHARGE)
    assert dose.dosage is not None
    assert dose.dosage.dosage == "2 tabletter morgen"
    paused = action(found["paused"], Origin.DISCHARGE)
    assert (paused.status, paused.reason) == ("on-hold", "Samstemming: pauset i epikrisen")
    # a discontinued entry never comes back: the medicine becomes a new entry
    back = action(found["ended"], Origin.DISCHARGE)
    assert back.create is not None
    assert back.entry_id is None


def test_accepting_a_stop_gives_the_sources_reason_and_never_dispensed_says_so() -> None:
    stopped = SourceItem(METFORMIN, "stopped", where="x", reason="Bivirkninger")
    (d,) = compare([entry("e1", METFORMIN)], [stopped], Origin.DISCHARGE, NOW)
    assert action(d, Origin.DISCHARGE).reason == "Samstemming: seponert i epikrisen (Bivirkninger)"
    (n,) = compare([entry("e1", METFORMIN)], [], Origin.DISPENSING, NOW)
    assert action(n, Origin.DISPENSING).reason == "Samstemming: ikke utlevert siste 12 måneder"


def test_discontinuing_a_medicine_not_in_the_source_keeps_the_doctors_reason_first() -> None:
    (d,) = compare([entry("e1", METFORMIN)], [], Origin.DISPENSING, NOW)
    stopped = action(d, Origin.DISPENSING, "  Bivirkning ")
    assert (stopped.status, stopped.reason) == (
        "stopped",
        "Bivirkning (Samstemming: ikke utlevert siste 12 måneder)",
    )
    # bounded like the discontinuation page's reason; a blank one is no reason
    assert len(action(d, Origin.DISPENSING, "x" * 500).reason or "") < 250
    assert action(d, Origin.DISPENSING, " ").reason == "Samstemming: ikke utlevert siste 12 måneder"


# -- names as people write them (issue 16) -------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "listed"),
    [
        ("Paracet 500 mg", "Paracet Tab 500 mg"),
        ("Norvasc 5 mg", "Norvasc Tab 5 mg"),
        ("norvasc 5mg", "Norvasc Tab 5 mg"),
        ("Ventoline 0,1 mg/dose", "Ventoline Inh aerosol 0,1 mg/dose"),
        ("Paracet 1 g", "Paracet Tab 1000 mg"),
        ("Paracet", "Paracet Tab 500 mg"),
    ],
)
def test_a_typed_name_matches_the_entry_whatever_its_form_words(typed: str, listed: str) -> None:
    """The patient's "Paracet 500 mg" is the list's "Paracet Tab 500 mg": one medicine, not
    one missing on the list and one not in the source."""
    on_list = Drug(listed, fest=("ID_P",), atc=("N02BE01",))
    assert compare([entry("e1", on_list)], [item(Drug(typed))], Origin.PATIENT, NOW) == []


def test_two_strengths_are_never_one_medicine() -> None:
    on_list = Drug("Paracet Tab 500 mg", fest=("ID_P",), atc=("N02BE01",))
    for typed in (Drug("Paracet 1 g"), Drug("Paracetamol 1 g", atc=("N02BE01",))):
        found = compare([entry("e1", on_list)], [item(typed)], Origin.PATIENT, NOW)
        assert sorted(d.kind for d in found) == [Kind.MISSING_ON_LIST, Kind.NOT_IN_SOURCE]
