"""Decision support as pure functions: interactions, duplicates, CAVE, withdrawn drugs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from pll.domain import checks
from pll.domain.checks import (
    Drug,
    Finding,
    Interaction,
    Kind,
    Reaction,
    Severity,
    check,
    codes,
)

WARFARIN = Drug("e1", "Marevan", "B01AA03", frozenset({"s-warfarin"}))
IBUPROFEN = Drug("e2", "Ibux", "M01AE01", frozenset({"s-ibuprofen"}))
SIMVASTATIN = Drug("e3", "Zocor", "C10AA01", frozenset({"s-simva"}), "bg-simva")
CLARITHRO = Drug("e4", "Klacid", "J01FA09", frozenset({"s-clari"}))
METFORMIN = Drug("e5", "Glucophage", "A10BA02", frozenset({"s-metformin"}))

RULES = [
    Interaction(
        "i1", "1", "Rabdomyolyse.", "CYP3A4", "Unngå.", frozenset({"C10AA01"}), frozenset({"J01FA"})
    ),
    Interaction(
        "i2",
        "2",
        "Økt blødningsrisiko.",
        "",
        "Følg INR.",
        frozenset({"B01AA"}),
        frozenset({"M01AE01"}),
    ),
    Interaction(
        "i3", "3", "Liten effekt.", "", "Ingen.", frozenset({"A10BA02"}), frozenset({"M01A"})
    ),
]


def interactions_for(drug: Drug) -> Iterable[Interaction]:
    mine = set(codes(drug))
    return [r for r in RULES if mine & (r.group_a | r.group_b)]


def run(drugs: list[Drug], **kw: Any) -> list[Finding]:
    return check(
        drugs, interactions_for=interactions_for, not_assessed=lambda a: a == "A10BA02", **kw
    )


def test_interactions_by_relevance() -> None:
    found = {
        f.code: f
        for f in run([WARFARIN, IBUPROFEN, SIMVASTATIN, CLARITHRO, METFORMIN])
        if f.kind is Kind.INTERACTION
    }
    assert found["i1"].severity is Severity.ERROR
    assert found["i1"].blocking
    assert set(found["i1"].entries) == {"e3", "e4"}  # the group named at ATC level 4 matches
    assert found["i2"].severity is Severity.WARNING
    assert found["i3"].severity is Severity.INFORMATION
    assert "Følg INR" in found["i2"].message


def test_only_what_the_change_brings() -> None:
    findings = run([WARFARIN, IBUPROFEN, SIMVASTATIN, CLARITHRO], changed={"e1"})
    assert {f.code for f in findings} == {"i2"}


def test_not_assessed_is_reported_as_such() -> None:
    (finding,) = [f for f in run([METFORMIN]) if f.kind is Kind.NOT_ASSESSED]
    assert "ikke vurdert" in finding.message
    assert finding.severity is Severity.INFORMATION


def test_duplicates_by_substance_atc_and_exchange_group() -> None:
    same_substance = Drug("e9", "Warfarin Orion", "B01AA03", frozenset({"s-warfarin"}))
    same_atc = Drug("e8", "Other", "M01AE01", frozenset({"s-other"}))
    same_group = Drug("e7", "Simvastatin Sandoz", "C10AA99", frozenset({"s-x"}), "bg-simva")
    kinds = [
        f.message
        for f in run([WARFARIN, same_substance, IBUPROFEN, same_atc, SIMVASTATIN, same_group])
        if f.kind is Kind.DUPLICATE
    ]
    assert any("samme virkestoff" in m for m in kinds)
    assert any("samme ATC-kode M01AE01" in m for m in kinds)
    assert any("samme byttegruppe" in m for m in kinds)


def test_cave_by_substance_and_by_atc_class() -> None:
    reactions = [
        Reaction("r1", "ibuprofen", substance="s-ibuprofen"),
        Reaction("r2", "makrolider", atc="J01FA"),
    ]
    cave = [
        f
        for f in run([IBUPROFEN, CLARITHRO, METFORMIN], reactions=reactions)
        if f.kind is Kind.CAVE
    ]
    assert {(f.code, f.entries) for f in cave} == {("r1", ("e2",)), ("r2", ("e4",))}
    assert all(f.blocking for f in cave)


def test_withdrawn() -> None:
    gone = Drug("e6", "Gone", "N02BE01", active=False)
    (finding,) = [f for f in run([gone]) if f.kind is Kind.WITHDRAWN]
    assert finding.severity is Severity.WARNING
    assert not [f for f in run([WARFARIN]) if f.kind is Kind.WITHDRAWN]


def test_a_substance_without_atc_in_an_interaction() -> None:
    """FEST names some substances (herbal ones, say) by RefVirkestoff only."""
    herbal = Drug("e8", "Perikum", None, frozenset({"s-perikum"}))
    rule = Interaction(
        "i9", "1", "Redusert effekt.", "", "Unngå.", frozenset({"@s-perikum"}), frozenset({"B01AA"})
    )
    findings = check(
        [herbal, WARFARIN],
        interactions_for=lambda d: [rule] if set(codes(d)) & (rule.group_a | rule.group_b) else [],
        not_assessed=lambda a: False,
    )
    assert [(f.kind, f.code) for f in findings] == [(Kind.INTERACTION, "i9")]


def test_an_interaction_fest_gives_no_handling_does_not_end_in_an_empty_handling() -> None:
    rule = Interaction(
        "i7", "2", "Økt effekt.", "", " ", frozenset({"A10BA02"}), frozenset({"B01AA"})
    )
    also = Interaction(
        "i8", "3", "Liten effekt.", "", "", frozenset({"A10BA02"}), frozenset({"B01AA"})
    )
    findings = check(
        [METFORMIN, WARFARIN],
        interactions_for=lambda d: [rule, also] if {"A10BA02", "B01AA03"} & set(codes(d)) else [],
        not_assessed=lambda a: False,
    )
    (finding,) = [f for f in findings if f.kind is Kind.INTERACTION]
    assert "Håndtering" not in finding.message
    assert finding.message.endswith("Økt effekt. Også (Ingen tiltak nødvendig): Liten effekt.")


def test_a_medicine_named_by_text_only_is_reported_unchecked() -> None:
    (finding,) = run([Drug("e9", "Ukjent urtepreparat")])
    assert finding.kind is Kind.NOT_CHECKED


# -- each finding once, and work that grows with the list, not its square (issue 15) --------


def simvastatins(n: int, start: int = 0) -> list[Drug]:
    return [
        Drug(f"s{i}", f"Simvastatin {i}", "C10AA01", frozenset({"s-simva"}), "bg-simva")
        for i in range(start, start + n)
    ]


def clarithromycins(n: int) -> list[Drug]:
    return [
        Drug(f"c{i}", f"Klaritromycin {i}", "J01FA09", frozenset({"s-clari"})) for i in range(n)
    ]


class Counted:
    """``interactions_for`` that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, drug: Drug) -> Iterable[Interaction]:
        self.calls += 1
        return interactions_for(drug)


def test_a_group_of_the_same_substance_is_one_finding() -> None:
    drugs = simvastatins(300)
    (dup,) = [f for f in run(drugs) if f.kind is Kind.DUPLICATE]
    assert len(dup.entries) == 300
    # the strongest reason, once: not again for the same ATC code or exchange group
    assert "(samme virkestoff)" in dup.message
    assert dup.message.startswith("Mulig dobbeltforskrivning: Simvastatin 0, Simvastatin 1, ")
    assert "og 290 andre" in dup.message  # a warning: ten names spelled out, the rest counted
    three = [f for f in run(drugs[:3]) if f.kind is Kind.DUPLICATE]
    assert [f.message for f in three] == [
        "Mulig dobbeltforskrivning: Simvastatin 0, Simvastatin 1 og Simvastatin 2 "
        "(samme virkestoff)."
    ]


def test_a_weaker_reason_is_reported_when_it_groups_other_drugs() -> None:
    """Two simvastatins share their substance; a third drug shares only their ATC code: the
    substance group, and the larger ATC group, each once."""
    other = Drug("x", "Annen statin", "C10AA01", frozenset({"s-other"}))
    found = [f for f in run([*simvastatins(2), other]) if f.kind is Kind.DUPLICATE]
    assert sorted((f.entries, f.message.split("(")[-1]) for f in found) == [
        (("s0", "s1"), "samme virkestoff)."),
        (("s0", "s1", "x"), "samme ATC-kode C10AA01)."),
    ]


def test_a_combination_product_is_a_duplicate_of_each_part_not_the_parts_of_each_other() -> None:
    losartan = Drug("l", "Losartan", "C09CA01", frozenset({"s-losartan"}))
    diuretic = Drug("h", "Hydroklortiazid", "C03AA03", frozenset({"s-hct"}))
    combined = Drug("k", "Losartan/HCT", "C09DA01", frozenset({"s-losartan", "s-hct"}))
    found = {f.entries for f in run([losartan, diuretic, combined]) if f.kind is Kind.DUPLICATE}
    assert found == {("l", "k"), ("h", "k")}


def test_an_interaction_is_one_finding_naming_the_drugs_on_each_side() -> None:
    found = [f for f in run([*simvastatins(3), *clarithromycins(2)]) if f.kind is Kind.INTERACTION]
    (i1,) = found
    assert i1.code == "i1"
    assert i1.blocking
    assert i1.entries == ("s0", "s1", "s2", "c0", "c1")
    assert i1.message.startswith(
        "Interaksjon Simvastatin 0, Simvastatin 1 og Simvastatin 2 + Klaritromycin 0 og "
        "Klaritromycin 1 (Bør unngås): Rabdomyolyse."
    )


def test_a_blocking_finding_names_every_drug_it_concerns() -> None:
    """An override is given for what the message says: a blocking interaction or CAVE names
    all its drugs, however many; a warning names ten and counts the rest."""
    drugs = [*simvastatins(40), *clarithromycins(2)]
    statins = ", ".join(f"Simvastatin {i}" for i in range(39)) + " og Simvastatin 39"
    reactions = [Reaction("r1", "statiner", atc="C10AA")]
    found = {f.kind: f for f in reversed(run(drugs, reactions=reactions))}  # first of each
    assert found[Kind.INTERACTION].blocking
    assert found[Kind.INTERACTION].message.startswith(
        f"Interaksjon {statins} + Klaritromycin 0 og Klaritromycin 1 (Bør unngås)"
    )
    assert found[Kind.CAVE].blocking
    assert found[Kind.CAVE].message.endswith(f"; {statins} er i ATC-gruppen C10AA.")
    assert "og 30 andre" in found[Kind.DUPLICATE].message
    # an interaction that only warns keeps the count
    warned = Interaction(
        "i1", "2", "Rabdomyolyse.", "", "Følg.", frozenset({"C10AA01"}), frozenset({"J01FA"})
    )
    warning, *_ = check(drugs, interactions_for=lambda _: [warned], not_assessed=lambda a: False)
    assert not warning.blocking
    assert warning.message.startswith(
        "Interaksjon Simvastatin 0, Simvastatin 1, Simvastatin 2, Simvastatin 3, Simvastatin 4, "
        "Simvastatin 5, Simvastatin 6, Simvastatin 7, Simvastatin 8, Simvastatin 9 og 30 andre + "
    )


def test_with_changed_an_interaction_names_the_pairs_the_change_brings() -> None:
    """A new macrolide meets every simvastatin; the macrolide already on the list is not
    named, because the change did not bring its pairs."""
    drugs = [*simvastatins(2), *clarithromycins(2)]
    (i1,) = [f for f in run(drugs, changed={"c1"}) if f.kind is Kind.INTERACTION]
    assert i1.entries == ("s0", "s1", "c1")
    # a change on both sides: every pair but old with old, so both sides whole
    (both,) = [f for f in run(drugs, changed={"s0", "c1"}) if f.kind is Kind.INTERACTION]
    assert set(both.entries) == {"s0", "s1", "c0", "c1"}
    # the new simvastatin joins the substance group: the whole group, once
    (dup,) = [f for f in run(drugs, changed={"s1"}) if f.kind is Kind.DUPLICATE]
    assert dup.entries == ("s0", "s1")
    assert run(drugs, changed={"nothing"}) == []


def test_a_drug_in_both_groups_of_an_interaction_does_not_interact_with_itself() -> None:
    rule = Interaction(
        "i8", "2", "Serotonergt.", "", "Følg.", frozenset({"N06A"}), frozenset({"N06AB"})
    )

    def rules(_: Drug) -> list[Interaction]:
        return [rule]

    sertraline = Drug("e1", "Sertralin", "N06AB06", frozenset({"s-sert"}))
    alone = check([sertraline], interactions_for=rules, not_assessed=lambda a: False)
    assert alone == []
    mirtazapine = Drug("e2", "Mirtazapin", "N06AX11", frozenset({"s-mirt"}))
    (found,) = check(
        [sertraline, mirtazapine], interactions_for=rules, not_assessed=lambda a: False
    )
    assert set(found.entries) == {"e1", "e2"}


SEROTONERGIC = Interaction(
    "i8", "2", "Serotonergt syndrom.", "", "Følg.", frozenset({"N06AB"}), frozenset({"N06A"})
)
SERTRALINE = Drug("n1", "Sertralin", "N06AB06", frozenset({"s-sert"}))
FLUOXETINE = Drug("n2", "Fluoksetin", "N06AB03", frozenset({"s-fluo"}))
MIRTAZAPINE = Drug("n3", "Mirtazapin", "N06AX11", frozenset({"s-mirt"}))


def serotonergic(drugs: list[Drug], rule: Interaction = SEROTONERGIC) -> Finding:
    (found,) = check(drugs, interactions_for=lambda _: [rule], not_assessed=lambda a: False)
    return found


@pytest.mark.parametrize(
    ("drugs", "said"),
    [
        # an SSRI is in both groups: it is named once, with what it interacts with
        ([SERTRALINE, MIRTAZAPINE], "Interaksjon Sertralin + Mirtazapin (Ta forholdsregler)"),
        # two SSRIs interact with each other as well as with mirtazapine
        (
            [SERTRALINE, FLUOXETINE, MIRTAZAPINE],
            "Interaksjon Sertralin og Fluoksetin (også innbyrdes) + Mirtazapin (Ta",
        ),
        # only drugs in both groups: with each other
        ([SERTRALINE, FLUOXETINE], "Interaksjon innbyrdes mellom Sertralin og Fluoksetin (Ta"),
    ],
    ids=["one-in-both", "two-in-both", "only-in-both"],
)
def test_a_drug_in_both_groups_is_named_once_with_what_it_interacts_with(
    drugs: list[Drug], said: str
) -> None:
    found = serotonergic(drugs)
    assert found.message.startswith(said)
    for drug in drugs:
        assert found.message.count(drug.name) == 1
    assert found.entries == tuple(d.entry for d in drugs)


def test_a_drug_in_both_groups_beside_drugs_on_each_side() -> None:
    """Group A tramadol and the SSRIs, group B the antidepressants: tramadol + mirtazapine,
    and sertraline with both sides."""
    tramadol = Drug("n4", "Tramadol", "N02AX02", frozenset({"s-tram"}))
    rule = Interaction(
        "i9",
        "1",
        "Serotonergt.",
        "",
        "Unngå.",
        frozenset({"N02AX02", "N06AB"}),
        frozenset({"N06A"}),
    )
    found = serotonergic([tramadol, SERTRALINE, MIRTAZAPINE], rule)
    assert found.message.startswith(
        "Interaksjon Tramadol + Mirtazapin; Sertralin med begge sider (Bør unngås)"
    )
    assert set(found.entries) == {"n1", "n3", "n4"}
    two = serotonergic([tramadol, SERTRALINE, FLUOXETINE, MIRTAZAPINE], rule)
    assert two.message.startswith(
        "Interaksjon Tramadol + Mirtazapin; Sertralin og Fluoksetin med begge sider og "
        "innbyrdes (Bør unngås)"
    )


def test_cave_is_one_finding_per_reaction_naming_every_drug_it_concerns() -> None:
    reactions = [
        Reaction("r1", "statiner", atc="C10AA"),
        Reaction("r2", "klaritromycin", substance="s-clari"),
    ]
    cave = [
        f
        for f in run([*simvastatins(40), *clarithromycins(2)], reactions=reactions)
        if f.kind is Kind.CAVE
    ]
    assert [(f.code, len(f.entries), f.blocking) for f in cave] == [
        ("r1", 40, True),
        ("r2", 2, True),
    ]
    assert cave[1].message == (
        "CAVE: pasienten har registrert reaksjon på klaritromycin; Klaritromycin 0 og "
        "Klaritromycin 1 har samme virkestoff."
    )
    # with changed: the drugs the change brings
    (new,) = run(simvastatins(3), reactions=reactions[:1], changed={"s2"})[-1:]
    assert (new.kind, new.entries) == (Kind.CAVE, ("s2",))


def test_the_work_grows_with_the_list_not_its_square(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted, not timed: ``interactions_for`` is asked once per drug (once per changed
    drug with ``changed``), and the findings built do not grow with the list when what it
    holds is of the same kinds."""
    built: list[Finding] = []

    def counting(*args: Any, **kwargs: Any) -> Finding:
        found = Finding(*args, **kwargs)
        built.append(found)
        return found

    monkeypatch.setattr(checks, "Finding", counting)
    sizes = {}
    for n in (10, 100, 1000):
        built.clear()
        counted = Counted()
        drugs = [*simvastatins(n), *clarithromycins(n)]
        check(drugs, interactions_for=counted, not_assessed=lambda a: False)
        assert counted.calls == 2 * n
        sizes[n] = len(built)
        counted = Counted()
        check(drugs, interactions_for=counted, not_assessed=lambda a: False, changed={"c0"})
        assert counted.calls == 1
    # one interaction and two duplicate groups, whatever the list's length
    assert sizes == {10: 3, 100: 3, 1000: 3}


def test_the_same_drugs_under_two_fest_interactions_are_one_finding() -> None:
    """FEST may name one pair twice (a substance rule and a class rule, relevance 2 and 1):
    one finding, as severe as the worse, saying both; seen as the same pair twice with two
    severities after a renewal."""
    rules = [
        Interaction(
            "i-class",
            "2",
            "Økt risiko.",
            "",
            "Følg opp.",
            frozenset({"J01FA"}),
            frozenset({"C10AA"}),
        ),
        Interaction(
            "i-substance",
            "1",
            "Rabdomyolyse.",
            "",
            "Unngå.",
            frozenset({"C10AA01"}),
            frozenset({"J01FA09"}),
        ),
    ]
    found = [
        f
        for f in check(
            [SIMVASTATIN, CLARITHRO],
            interactions_for=lambda d: [
                r for r in rules if set(codes(d)) & (r.group_a | r.group_b)
            ],
            not_assessed=lambda a: False,
        )
        if f.kind is Kind.INTERACTION
    ]
    assert len(found) == 1
    (one,) = found
    assert one.severity is Severity.ERROR
    assert one.code == "i-substance"
    assert one.message.startswith("Interaksjon Zocor + Klacid (Bør unngås): Rabdomyolyse.")
    assert "Også (Ta forholdsregler): Økt risiko. Håndtering: Følg opp." in one.message
