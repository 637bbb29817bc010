"""Decision-support findings as FHIR: OperationOutcome issues (and CDS Hooks cards).

Each finding is an issue with ``code`` ``business-rule`` (informational ones ``informational``),
its severity, the message in ``diagnostics``, the entries it concerns in ``expression``
(``MedicationStatement/<id>``) and what kind of finding it is, and its id, in
``details.coding`` (system :data:`FINDING`), so a client can tell them apart and override
the right ones.

One answer carries at most :data:`~pll.domain.limits.MAX_FINDINGS` findings, most severe
first (blocking, then warnings, then information; in the order the check found them within
each). When it leaves findings out, one more issue says so, last: ``details.coding`` code
:data:`LEFT_OUT`, a Norwegian message with the counts, and the counts as integers in the
extension :data:`EXT_LEFT_OUT` (``total``, ``shown``, ``leftOut``, ``blockingLeftOut``).
Blocking findings are only left out when there are more of them than the limit, and the
issue then says how many (with severity ``warning``); the total is also in the
``X-PLL-Findings`` header of a write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pll.domain.checks import Finding, Severity
from pll.domain.limits import MAX_FINDINGS
from pll.fhir.systems import PLL_BASE

FINDING = f"{PLL_BASE}/CodeSystem/check-finding"
#: The ``details.coding`` code of the issue that counts the findings an answer left out.
LEFT_OUT = "findings-left-out"
EXT_LEFT_OUT = f"{PLL_BASE}/StructureDefinition/check-findings-left-out"
#: The header that overrides blocking findings, with the reason (kept with the change).
OVERRIDE_HEADER = "X-PLL-Override"
#: The findings an override accepts (comma-separated finding codes, as ``details.coding
#: .display`` gives them): an override never covers a finding its author did not see.
OVERRIDE_FINDINGS_HEADER = "X-PLL-Override-Findings"
EXT_OVERRIDE = f"{PLL_BASE}/StructureDefinition/check-override"

_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFORMATION: 2}


@dataclass(frozen=True)
class LeftOut:
    """What an answer did not carry."""

    total: int
    blocking: int
    warnings: int
    information: int

    @property
    def count(self) -> int:
        return self.blocking + self.warnings + self.information

    @property
    def message(self) -> str:
        parts = [
            f"{n} {word}"
            for n, word in (
                (self.blocking, "blokkerende"),
                (self.warnings, "advarsler" if self.warnings != 1 else "advarsel"),
                (self.information, "til informasjon"),
            )
            if n
        ]
        text = (
            f"Svaret viser {self.total - self.count} av {self.total} funn; {self.count} er "
            f"utelatt ({', '.join(parts)}). De alvorligste funnene vises først."
        )
        if self.blocking:
            text += (
                f" OBS: {self.blocking} av de utelatte funnene er blokkerende; en endring "
                "som bringer dem, lagres bare når de er vurdert og overstyrt."
            )
        return text


def shown(found: list[Finding]) -> tuple[list[Finding], LeftOut | None]:
    """The findings one answer carries, most severe first, and what it leaves out."""
    ordered = sorted(found, key=lambda f: _RANK[f.severity])
    kept, rest = ordered[:MAX_FINDINGS], ordered[MAX_FINDINGS:]
    if not rest:
        return kept, None
    count = {s: sum(1 for f in rest if f.severity is s) for s in Severity}
    return kept, LeftOut(
        len(found), count[Severity.ERROR], count[Severity.WARNING], count[Severity.INFORMATION]
    )


def issue(finding: Finding) -> dict[str, Any]:
    return {
        "severity": finding.severity.value,
        "code": "informational" if finding.severity is Severity.INFORMATION else "business-rule",
        "details": {
            "coding": [{"system": FINDING, "code": finding.kind.value, "display": finding.code}],
            "text": finding.message,
        },
        "diagnostics": finding.message,
        "expression": [f"MedicationStatement/{e}" for e in finding.entries],
    }


def left_out_issue(left: LeftOut) -> dict[str, Any]:
    """The issue that says how many findings an answer left out."""
    return {
        "extension": [
            {
                "url": EXT_LEFT_OUT,
                "extension": [
                    {"url": "total", "valueInteger": left.total},
                    {"url": "shown", "valueInteger": left.total - left.count},
                    {"url": "leftOut", "valueInteger": left.count},
                    {"url": "blockingLeftOut", "valueInteger": left.blocking},
                ],
            }
        ],
        "severity": "warning" if left.blocking else "information",
        "code": "informational",
        "details": {"coding": [{"system": FINDING, "code": LEFT_OUT}], "text": left.message},
        "diagnostics": left.message,
    }


def issues(found: list[Finding]) -> list[dict[str, Any]]:
    """The findings as the issues of one answer: capped, with the count of the rest."""
    kept, left = shown(found)
    out = [issue(f) for f in kept]
    return [*out, left_out_issue(left)] if left else out


def outcome(found: list[Finding]) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": issues(found)
        or [{"severity": "information", "code": "informational", "diagnostics": "Ingen funn."}],
    }


def card(finding: Finding, source: str) -> dict[str, Any]:
    """A CDS Hooks card (https://cds-hooks.hl7.org/2.0/#card-attributes)."""
    indicator = {Severity.ERROR: "critical", Severity.WARNING: "warning"}.get(
        finding.severity, "info"
    )
    return {
        "summary": finding.message[:140],
        "detail": finding.message,
        "indicator": indicator,
        "source": {"label": source},
    }


def cards(found: list[Finding], source: str) -> list[dict[str, Any]]:
    """The findings as the cards of one CDS Hooks answer: capped as :func:`issues` is, the
    last card counting what was left out."""
    kept, left = shown(found)
    out = [card(f, source) for f in kept]
    if left is not None:
        out.append(
            {
                "summary": f"{left.count} funn til er utelatt"
                + (f", {left.blocking} av dem blokkerende" if left.blocking else ""),
                "detail": left.message,
                "indicator": "warning" if left.blocking else "info",
                "source": {"label": source},
            }
        )
    return out
