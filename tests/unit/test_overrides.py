"""An override as the list version keeps it: written and read back (DESIGN §3 rule 6)."""

from __future__ import annotations

from pll.domain.checks import Finding, Kind, Severity
from pll.domain.overrides import describe, parse

INTERACTION = Finding(
    Kind.INTERACTION,
    Severity.ERROR,
    "Interaksjon Zocor + Klacid (Bør unngås): Rabdomyolyse. Håndtering: Unngå.",
    ("e3", "e4"),
    "i1",
)
CAVE = Finding(
    Kind.CAVE,
    Severity.ERROR,
    "CAVE: pasienten har registrert reaksjon på penicillin; Apocillin er i ATC-gruppen J01C.",
    ("e7",),
    "r1",
)


def test_an_override_keeps_the_reason_and_each_finding_with_its_entries() -> None:
    reason = "Vurdert (overstyrt: sier legen) – kort kur"
    kept = describe(reason, [INTERACTION, CAVE])
    assert kept.startswith(reason)
    assert "interaction i1" in kept
    assert "cave r1" in kept
    read = parse(kept)
    assert read.reason == reason
    assert [(f.kind, f.code, f.entries) for f in read.findings] == [
        ("interaction", "i1", ("e3", "e4")),
        ("cave", "r1", ("e7",)),
    ]
    assert read.summaries == (
        "Interaksjon Zocor + Klacid (Bør unngås); "
        "CAVE: pasienten har registrert reaksjon på penicillin"
    )
    assert [f.code for f in read.concerning("e4")] == ["i1"]
    assert read.concerning("e9") == ()


def test_an_override_kept_before_findings_had_summaries_reads_back() -> None:
    read = parse("Vurdert (overstyrt: interaction i1; cave r1)")
    assert read.reason == "Vurdert"
    assert [(f.kind, f.code, f.entries) for f in read.findings] == [
        ("interaction", "i1", ()),
        ("cave", "r1", ()),
    ]
    assert parse("bare tekst").reason == "bare tekst"
