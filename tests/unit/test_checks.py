"""Decision support as pure functions: interactions, duplicates, CAVE, withdrawn drugs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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


def test_a_medicine_named_by_text_only_is_reported_unchecked() -> None:
    (finding,) = run([Drug("e9", "Ukjent urtepreparat")])
    assert finding.kind is Kind.NOT_CHECKED
