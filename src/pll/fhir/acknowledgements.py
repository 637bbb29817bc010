"""Changes a care unit has not yet taken in, as FHIR R4 (issue 17, docs/administration.md
"Acknowledging changes"): what ``List/{id}/$acknowledge-changes`` takes and answers, the
marks on the schedule's items and outcome, and the flag on a ``MedicationAdministration``
given from an entry whose change is not acknowledged.

One change (:class:`~pll.domain.administration.changes.Change`) is a complex extension
with the parts ``kind`` (valueCode, :class:`ChangeKind`), ``from`` and ``to`` (valueString:
the Norwegian dosage text, status or multidose mark before and now, when the kind has
them), ``by`` (valueReference: the author of the list version), ``at`` (valueDateTime),
``listVersion`` (valueInteger: the version that made it; acknowledging it takes the change
in) and ``text`` (valueString: the chart's line). Nothing here touches a database.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from pll.domain.administration.changes import Change
from pll.domain.errors import InvalidInput
from pll.fhir import systems
from pll.fhir.administration import EXT_PLANNED
from pll.fhir.outcome import issue, outcome
from pll.fhir.parameters import parameters
from pll.fhir.resources import author_reference, instant

#: On a schedule item (a part of ``pll-planned-administration``) and on a recorded
#: administration: a change of the entry the giver's unit has not acknowledged.
UNACKNOWLEDGED = "unacknowledged"
EXT_UNACKNOWLEDGED = f"{systems.PLL_BASE}/StructureDefinition/administration-unacknowledged-change"
#: The schedule's text for an unacknowledged change (the issue's words).
MARK = "Endret — ikke kvittert"

_WHERE = "Parameters.parameter"
_DIGITS = re.compile(r"[0-9]{1,9}")


def acknowledge_request(data: Any) -> int:
    """``$acknowledge-changes``: ``version`` (valueInteger, or valueString of digits), the
    list version the nurse has read. Refused (``InvalidInput`` at the parameter): missing,
    another type, not a whole number of at least 1."""
    params = parameters(data, {"version": False}, "$acknowledge-changes")
    param = params.required("version", _WHERE)
    if "valueInteger" in param.data:
        version = param.integer()
    elif "valueString" in param.data and _DIGITS.fullmatch(str(param.data["valueString"])):
        version = int(param.data["valueString"])
    else:
        raise InvalidInput(
            "Give 'version' as valueInteger (or valueString of digits): the list version "
            "you have read.",
            param.where,
        )
    if version < 1:
        raise InvalidInput("A list version is 1 or more.", f"{param.where}.valueInteger")
    return version


def change_parts(change: Change) -> list[dict[str, Any]]:
    """The parts of one change's extension (see the module)."""
    parts: list[dict[str, Any]] = [{"url": "kind", "valueCode": change.kind.value}]
    if change.before is not None:
        parts.append({"url": "from", "valueString": change.before})
    if change.after is not None:
        parts.append({"url": "to", "valueString": change.after})
    parts += [
        {"url": "by", "valueReference": author_reference(change.by)},
        {"url": "at", "valueDateTime": instant(change.at)},
        {"url": "listVersion", "valueInteger": change.list_version},
        {"url": "text", "valueString": change.text()},
    ]
    return parts


def _expression(list_id: str, change: Change) -> str:
    if change.entry_id is None:
        return f"List/{list_id}"
    return f"MedicationStatement/{change.entry_id}"


def acknowledged_answer(
    list_id: str,
    version: int,
    base: int,
    taken_in: Sequence[Change],
    remaining: Sequence[Change],
    *,
    written: bool,
) -> dict[str, Any]:
    """The answer of ``$acknowledge-changes``: a ``Parameters`` with ``list`` (the List
    reference at the version acknowledged), ``version``, ``previous`` (the unit's base
    before), ``written`` (false: the version was already acknowledged, nothing written), one
    ``change`` per change taken in, and one ``remaining`` per change after ``version`` still
    unacknowledged."""
    params: list[dict[str, Any]] = [
        {"name": "list", "valueReference": {"reference": f"List/{list_id}/_history/{version}"}},
        {"name": "version", "valueInteger": version},
        {"name": "previous", "valueInteger": base},
        {"name": "written", "valueBoolean": written},
    ]
    params += [{"name": "change", "part": _named(change_parts(c))} for c in taken_in]
    params += [{"name": "remaining", "part": _named(change_parts(c))} for c in remaining]
    return {"resourceType": "Parameters", "parameter": params}


def _named(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Extension parts as ``Parameters`` parts (``name`` for ``url``)."""
    return [{"name": p["url"], **{k: v for k, v in p.items() if k != "url"}} for p in parts]


def mark_schedule(bundle: dict[str, Any], list_id: str, changes: Sequence[Change]) -> None:
    """Mark a schedule (:func:`pll.fhir.administration.schedule_bundle`) with the unit's
    unacknowledged changes: each item of a changed entry gets an ``unacknowledged`` part per
    change in its ``pll-planned-administration`` extension, and the ``OperationOutcome``
    (made when there is none) gets one ``warning`` per change, ``"Endret — ikke kvittert:
    …"`` — discontinued entries and Pause PLL, which have no items, included."""
    if not changes:
        return
    by_entry: dict[str, list[Change]] = {}
    for change in changes:
        if change.entry_id is not None:
            by_entry.setdefault(change.entry_id, []).append(change)
    entries = bundle["entry"]
    notice = next(
        (e["resource"] for e in entries if e["resource"]["resourceType"] == "OperationOutcome"),
        None,
    )
    if notice is None:
        notice = outcome()
        # after the List, where the schedule's notice stands (docs/administration.md)
        entries.insert(1, {"fullUrl": f"urn:uuid:{_uuid(list_id, changes)}", "resource": notice})
    notice["issue"] += [
        issue(
            f"{MARK}: {c.text()}",
            _expression(list_id, c),
            code="informational",
            severity="warning",
        )
        for c in changes
    ]
    for item in entries:
        resource = item["resource"]
        if resource["resourceType"] != "MedicationRequest":
            continue
        reference = resource["supportingInformation"][0]["reference"]
        entry_id = reference.split("/")[1]
        for ext in resource["extension"]:
            if ext["url"] == EXT_PLANNED:
                ext["extension"] += [
                    {"url": UNACKNOWLEDGED, "extension": change_parts(c)}
                    for c in by_entry.get(entry_id, [])
                ]


def _uuid(list_id: str, changes: Sequence[Change]) -> str:
    key = f"{list_id}/unacknowledged/{max(c.list_version for c in changes)}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{systems.PLL_BASE}/{key}"))


def flag_record(resource: dict[str, Any], changes: Sequence[Change]) -> None:
    """Flag a recorded ``MedicationAdministration`` given from an entry with changes the
    giver's unit has not acknowledged: one ``administration-unacknowledged-change``
    extension per change. Giving is allowed (the patient must not miss a dose); the flag
    says the giver's unit had not taken in the change."""
    if not changes:
        return
    resource.setdefault("extension", []).extend(
        {"url": EXT_UNACKNOWLEDGED, "extension": change_parts(c)} for c in changes
    )
