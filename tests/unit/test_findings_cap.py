"""What one answer carries of decision support's findings (issue 15): most severe first,
every blocking finding, the others up to ``MAX_FINDINGS`` in all, and one issue (or card)
that counts those left out."""

from __future__ import annotations

import pytest

from pll.domain import limits
from pll.domain.checks import Finding, Kind, Severity
from pll.fhir import findings


def finding(severity: Severity, n: int) -> Finding:
    kind = {Severity.ERROR: Kind.CAVE, Severity.WARNING: Kind.WITHDRAWN}.get(
        severity, Kind.NOT_CHECKED
    )
    return Finding(kind, severity, f"{severity.value} {n}", (f"e{n}",), f"c{n}")


def test_blocking_first_then_warnings_then_information() -> None:
    found = [
        finding(Severity.INFORMATION, 1),
        finding(Severity.WARNING, 2),
        finding(Severity.ERROR, 3),
        finding(Severity.INFORMATION, 4),
        finding(Severity.ERROR, 5),
    ]
    kept, left = findings.shown(found)
    assert [f.code for f in kept] == ["c3", "c5", "c2", "c1", "c4"]
    assert left is None
    assert findings.issues(found) == [findings.issue(f) for f in kept]


def test_past_the_cap_the_rest_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(findings, "MAX_FINDINGS", 2)
    found = [finding(Severity.INFORMATION, i) for i in range(3)]
    found += [finding(Severity.WARNING, 3), finding(Severity.ERROR, 4)]
    issues = findings.issues(found)
    assert [i["severity"] for i in issues] == ["error", "warning", "information"]
    assert issues[-1]["diagnostics"] == (
        "Svaret viser 2 av 5 funn; 3 er utelatt (3 til informasjon). "
        "Alle blokkerende funn vises, og de alvorligste funnene vises først."
    )
    ext = issues[-1]["extension"][0]["extension"]
    assert {e["url"]: e["valueInteger"] for e in ext} == {"total": 5, "shown": 2, "leftOut": 3}
    cards = findings.cards(found, "PLL")
    assert [c["indicator"] for c in cards] == ["critical", "warning", "info"]
    assert cards[-1]["summary"] == "3 funn til er utelatt"


def test_blocking_findings_are_never_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """An override must never cover a finding its author did not see (DESIGN §3 rule 6):
    past the cap, every blocking finding is still carried, and only the others are left
    out and counted."""
    monkeypatch.setattr(findings, "MAX_FINDINGS", 1)
    found = [finding(Severity.ERROR, 1), finding(Severity.ERROR, 2), finding(Severity.WARNING, 3)]
    kept, left = findings.shown(found)
    assert [f.code for f in kept] == ["c1", "c2"]
    assert left == findings.LeftOut(total=3, warnings=1, information=0)
    *carried, counted = findings.issues(found)
    assert [i["details"]["coding"][0]["display"] for i in carried] == ["c1", "c2"]
    assert counted["severity"] == "information"
    assert counted["diagnostics"] == (
        "Svaret viser 2 av 3 funn; 1 er utelatt (1 advarsel). "
        "Alle blokkerende funn vises, og de alvorligste funnene vises først."
    )
    cards = findings.cards(found, "PLL")
    assert [c["indicator"] for c in cards] == ["critical", "critical", "info"]
    assert cards[-1]["summary"] == "1 funn til er utelatt"


def test_with_the_real_cap_every_blocking_finding_is_carried() -> None:
    blocking = [finding(Severity.ERROR, i) for i in range(limits.MAX_FINDINGS + 30)]
    others = [finding(Severity.WARNING, i) for i in range(1000, 1010)]
    kept, left = findings.shown([*others, *blocking])
    assert kept == blocking
    assert left == findings.LeftOut(total=limits.MAX_FINDINGS + 40, warnings=10, information=0)
    # below the cap, warnings fill what blocking findings leave of it
    kept, left = findings.shown([*others, *blocking[:95]])
    assert kept == [*blocking[:95], *others[:5]]
    assert left == findings.LeftOut(total=105, warnings=5, information=0)


def test_no_findings_is_said() -> None:
    assert findings.outcome([])["issue"] == [
        {"severity": "information", "code": "informational", "diagnostics": "Ingen funn."}
    ]
