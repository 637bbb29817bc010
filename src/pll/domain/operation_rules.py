"""What each operation of a change to a PLL is held to, with no I/O: the version it is based on
(relay baton, DESIGN §3 rule 2), the status changes an entry may make and the activity each
one is (rule 3, the M25 entry rules), and what its content says — the reason it gives and
the prescriptions it links. :class:`pll.domain.changes.ListChange` applies them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pll.domain.errors import Conflict, InvalidInput, PreconditionRequired, VersionConflict
from pll.domain.model import ENDED, ENTRY_STATUSES, REMOVED, Author


def refs_to(content: dict[str, Any]) -> list[str]:
    return [
        str(ref.get("reference", "")).removeprefix("MedicationRequest/")
        for ref in content.get("basedOn") or []
    ]


def reason_text(content: dict[str, Any]) -> str | None:
    reason = content.get("statusReason")
    if not reason:
        return None
    # MedicationStatement.statusReason is a list; MedicationRequest.statusReason is one concept.
    texts = []
    for concept in reason if isinstance(reason, list) else [reason]:
        text = concept.get("text") or next(
            (c.get("display") or c.get("code") for c in concept.get("coding", [])), None
        )
        if text:
            texts.append(str(text))
    return "; ".join(texts) or None


def check_version(
    kind: str, rid: str, current: int, changed_by: Author, when: datetime, if_match: int | None
) -> None:
    if if_match is None:
        raise PreconditionRequired(
            f"A change to {kind}/{rid} must say which version it is based on: send "
            f'If-Match: W/"{current}" after reading the current version.',
            kind,
        )
    if if_match != current:
        raise VersionConflict(
            f"{kind}/{rid} was changed by {changed_by.label()} at {when.isoformat()}: "
            f"you hold version {if_match}, the current version is {current}. "
            "Read it again and redo your change on the current version.",
            kind,
            {
                "resource": f"{kind}/{rid}",
                "yourVersion": str(if_match),
                "currentVersion": str(current),
                "changedBy": changed_by.label(),
                "changedAt": when.isoformat(),
            },
        )


def check_transition(entry_id: str, old: str, new: str) -> None:
    """The status changes an entry may make (DESIGN §3 rule 3, M25 entry rules)."""
    where = "MedicationStatement.status"
    if new not in ENTRY_STATUSES:
        raise InvalidInput(
            f"Unknown entry status {new!r}; use one of {', '.join(sorted(ENTRY_STATUSES))}.", where
        )
    if old == REMOVED:
        raise Conflict(
            f"MedicationStatement/{entry_id} was registered in error and removed; "
            "it cannot be changed.",
            where,
            norwegian="Legemidlet er registrert som feil og fjernet; det kan ikke endres.",
        )
    if old in ENDED and new != REMOVED:
        raise Conflict(
            f"MedicationStatement/{entry_id} is discontinued ({old}); a discontinued entry can "
            "only be marked entered-in-error. Register the medicine again as a new entry.",
            where,
            norwegian=(
                "Legemidlet er seponert og kan ikke endres (bare markeres som feilregistrert). "
                "Skal pasienten bruke det igjen, forskriv det på nytt."
            ),
        )


def entry_activity(old: str, new: str) -> str:
    if new in ENDED and old not in ENDED:
        return "discontinue-entry"
    if new == REMOVED:
        return "remove-entry"
    return {("active", "on-hold"): "pause-entry", ("on-hold", "active"): "resume-entry"}.get(
        (old, new), "update-entry"
    )
