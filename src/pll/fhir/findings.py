"""Decision-support findings as FHIR: OperationOutcome issues (and CDS Hooks cards).

Each finding is an issue with ``code`` ``business-rule`` (informational ones ``informational``),
its severity, the message in ``diagnostics``, the entries it concerns in ``expression``
(``MedicationStatement/<id>``) and what kind of finding it is, and its id, in
``details.coding`` (system :data:`FINDING`), so a client can tell them apart and override
the right ones.

One answer carries every blocking finding, and warnings and information up to
:data:`~pll.domain.limits.MAX_FINDINGS` findings in all, most severe first (blocking, then
warnings, then information; in the order the check found them within each). A blocking
finding is never left out: an override names the findings it accepts, and must never cover
one its author did not see (DESIGN §3 rule 6); their number is bounded by the list's size
(see :data:`~pll.domain.limits.MAX_FINDINGS`). When an answer leaves findings out, one more
issue says so, last: ``details.coding`` code :data:`LEFT_OUT`, a Norwegian message with the
counts, and the counts as integers in the extension :data:`EXT_LEFT_OUT` (``total``,
``shown``, ``leftOut``). The total is also in the ``X-PLL-Findings`` header of a write.
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
    """What an answer did not carry: warnings and information, never a blocking finding."""

    total: int
    warnings: int
    information: int

    @property
    def count(self) -> int:
        return self.warnings + self.information

    @property
    def message(self) -> str:
        parts = [
            f"{n} {word}"
            for n, word in (
                (self.warnings, "advarsler" if self.warnings != 1 else "advarsel"),
                (self.information, "til informasjon"),
            )
            if n
        ]
        return (
            f"Svaret viser {self.total - self.count} av {self.total} funn; {self.count} er "
            f"utelatt ({', '.join(parts)}). Alle blokkerende funn vises, og de alvorligste "
            "funnene vises først."
        )


def shown(found: list[Finding]) -> tuple[list[Finding], LeftOut | None]:
    """The findings one answer carries, most severe first, and what it leaves out: every
    blocking finding, then the others while the answer holds fewer than
    :data:`MAX_FINDINGS`."""
    ordered = sorted(found, key=lambda f: _RANK[f.severity])
    room = max(MAX_FINDINGS, sum(1 for f in found if f.blocking))
    kept, rest = ordered[:room], ordered[room:]
    if not rest:
        return kept, None
    count = {s: sum(1 for f in rest if f.severity is s) for s in Severity}
    return kept, LeftOut(len(found), count[Severity.WARNING], count[Severity.INFORMATION])


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
                ],
            }
        ],
        "severity": "information",
        "code": "informational",
        "details": {"coding": [{"system": FINDING, "code": LEFT_OUT}], "text": left.message},
        "diagnostics": left.message,
    }


def issues(found: list[Finding]) -> list[dict[str, Any]]:
    """The findings as the issues of one answer: every blocking one, the others capped, with
    the count of those left out."""
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
                "summary": f"{left.count} funn til er utelatt",
                "detail": left.message,
                "indicator": "info",
                "source": {"label": source},
            }
        )
    return out
