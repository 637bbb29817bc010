"""Technical cases in FHIR terms: a ``Task`` with ``code`` ``technical``
(https://hl7.org/fhir/R4/task.html), shaped like a discrepancy case (:mod:`pll.fhir.cases`):

- ``focus``: the client system, a ``Device`` named by its client id (identifier system
  :data:`CLIENT_ID`), with the register's name and vendor as ``display``;
- ``for``: the Patient, only when the case is about one;
- ``owner``: the operator's organisation (or PLL's own operations), ``requester``: who
  reported it (PLL itself for a failing subscription);
- ``restriction.period.end``: the deadline; ``meta.tag`` ``overdue`` (system
  :data:`CASE_FLAG`) when a read finds it still open past it.

A case about a patient is shown to the operator without the patient and without its free
text (:func:`task` with ``redacted``): the operator may see no personal data, and the
description and comments are written by people who may have named the patient.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pll.domain.cases import Step
from pll.domain.errors import InvalidInput
from pll.domain.model import Role
from pll.domain.technical_cases import TITLE, ClientSystem, TechnicalCase
from pll.fhir import systems
from pll.fhir.cases import (
    CASE_CODE_SYSTEM,
    EXT_ACTION,
    EXT_HANDLER,
    EXT_RECIPIENT,
    TASK_STATUS,
)
from pll.fhir.cases import owner as owner_reference
from pll.fhir.resources import author_reference, instant
from pll.fhir.validate import validate

#: The identifier system of a client system's client id (HelseID's ``client_id`` claim).
CLIENT_ID = f"{systems.PLL_BASE}/NamingSystem/client-id"
KIND = "technical"
CODE = {
    "coding": [{"system": CASE_CODE_SYSTEM, "code": KIND, "display": TITLE}],
    "text": TITLE,
}
#: What replaces free text the operator may not see.
WITHHELD = (
    "Saken gjelder en pasient: teksten vises bare for helsepersonell med tilgang til pasienten."
)
_REPORTED = frozenset(
    [
        "resourceType",
        "id",
        "meta",
        "text",
        "status",
        "intent",
        "code",
        "focus",
        "for",
        "description",
    ]
)


@dataclass(frozen=True)
class TechnicalReport:
    """What a report of a technical case names."""

    client_id: str
    patient_id: str | None
    description: str | None


def is_technical(data: Any) -> bool:
    """Whether a ``POST Task`` body reports a technical case (its ``code`` says so)."""
    if not isinstance(data, dict):
        return False
    code = data.get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    return isinstance(codings, list) and any(
        isinstance(c, dict) and c.get("system") == CASE_CODE_SYSTEM and c.get("code") == KIND
        for c in codings
    )


def report_request(data: Any) -> TechnicalReport:
    """``POST Task`` with ``code`` technical: status ``requested``, intent ``order``,
    ``focus`` the client system (``identifier`` system :data:`CLIENT_ID`), a
    ``description``, and optionally ``for`` the Patient."""
    task = validate(data, "Task")
    for key in sorted(task):
        if key not in _REPORTED:
            raise InvalidInput(
                f"PLL sets Task.{key} itself (owner: the client system's operator; requester: "
                "you); a report gives status, intent, code, focus, for and description.",
                f"Task.{key}",
            )
    if task.get("status") != "requested":
        raise InvalidInput("A new case has status 'requested'.", "Task.status")
    if task.get("intent") != "order":
        raise InvalidInput("A case is a Task with intent 'order'.", "Task.intent")
    ident = (task.get("focus") or {}).get("identifier") or {}
    client_id = str(ident.get("value") or "").strip()
    if ident.get("system") != CLIENT_ID or not client_id:
        raise InvalidInput(
            "Name the client system in Task.focus: an identifier with system "
            f"{CLIENT_ID} and its client id as value.",
            "Task.focus",
        )
    patient_id = None
    if "for" in task:
        subject = str(task["for"].get("reference") or "")
        if not re.fullmatch(r"Patient/[A-Za-z0-9\-.]{1,64}", subject):
            raise InvalidInput("Task.for names the patient: Patient/<id>.", "Task.for")
        patient_id = subject.removeprefix("Patient/")
    return TechnicalReport(client_id[:120], patient_id, task.get("description"))


def focus(client_id: str, client: ClientSystem | None) -> dict[str, Any]:
    shown = f"{client.name} ({client.vendor})" if client else f"{client_id} (ikke registrert)"
    return {
        "type": "Device",
        "identifier": {"system": CLIENT_ID, "value": client_id},
        "display": shown,
    }


def task(
    case: TechnicalCase,
    steps: list[Step],
    client: ClientSystem | None,
    *,
    redacted: bool = False,
) -> dict[str, Any]:
    """The case as a Task at its current version; ``redacted``: as an operator sees a case
    about a patient (no patient, no free text but the operators' own)."""
    extensions = [{"url": EXT_RECIPIENT, "valueReference": author_reference(case.recipient.person)}]
    if case.handler is not None:
        extensions.append({"url": EXT_HANDLER, "valueReference": author_reference(case.handler)})

    def text(step: Step | None, value: str) -> str:
        if not redacted or (step is not None and step.by.role is Role.OPERATOR):
            return value
        return WITHHELD

    resource: dict[str, Any] = {
        "resourceType": "Task",
        "id": case.id,
        "meta": {"versionId": str(case.version), "lastUpdated": instant(case.updated_at)},
        "extension": extensions,
        "status": TASK_STATUS[case.status],
    }
    last = steps[-1] if steps else None
    if case.status.closed and last is not None and last.comment:
        resource["statusReason"] = {"text": text(last, last.comment)}
    resource |= {
        "businessStatus": {"text": case.status.norwegian},
        "intent": "order",
        "code": CODE,
        "description": text(None, case.description),
        "focus": focus(case.client_id, client),
    }
    if case.patient_id is not None and not redacted:
        resource["for"] = {"reference": f"Patient/{case.patient_id}"}
    resource |= {
        "authoredOn": instant(case.reported_at),
        "lastModified": instant(case.updated_at),
        "requester": author_reference(case.reporter),
        "owner": owner_reference(case.recipient),
        "restriction": {"period": {"end": instant(case.due_at)}},
    }
    notes = [
        {
            "extension": [{"url": EXT_ACTION, "valueCode": step.action.value}],
            "authorReference": author_reference(step.by),
            "time": instant(step.at),
            "text": text(step, step.comment),
        }
        for step in steps
        if step.comment
    ]
    if notes:
        resource["note"] = notes
    return resource
