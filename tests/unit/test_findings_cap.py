"""What one answer carries of decision support's findings (issue 15): most severe first, at
most ``MAX_FINDINGS``, and one issue (or card) that counts the rest."""

from __future__ import annotations

import pytest

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
        "De alvorligste funnene vises først."
    )
    cards = findings.cards(found, "PLL")
    assert [c["indicator"] for c in cards] == ["critical", "warning", "info"]
    assert cards[-1]["summary"] == "3 funn til er utelatt"


def test_blocking_findings_left_out_are_named_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(findings, "MAX_FINDINGS", 1)
    found = [finding(Severity.ERROR, 1), finding(Severity.ERROR, 2), finding(Severity.WARNING, 3)]
    *_, counted = findings.issues(found)
    assert counted["severity"] == "warning"
    assert counted["diagnostics"].startswith(
        "Svaret viser 1 av 3 funn; 2 er utelatt (1 blokkerende, 1 advarsel)."
    )
    assert "OBS: 1 av de utelatte funnene er blokkerende" in counted["diagnostics"]
    assert (
        findings.cards(found, "PLL")[-1]["summary"] == "2 funn til er utelatt, 1 av dem blokkerende"
    )


def test_no_findings_is_said() -> None:
    assert findings.outcome([])["issue"] == [
        {"severity": "information", "code": "informational", "diagnostics": "Ingen funn."}
    ]
