"""FHIR ``OperationOutcome`` for every refusal (DESIGN §3 rule 8).

See https://hl7.org/fhir/R4/operationoutcome.html: ``issue.code`` from the IssueType value
set, ``diagnostics`` says what was wrong, ``expression`` says where.
"""

from __future__ import annotations

from typing import Any

from pll.domain.errors import (
    ChecksRefused,
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionRequired,
    RuleRefused,
    Unavailable,
    VersionConflict,
)
from pll.fhir.systems import EXT_OUTCOME_DETAIL

_ISSUE_CODE: list[tuple[type[DomainError], str]] = [
    (InvalidInput, "invalid"),
    (NotFound, "not-found"),
    (VersionConflict, "conflict"),
    (Conflict, "business-rule"),
    (ChecksRefused, "business-rule"),
    (RuleRefused, "business-rule"),
    (PreconditionRequired, "required"),
    (Forbidden, "forbidden"),
    (Unavailable, "transient"),
]


def issue(
    message: str,
    expression: str | None = None,
    code: str = "invalid",
    severity: str = "error",
) -> dict[str, Any]:
    item: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": message}
    if expression:
        item["expression"] = [expression]
    return item


def outcome(*issues: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": list(issues)}


def from_error(error: DomainError) -> dict[str, Any]:
    """The OperationOutcome that tells a client what it did wrong and where."""
    code = next((c for kind, c in _ISSUE_CODE if isinstance(error, kind)), "processing")
    first = issue(error.message, error.expression, code)
    if error.details:
        first["extension"] = [
            {"url": EXT_OUTCOME_DETAIL, "extension": [{"url": k, "valueString": v}]}
            for k, v in error.details.items()
        ]
    rest = [issue(m, e, code) for m, e in error.others]
    result = outcome(first, *rest, *error.issues)
    if error.resources:
        result = {"resourceType": "OperationOutcome", "contained": error.resources, **result}
    return result
