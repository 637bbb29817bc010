"""Decision-support findings as FHIR: OperationOutcome issues (and CDS Hooks cards).

Each finding is an issue with ``code`` ``business-rule`` (informational ones ``informational``),
its severity, the message in ``diagnostics``, the entries it concerns in ``expression``
(``MedicationStatement/<id>``) and what kind of finding it is, and its id, in
``details.coding`` (system :data:`FINDING`), so a client can tell them apart and override
the right ones.
"""

from __future__ import annotations

from typing import Any

from pll.domain.checks import Finding, Severity
from pll.fhir.systems import PLL_BASE

FINDING = f"{PLL_BASE}/CodeSystem/check-finding"
#: The header that overrides blocking findings, with the reason (kept with the change).
OVERRIDE_HEADER = "X-PLL-Override"
#: The findings an override accepts (comma-separated finding codes, as ``details.coding
#: .display`` gives them): an override never covers a finding its author did not see.
OVERRIDE_FINDINGS_HEADER = "X-PLL-Override-Findings"
EXT_OVERRIDE = f"{PLL_BASE}/StructureDefinition/check-override"


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


def outcome(findings: list[Finding]) -> dict[str, Any]:
    issues = [issue(f) for f in findings] or [
        {"severity": "information", "code": "informational", "diagnostics": "Ingen funn."}
    ]
    return {"resourceType": "OperationOutcome", "issue": issues}


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
