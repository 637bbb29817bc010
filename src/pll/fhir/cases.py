"""Discrepancy cases in FHIR terms: a case is a ``Task`` (https://hl7.org/fhir/R4/task.html).

- ``status``: ``requested`` (open), ``in-progress`` (taken), ``completed`` (resolved),
  ``rejected``, ``cancelled`` (withdrawn by the reporter); ``businessStatus`` in Norwegian;
- ``intent`` ``order``; ``code`` "Avvik i legemiddellisten";
- ``focus``: the List or the MedicationStatement reported, at the version the reporter saw;
  for a case about giving the medicines (``code`` ``administration``) the
  ``MedicationAdministration`` at the version seen, or the planned dose missed by its
  identifier (system ``…/NamingSystem/planned-dose``, the schedule's key); ``for``: the
  Patient;
- ``requester``: who reported it; ``owner``: the organisation it went to (organisation
  number and name), with the person in the extension ``case-recipient`` and whoever took
  it in ``case-handler``;
- ``authoredOn``, ``lastModified``, ``description``; each comment is a ``note``, marked with
  the action it came with (extension ``case-action``).

Reading a report (:func:`report_request`) and the operations' ``Parameters``
(:func:`comment_request`) happens here; nothing here touches a database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pll.domain.cases import TITLE, Action, Case, Kind, Recipient, Status, Step
from pll.domain.errors import InvalidInput
from pll.domain.model import Author
from pll.fhir import systems
from pll.fhir.administration import PLANNED_DOSE
from pll.fhir.parameters import parameters
from pll.fhir.resources import author_reference, instant
from pll.fhir.validate import validate

CASE_CODE_SYSTEM = f"{systems.PLL_BASE}/CodeSystem/case-type"
#: The focus type of a planned dose named by its identifier (not a stored resource).
PLANNED = "planned-dose"
EXT_RECIPIENT = f"{systems.PLL_BASE}/StructureDefinition/case-recipient"
EXT_HANDLER = f"{systems.PLL_BASE}/StructureDefinition/case-handler"
EXT_ACTION = f"{systems.PLL_BASE}/StructureDefinition/case-action"
CODE = {
    "coding": [{"system": CASE_CODE_SYSTEM, "code": "discrepancy", "display": TITLE}],
    "text": TITLE,
}
#: ``Task.code`` of each kind of case.
CODES = {
    kind: {
        "coding": [{"system": CASE_CODE_SYSTEM, "code": kind.value, "display": kind.shown}],
        "text": kind.shown,
    }
    for kind in Kind
}
#: The focus types of each kind of case; a planned dose is named by its identifier.
_KIND_OF = {
    "List": Kind.DISCREPANCY,
    "MedicationStatement": Kind.DISCREPANCY,
    "MedicationAdministration": Kind.ADMINISTRATION,
    PLANNED: Kind.ADMINISTRATION,
}
#: The case's status as ``Task.status``.
TASK_STATUS = {
    Status.OPEN: "requested",
    Status.IN_PROGRESS: "in-progress",
    Status.RESOLVED: "completed",
    Status.REJECTED: "rejected",
    Status.WITHDRAWN: "cancelled",
}
#: ``Task.meta.tag`` system of the flags PLL puts on a case as it is read.
CASE_FLAG = f"{systems.PLL_BASE}/CodeSystem/case-flag"
OVERDUE_TAG = {"system": CASE_FLAG, "code": "overdue", "display": "Fristen er overskredet"}
STATUS_OF = {code: status for status, code in TASK_STATUS.items()}
_FOCUS = re.compile(
    r"(?P<type>List|MedicationStatement|MedicationAdministration)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/(?P<v>\d{1,9}))?"
)
#: What a report may say; PLL sets the rest (owner, requester, dates, notes) itself.
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
class Reported:
    """What a report names: the List or entry, the version seen, the patient, what is wrong."""

    focus_type: str
    focus_id: str
    version: int | None
    patient_id: str | None
    description: str | None

    @property
    def entry_id(self) -> str | None:
        return self.focus_id if self.focus_type == "MedicationStatement" else None

    @property
    def kind(self) -> Kind:
        return _KIND_OF[self.focus_type]


def report_request(data: Any) -> Reported:
    """``POST Task``: a Task with status ``requested``, intent ``order``, ``focus`` the List
    or a MedicationStatement (optionally ``/_history/<version>``, the version seen), and a
    ``description`` of what is wrong; ``for`` may name the patient."""
    task = validate(data, "Task")
    for key in sorted(task):
        if key not in _REPORTED:
            raise InvalidInput(
                f"PLL sets Task.{key} itself (owner: the responsible prescriber's organisation; "
                "requester: you); a report gives status, intent, code, focus, for and "
                "description.",
                f"Task.{key}",
            )
    if task.get("status") != "requested":
        raise InvalidInput("A new case has status 'requested'.", "Task.status")
    if task.get("intent") != "order":
        raise InvalidInput("A case is a Task with intent 'order'.", "Task.intent")
    focus = task.get("focus") or {}
    ref = str(focus.get("reference") or "")
    ident = focus.get("identifier") or {}
    found = _FOCUS.fullmatch(ref)
    if not ref and ident.get("system") == PLANNED_DOSE and ident.get("value"):
        focus_type, focus_id, version = PLANNED, str(ident["value"])[:160], None
    elif found is not None:
        focus_type, focus_id = found["type"], found["id"]
        version = int(found["v"]) if found["v"] else None
    else:
        raise InvalidInput(
            "Name what is wrong in Task.focus: List/<id> (the list as a whole) or "
            "MedicationStatement/<id> (one entry), optionally /_history/<version seen>; "
            "for a missed or wrong administration MedicationAdministration/<id> or the "
            f"planned dose as identifier (system {PLANNED_DOSE}, the schedule's key).",
            "Task.focus",
        )
    kind = _KIND_OF[focus_type]
    code = task.get("code")
    if code is not None:
        codings = [(c.get("system"), c.get("code")) for c in code.get("coding") or []]
        if codings and (CASE_CODE_SYSTEM, kind.value) not in codings:
            raise InvalidInput(
                f"A case on {focus_type} has code {CASE_CODE_SYSTEM}|{kind.value} "
                "(discrepancy: the list or an entry; administration: a record or a planned "
                "dose).",
                "Task.code",
            )
    patient_id = None
    if "for" in task:
        subject = str(task["for"].get("reference") or "")
        if not re.fullmatch(r"Patient/[A-Za-z0-9\-.]{1,64}", subject):
            raise InvalidInput("Task.for names the patient: Patient/<id>.", "Task.for")
        patient_id = subject.removeprefix("Patient/")
    return Reported(focus_type, focus_id, version, patient_id, task.get("description"))


def comment_request(data: Any, operation: str) -> str | None:
    """An operation on a case: its one optional ``comment`` (valueString)."""
    given = parameters(data, {"comment": False}, operation).one("comment")
    return given.text() if given else None


def statuses(raw: str) -> frozenset[Status]:
    """``status=requested,in-progress``: the statuses a search asks for."""
    out = set()
    for code in raw.split(","):
        status = STATUS_OF.get(code.strip())
        if status is None:
            known = ", ".join(TASK_STATUS.values())
            raise InvalidInput(f"Unknown Task status {code.strip()[:40]!r}; use {known}.", "status")
        out.add(status)
    return frozenset(out)


def _practitioner(author: Author) -> dict[str, Any]:
    return {"type": "Practitioner", **author_reference(author)}


def owner(recipient: Recipient) -> dict[str, Any]:
    """The organisation the case went to; the person alone when no organisation is known."""
    if recipient.org_id is None:
        return _practitioner(recipient.person)
    ref: dict[str, Any] = {
        "type": "Organization",
        "identifier": {"system": systems.ORGNR, "value": recipient.org_id},
    }
    if recipient.org_name:
        ref["display"] = recipient.org_name
    return ref


def task(case: Case, steps: list[Step], focus_display: str | None = None) -> dict[str, Any]:
    """The case as a Task at its current version."""
    focus = _focus(case)
    if focus_display:
        focus["display"] = focus_display
    extensions = [{"url": EXT_RECIPIENT, "valueReference": _practitioner(case.recipient.person)}]
    if case.handler is not None:
        extensions.append({"url": EXT_HANDLER, "valueReference": _practitioner(case.handler)})
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "id": case.id,
        "meta": {"versionId": str(case.version), "lastUpdated": instant(case.updated_at)},
        "extension": extensions,
        "status": TASK_STATUS[case.status],
    }
    last = steps[-1] if steps else None
    if case.status.closed and last is not None and last.comment:
        resource["statusReason"] = {"text": last.comment}
    resource |= {
        "businessStatus": {"text": case.status.norwegian},
        "intent": "order",
        "code": CODES[case.kind],
        "description": case.description,
        "focus": focus,
        "for": {"reference": f"Patient/{case.patient_id}"},
        "authoredOn": instant(case.reported_at),
        "lastModified": instant(case.updated_at),
        "requester": author_reference(case.reporter),
        "owner": owner(case.recipient),
    }
    if case.due_at is not None:
        resource["restriction"] = {"period": {"end": instant(case.due_at)}}
    notes = [
        {
            "extension": [{"url": EXT_ACTION, "valueCode": step.action.value}],
            "authorReference": author_reference(step.by),
            "time": instant(step.at),
            "text": step.comment,
        }
        for step in steps
        if step.comment
    ]
    if notes:
        resource["note"] = notes
    return resource


def _focus(case: Case) -> dict[str, Any]:
    if case.planned_dose is not None:
        return {
            "identifier": {"system": PLANNED_DOSE, "value": case.planned_dose},
            "type": "MedicationRequest",
        }
    focus_type, focus_id = (
        ("MedicationAdministration", case.administration_id)
        if case.administration_id
        else ("MedicationStatement", case.entry_id)
        if case.entry_id
        else ("List", case.list_id)
    )
    return {
        "reference": f"{focus_type}/{focus_id}/_history/{case.focus_version}",
        "type": focus_type,
    }


def focus_of(case: Case) -> str:
    """What a case's event names as its focus."""
    if case.planned_dose is not None:
        return f"{PLANNED_DOSE}|{case.planned_dose}"
    if case.administration_id is not None:
        return f"MedicationAdministration/{case.administration_id}"
    return f"MedicationStatement/{case.entry_id}" if case.entry_id else f"List/{case.list_id}"


def action_of(note: dict[str, Any]) -> Action | None:
    """The action a Task note came with (a comment, or the comment of a status change)."""
    for ext in note.get("extension") or []:
        if ext.get("url") == EXT_ACTION:
            try:
                return Action(ext.get("valueCode"))
            except ValueError:
                return None
    return None


def flagged(task: dict[str, Any], overdue: bool) -> dict[str, Any]:
    """The Task as a read shows it: tagged ``overdue`` when it is still open past its
    deadline (a read-time flag: the stored version does not change as time passes)."""
    if not overdue:
        return task
    meta = dict(task.get("meta") or {})
    meta["tag"] = [*(meta.get("tag") or []), OVERDUE_TAG]
    return {**task, "meta": meta}
