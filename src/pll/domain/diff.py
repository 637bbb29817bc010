"""The difference between two versions of a PLL, element by element (rule 1).

A list version is described by which entry versions it held and by its list-level state
(paused, confirmed). Entries are compared on their content, element by element, and each
element is rendered as a short text a clinician can read ("dosage: 1 tablett morgen →
2 tabletter morgen").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pll.domain.overrides import KeptOverride


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
    prescriptions: tuple[EntryDifference, ...] = ()
    #: the findings overridden on the way, newest first, with the reasons (rule 6)
    overrides: tuple[KeptOverride, ...] = ()


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
    # a dosage in several parts (morning, evening) may carry the whole text on each part
    texts = dict.fromkeys(str(d.get("text", "")) for d in value if d.get("text"))
    return "; ".join(texts) or _json(value)


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


@dataclass(frozen=True)
class Versions:
    """A resource's version at the earlier and the later list version (``None``: not yet)."""

    before: int | None
    after: int | None
    #: whether it is on the list at the later version (entries only)
    shown_after: bool = True


def _differences(
    versions: Mapping[str, Versions], contents: Mapping[tuple[str, int], Mapping[str, Any]]
) -> tuple[EntryDifference, ...]:
    out = []
    for rid in sorted(versions):
        v = versions[rid]
        if v.before == v.after and v.shown_after:
            continue
        old = contents[(rid, v.before)] if v.before is not None else {}
        new = contents[(rid, v.after)] if v.after is not None else {}
        kind = "added" if v.before is None else "changed" if v.shown_after else "removed"
        name = medication_name(new or old)
        out.append(EntryDifference(rid, kind, v.before, v.after, name, diff_content(old, new)))
    return tuple(out)


def diff_lists(
    from_version: int,
    to_version: int,
    entries: Mapping[str, Versions],
    prescriptions: Mapping[str, Versions],
    contents: Mapping[tuple[str, int], Mapping[str, Any]],
    before_state: Mapping[str, str | None],
    after_state: Mapping[str, str | None],
    overrides: tuple[KeptOverride, ...] = (),
) -> ListDifference:
    """Compare two list versions: its entries, its prescriptions and the list itself.

    An entry that left the list (registered in error, or 90 days after it was discontinued)
    is ``removed``, with what changed in it on the way; everything else that moved is
    ``added`` or ``changed``, element by element. ``overrides`` are those the versions
    after ``from_version`` up to ``to_version`` kept.
    """
    list_changes = tuple(
        FieldChange(key, before_state.get(key), after_state.get(key))
        for key in sorted(set(before_state) | set(after_state))
        if before_state.get(key) != after_state.get(key)
    )
    return ListDifference(
        from_version,
        to_version,
        _differences(entries, contents),
        list_changes,
        _differences(prescriptions, contents),
        overrides,
    )


#: Entry statuses that end the use of a medicine: discontinued, a course completed, or
#: registered in error.
ENDED = frozenset({"stopped", "completed", "entered-in-error"})


@dataclass(frozen=True)
class ChangeSummary:
    """What happened to the medicines between two list versions, one line per kind: the
    short account a doctor reads beside "Bekreft versjon N". Each holds the medicines'
    names in alphabetical order; a medicine is counted once, by where it ended."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    #: discontinued, completed or registered in error by the later version
    ended: tuple[str, ...] = ()
    #: left the list (registered in error, or 90 days after it was discontinued)
    removed: tuple[str, ...] = ()
    #: medicines with a prescription issued, renewed or recalled and no change of the entry
    prescriptions: tuple[str, ...] = ()
    #: findings overridden on the way, with a reason (DESIGN §3 rule 6)
    overrides: int = 0

    def __bool__(self) -> bool:
        return any(
            (
                self.added,
                self.changed,
                self.ended,
                self.removed,
                self.prescriptions,
                self.overrides,
            )
        )


def _status_after(entry: EntryDifference) -> str | None:
    return next((f.after for f in entry.fields if f.element == "status"), None)


def summarise(difference: ListDifference) -> ChangeSummary:
    """Sort a difference's medicines by what happened to them. An entry added and ended
    within the difference counts as ended; a change that leaves the status as it was (a
    dose, a pause) counts as changed."""
    kinds: dict[str, list[str]] = {"added": [], "changed": [], "ended": [], "removed": []}
    for entry in difference.entries:
        if entry.kind == "removed":
            kinds["removed"].append(entry.medication)
        elif _status_after(entry) in ENDED:
            kinds["ended"].append(entry.medication)
        else:
            kinds[entry.kind].append(entry.medication)
    touched = {e.medication for e in difference.entries}
    prescribed = (p.medication for p in difference.prescriptions if p.medication not in touched)
    return ChangeSummary(
        added=_sorted(kinds["added"]),
        changed=_sorted(kinds["changed"]),
        ended=_sorted(kinds["ended"]),
        removed=_sorted(kinds["removed"]),
        prescriptions=_sorted(dict.fromkeys(prescribed)),
        overrides=len(difference.overrides),
    )


def _sorted(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(names, key=str.casefold))
