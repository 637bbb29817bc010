"""``MedicationAdministration`` in PLL's terms (issue 17, docs/administration.md "Recording
what was given"): what a ``POST`` or ``PUT`` says, and the record PLL stores and answers.
Nothing here touches a database.

A request is a valid R4 ``MedicationAdministration``. PLL reads from it:

- ``supportingInformation``: ``MedicationStatement/<entry>/_history/<version>`` — the entry
  and the version it was given from (R4's ``request`` may only name a MedicationRequest);
- the extension :data:`PLANNED_DOSE` (``valueString``): the planned dose's key from the
  administration schedule; absent for an as-needed dose;
- ``status`` (``completed`` or ``not-done``), ``statusReason`` (:data:`NOT_GIVEN_SYSTEM`),
  ``effectiveDateTime`` (with a time zone), ``dosage.dose`` (optional for a planned dose:
  the planned amount), ``reasonCode[0].text`` (why an as-needed dose was given), ``note``;
- a ``performer`` with ``function`` ``verifier``: the second signer of a controlled drug,
  ``actor.identifier`` their HPR number.

PLL sets the rest: the giver (``performer`` ``performer``) is the caller from the token,
never the body; ``medicationCodeableConcept`` is the entry's; the extension
:data:`PLANNED_AT` keeps the planned time beside ``effectiveDateTime`` (a late dose shows as
the difference), and :data:`PARTIAL` marks a dose below the planned amount.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pll.domain.administration.keys import check_moment
from pll.domain.administration.records import Judged, NotGiven, Recording, Status
from pll.domain.errors import InvalidInput
from pll.domain.model import Author, Entry
from pll.fhir import systems
from pll.fhir.resources import author_reference, instant, with_meta
from pll.fhir.validate import validate

#: The planned dose an administration was given against (valueString: its key).
PLANNED_DOSE = f"{systems.PLL_BASE}/StructureDefinition/administration-planned-dose"
#: When the planned dose was planned for (valueDateTime).
PLANNED_AT = f"{systems.PLL_BASE}/StructureDefinition/administration-planned-at"
#: A dose given below the planned amount (valueBoolean true).
PARTIAL = f"{systems.PLL_BASE}/StructureDefinition/administration-partial"
#: PLL's reasons a dose was not given (pll.domain.administration.records.NotGiven).
NOT_GIVEN_SYSTEM = f"{systems.PLL_BASE}/CodeSystem/administration-not-given"
PERFORM_FUNCTION = "http://terminology.hl7.org/CodeSystem/med-admin-perform-function"

_R = "MedicationAdministration"
_RECORDABLE = (Status.COMPLETED, Status.NOT_DONE)


@dataclass(frozen=True)
class Correction:
    """What a ``PUT`` says: the status, the reason for a correction, and the notes."""

    status: Status
    reason: str | None
    notes: list[dict[str, Any]]


def recording(data: Any, patient_id: str | None = None) -> tuple[Recording, str]:
    """The recording a ``POST`` states, and the patient it names (``subject``)."""
    res = validate(data, _R)
    subject = str((res.get("subject") or {}).get("reference") or "")
    if not subject.startswith("Patient/"):
        raise InvalidInput("subject must name the patient: Patient/<id>.", f"{_R}.subject")
    pid = subject.removeprefix("Patient/")
    if patient_id is not None and pid != patient_id:
        raise InvalidInput(f"subject must stay Patient/{patient_id}.", f"{_R}.subject")
    status = _status(res)
    if status not in _RECORDABLE:
        raise InvalidInput(
            f"Record a dose as completed (given) or not-done; {status} is for a correction "
            "(PUT) of a record that exists.",
            f"{_R}.status",
        )
    entry_id, entry_version = _entry(res)
    dose = (res.get("dosage") or {}).get("dose")
    if dose is not None and status is Status.NOT_DONE:
        raise InvalidInput("A dose not given has no dosage.dose.", f"{_R}.dosage.dose")
    amount, unit = _dose(dose) if dose is not None else (None, None)
    reasons = res.get("reasonCode") or []
    return Recording(
        entry_id=entry_id,
        entry_version=entry_version,
        status=status,
        at=_moment(res),
        slot_key=_extension(res, PLANNED_DOSE),
        reason=_not_given(res),
        amount=amount,
        unit=unit,
        verifier_hpr=_verifier(res),
        reason_for_giving=(reasons[0].get("text") or None) if reasons else None,
    ), pid


def correction(data: Any, current: dict[str, Any]) -> Correction:
    """What a ``PUT`` on a record states. Only ``status``, ``statusReason.text`` and added
    ``note`` s are read; what was given (entry, planned dose, dose, time) must stay as it was,
    else the request is refused: a record is corrected, never edited."""
    res = validate(data, _R)
    if res.get("id") != current["id"]:
        raise InvalidInput(f"id must be {current['id']}.", f"{_R}.id")
    for key in ("supportingInformation", "effectiveDateTime", "dosage", "subject"):
        if res.get(key) != current.get(key):
            raise InvalidInput(
                f"{key} is what was recorded and is never edited: mark the record "
                "entered-in-error and record what was done anew.",
                f"{_R}.{key}",
            )
    if _extension(res, PLANNED_DOSE) != _extension(current, PLANNED_DOSE):
        raise InvalidInput("The planned dose of a record is never edited.", f"{_R}.extension")
    before = current.get("note") or []
    notes = res.get("note") or []
    if notes[: len(before)] != before:
        raise InvalidInput("Notes are only ever added to, never changed.", f"{_R}.note")
    reasons = res.get("statusReason") or []
    reason = next((r.get("text") for r in reasons if r.get("text")), None)
    added = notes[len(before) :]
    status = _status(res)
    if status is Status.ENTERED_IN_ERROR and not reason and added:
        reason = added[-1].get("text")
    return Correction(status, reason, added)


def record(
    rid: str,
    version: int,
    updated: datetime,
    rec: Recording,
    judged: Judged,
    patient_id: str,
    entry: Entry,
    giver: Author,
    note: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The stored ``MedicationAdministration`` of an accepted recording."""
    extension: list[dict[str, Any]] = []
    if judged.planned is not None:
        extension.append({"url": PLANNED_DOSE, "valueString": judged.planned.key})
        extension.append({"url": PLANNED_AT, "valueDateTime": instant(judged.planned.at)})
    if judged.partial:
        extension.append({"url": PARTIAL, "valueBoolean": True})
    performer: list[dict[str, Any]] = [
        {"function": _function("performer"), "actor": author_reference(giver)}
    ]
    if rec.verifier_hpr:
        performer.append(
            {
                "function": _function("verifier"),
                "actor": {"identifier": {"system": systems.HPR, "value": rec.verifier_hpr}},
            }
        )
    content: dict[str, Any] = {"resourceType": _R}
    if extension:
        content["extension"] = extension
    content["status"] = rec.status.value
    if rec.reason is not None:
        content["statusReason"] = [
            {
                "coding": [
                    {
                        "system": NOT_GIVEN_SYSTEM,
                        "code": rec.reason.value,
                        "display": rec.reason.display,
                    }
                ]
            }
        ]
    content["medicationCodeableConcept"] = entry.content["medicationCodeableConcept"]
    content["subject"] = {"reference": f"Patient/{patient_id}"}
    content["supportingInformation"] = [
        {"reference": f"MedicationStatement/{entry.id}/_history/{entry.version}"}
    ]
    content["effectiveDateTime"] = instant(rec.at)
    content["performer"] = performer
    if rec.reason_for_giving:
        content["reasonCode"] = [{"text": rec.reason_for_giving[:1000]}]
    if note:
        content["note"] = note
    if judged.amount is not None:
        content["dosage"] = {"dose": {"value": float(judged.amount), "unit": judged.unit}}
    return with_meta(_R, rid, version, updated, content)


def corrected(
    current: dict[str, Any], change: Correction, version: int, updated: datetime
) -> dict[str, Any]:
    """A new version of a stored record with ``change`` applied."""
    content = {k: v for k, v in current.items() if k not in ("id", "meta")}
    content["status"] = change.status.value
    if change.status is Status.ENTERED_IN_ERROR and change.reason:
        content["statusReason"] = [{"text": change.reason[:1000]}]
    if change.notes:
        content["note"] = [*(current.get("note") or []), *change.notes]
    return with_meta(_R, current["id"], version, updated, content)


def notes_of(data: Any) -> list[dict[str, Any]] | None:
    """The notes a ``POST`` carries (kept as they are)."""
    notes = data.get("note") if isinstance(data, dict) else None
    return list(notes) if notes else None


# -- reading the request ---------------------------------------------------------------------


def _status(res: dict[str, Any]) -> Status:
    try:
        return Status(str(res.get("status")))
    except ValueError:
        known = ", ".join(s.value for s in Status)
        raise InvalidInput(
            f"Unknown status {str(res.get('status'))[:40]!r}; PLL records {known}.",
            f"{_R}.status",
        ) from None


def _entry(res: dict[str, Any]) -> tuple[str, int]:
    where = f"{_R}.supportingInformation"
    refs = [
        str(r.get("reference") or "")
        for r in res.get("supportingInformation") or []
        if str(r.get("reference") or "").startswith("MedicationStatement/")
    ]
    if len(refs) != 1:
        raise InvalidInput(
            "Name the entry given from, once, in supportingInformation: "
            "MedicationStatement/<id>/_history/<version>.",
            where,
        )
    parts = refs[0].split("/")
    if len(parts) != 4 or parts[2] != "_history" or not parts[3].isdigit():
        raise InvalidInput(
            f"{refs[0][:120]!r} must name the entry's version: "
            "MedicationStatement/<id>/_history/<version>.",
            where,
        )
    return parts[1], int(parts[3])


def _moment(res: dict[str, Any]) -> datetime:
    where = f"{_R}.effectiveDateTime"
    raw = res.get("effectiveDateTime")
    if not isinstance(raw, str) or "T" not in raw:
        raise InvalidInput("effectiveDateTime must give the date and time it was done.", where)
    try:
        # R4's pattern admits a leap second (:60) that no clock here can hold
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"effectiveDateTime {raw[:40]!r} is not a date and time PLL can record "
            "(a second of 60 included).",
            where,
            norwegian="Tidspunktet er ikke gyldig.",
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput("effectiveDateTime must have a time zone.", where)
    return check_moment(moment, where)


def _dose(dose: dict[str, Any]) -> tuple[Decimal, str | None]:
    where = f"{_R}.dosage.dose"
    try:
        amount = Decimal(str(dose.get("value")))
    except InvalidOperation:
        raise InvalidInput("dosage.dose needs a value.", where) from None
    if not amount.is_finite() or amount <= 0:
        raise InvalidInput("dosage.dose.value must be more than 0.", f"{where}.value")
    unit = dose.get("unit") or dose.get("code")
    return amount, str(unit) if unit else None


def _not_given(res: dict[str, Any]) -> NotGiven | None:
    where = f"{_R}.statusReason"
    for concept in res.get("statusReason") or []:
        for coding in concept.get("coding") or []:
            if coding.get("system") == NOT_GIVEN_SYSTEM:
                try:
                    return NotGiven(coding.get("code"))
                except ValueError:
                    known = ", ".join(r.value for r in NotGiven)
                    raise InvalidInput(
                        f"Unknown reason {str(coding.get('code'))[:40]!r}; use one of {known}.",
                        f"{where}.coding.code",
                    ) from None
    if res.get("statusReason"):
        raise InvalidInput(f"statusReason must be coded in {NOT_GIVEN_SYSTEM}.", where)
    return None


def _verifier(res: dict[str, Any]) -> str | None:
    where = f"{_R}.performer"
    found = None
    for performer in res.get("performer") or []:
        codes = {c.get("code") for c in (performer.get("function") or {}).get("coding") or []}
        if "verifier" not in codes:
            continue  # the giver is the caller, never what the body says
        ident = (performer.get("actor") or {}).get("identifier") or {}
        value = str(ident.get("value") or "")
        if ident.get("system") != systems.HPR:
            raise InvalidInput(
                f"The second signer (function verifier) is named by HPR number: "
                f"actor.identifier with system {systems.HPR}.",
                f"{where}.actor.identifier",
            )
        if found is not None:
            raise InvalidInput("Name one second signer (function verifier).", where)
        found = value
    return found


def _extension(res: dict[str, Any], url: str) -> str | None:
    for ext in res.get("extension") or []:
        if ext.get("url") == url:
            value = ext.get("valueString")
            if not isinstance(value, str):
                raise InvalidInput(f"Extension {url} takes valueString.", f"{_R}.extension")
            return value
    return None


def _function(code: str) -> dict[str, Any]:
    return {"coding": [{"system": PERFORM_FUNCTION, "code": code}]}
