"""The difference between two versions of a PLL, element by element (rule 1).

A list version is described by which entry versions it held and by its list-level state
(paused, confirmed). Entries are compared on their content, element by element, and each
element is rendered as a short text a clinician can read ("dosage: 1 tablett morgen →
2 tabletter morgen").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldChange:
    element: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class EntryDifference:
    entry_id: str
    kind: str  # added | removed | changed
    before_version: int | None
    after_version: int | None
    medication: str
    fields: tuple[FieldChange, ...]


@dataclass(frozen=True)
class ListDifference:
    from_version: int
    to_version: int
    entries: tuple[EntryDifference, ...]
    list_changes: tuple[FieldChange, ...]


def medication_name(content: Mapping[str, Any]) -> str:
    concept = content.get("medicationCodeableConcept") or {}
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding", []):
        if coding.get("display") or coding.get("code"):
            return str(coding.get("display") or coding.get("code"))
    return "ukjent legemiddel"


def _concepts_text(value: Any) -> str:
    concepts = value if isinstance(value, list) else [value]
    texts = [
        c.get("text")
        or ", ".join(x.get("display") or x.get("code", "") for x in c.get("coding", []))
        for c in concepts
    ]
    return "; ".join(t for t in texts if t)


def _dosage_text(value: Any) -> str:
    return "; ".join(str(d.get("text", "")) for d in value if d.get("text")) or _json(value)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


_RENDER: dict[str, Callable[[Any], str]] = {
    "dosage": _dosage_text,
    "dosageInstruction": _dosage_text,
    "medicationCodeableConcept": lambda v: medication_name({"medicationCodeableConcept": v}),
    "statusReason": _concepts_text,
    "reasonCode": _concepts_text,
    "category": _concepts_text,
    "basedOn": lambda v: ", ".join(ref.get("reference", "") for ref in v),
}


def element_text(element: str, value: Any) -> str | None:
    """A short, readable rendering of one element's value."""
    if value is None:
        return None
    if element in _RENDER:
        return str(_RENDER[element](value))
    return value if isinstance(value, str) else _json(value)


def diff_content(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    keys = sorted((set(before) | set(after)) - {"resourceType"})
    changes = []
    for key in keys:
        if before.get(key) != after.get(key):
            changes.append(
                FieldChange(
                    key, element_text(key, before.get(key)), element_text(key, after.get(key))
                )
            )
    return tuple(changes)


def diff_lists(
    from_version: int,
    to_version: int,
    before: Mapping[str, int],
    after: Mapping[str, int],
    contents: Mapping[tuple[str, int], Mapping[str, Any]],
    before_state: Mapping[str, str | None],
    after_state: Mapping[str, str | None],
) -> ListDifference:
    """Compare two list versions given the entry versions each held and their contents."""
    entries = []
    for entry_id in sorted(set(before) | set(after)):
        old_v, new_v = before.get(entry_id), after.get(entry_id)
        if old_v == new_v:
            continue
        old = contents[(entry_id, old_v)] if old_v is not None else {}
        new = contents[(entry_id, new_v)] if new_v is not None else {}
        kind = "added" if old_v is None else "removed" if new_v is None else "changed"
        entries.append(
            EntryDifference(
                entry_id, kind, old_v, new_v, medication_name(new or old), diff_content(old, new)
            )
        )
    list_changes = tuple(
        FieldChange(key, before_state.get(key), after_state.get(key))
        for key in sorted(set(before_state) | set(after_state))
        if before_state.get(key) != after_state.get(key)
    )
    return ListDifference(from_version, to_version, tuple(entries), list_changes)
