"""Changes a care unit has not yet taken in (issue 17, docs/administration.md
"Acknowledging changes"). Pure rules, no I/O.

Every list change that touches what is given is *unacknowledged* for a unit caring for the
patient until a nurse of that unit acknowledges the list version that made it. What the unit
last took in is its *base*: the list version it last acknowledged, or the one current when
it registered the patient. :func:`unacknowledged` compares the list at the base with the
list at ``upto`` (the current version, or the one a nurse acknowledges) and answers, per
entry and for the list as a whole, the net changes that touch giving:

- ``new``: an entry in use now that was not in use at the base (the dosage is ``to``);
- ``dose``: the amounts (``doseAndRate``, as-needed and its maximum) changed;
- ``timing``: when it is given changed (``timing`` of a dosage element, its steps and
  ``sequence``, ``effectivePeriod``); both at once is ``dosage``;
- ``medication``: the entry names another medicine;
- ``paused`` / ``resumed``: the entry went on hold or came back;
- ``discontinued``: the entry left use (stopped, completed, registered in error);
- ``multidose``: the entry's multidose mark (packed in the bag or not) changed;
- ``route``: how it is given changed (an element's ``route``, ``method`` or
  ``site``: by mouth → under the skin);
- ``instructions``: what to heed when giving changed (``additionalInstruction``,
  ``patientInstruction``);
- ``list-paused`` / ``list-resumed``: Pause PLL and its end (resuming is a change too).

Net: a dose changed and changed back before the unit looked is no change (the chart ends
where it began). Each change names the last list version in the range that changed that
aspect, its author and time — the doctor who made the chart differ from what the unit
knows. Changes that do not touch giving (a note, a renewed prescription with the same
dosage, a reason) are not listed. An entry discontinued and never in use since the base is
nothing to the unit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pll.domain.diff import medication_name
from pll.domain.model import IN_USE, Author
from pll.domain.multidose import packed_in_multidose


class ChangeKind(StrEnum):
    NEW = "new"
    DOSE = "dose"
    TIMING = "timing"
    DOSAGE = "dosage"
    MEDICATION = "medication"
    PAUSED = "paused"
    RESUMED = "resumed"
    DISCONTINUED = "discontinued"
    MULTIDOSE = "multidose"
    ROUTE = "route"
    INSTRUCTIONS = "instructions"
    LIST_PAUSED = "list-paused"
    LIST_RESUMED = "list-resumed"


#: What each kind is called on the chart (Norwegian).
KIND_TEXT = {
    ChangeKind.NEW: "ny oppføring",
    ChangeKind.DOSE: "endret dose",
    ChangeKind.TIMING: "endret tidspunkt",
    ChangeKind.DOSAGE: "endret dose og tidspunkt",
    ChangeKind.MEDICATION: "endret legemiddel",
    ChangeKind.PAUSED: "pauset",
    ChangeKind.RESUMED: "gjenopptatt",
    ChangeKind.DISCONTINUED: "seponert",
    ChangeKind.MULTIDOSE: "endret multidose",
    ChangeKind.ROUTE: "endret administrasjonsmåte",
    ChangeKind.INSTRUCTIONS: "endret instruksjon",
    ChangeKind.LIST_PAUSED: "legemiddellisten pauset (Pause PLL)",
    ChangeKind.LIST_RESUMED: "legemiddellisten gjenopptatt",
}

_STATUS_TEXT = {
    "active": "i bruk",
    "on-hold": "pauset",
    "stopped": "seponert",
    "completed": "avsluttet",
    "entered-in-error": "feilregistrert",
}


@dataclass(frozen=True)
class EntryVersion:
    """One stored version of an entry: its content and the list version that wrote it."""

    list_version: int
    content: Mapping[str, Any]
    by: Author
    at: datetime


@dataclass(frozen=True)
class ListState:
    """Whether the list was paused at a list version, and who wrote that version when."""

    list_version: int
    paused: bool
    by: Author
    at: datetime


@dataclass(frozen=True)
class Change:
    """One net change since the base that touches what is given."""

    kind: ChangeKind
    #: the entry, ``None`` for the list's own pause and resume
    entry_id: str | None
    medication: str
    before: str | None
    after: str | None
    by: Author
    at: datetime
    #: the list version that made it; acknowledging this version (or a later one) takes it in
    list_version: int

    def text(self) -> str:
        """The chart's line: ``Metformin: endret dose (1 tablett morgen → 2 tabletter
        morgen), av Lege Legesen, HPR 1, versjon 7``."""
        what = KIND_TEXT[self.kind]
        head = what if self.entry_id is None else f"{self.medication}: {what}"
        if self.before is not None or self.after is not None:
            head += f" ({self.before or '—'} → {self.after or '—'})"
        return f"{head}, av {self.by.label()}, versjon {self.list_version}"


def unacknowledged(
    base: int,
    upto: int,
    entries: Mapping[str, Sequence[EntryVersion]],
    states: Sequence[ListState],
) -> tuple[Change, ...]:
    """The changes made by list versions ``base < v <= upto`` that touch giving.

    ``entries`` holds, per entry touched after the base, its version in force at the base
    (if it existed then) and every version written after it; versions after ``upto`` are
    ignored. ``states`` holds the list's pause state at the base and at each version after
    it. Changes come entry by entry (in the order of ``entries``), the list's last."""
    out: list[Change] = []
    for entry_id, versions in entries.items():
        out.extend(_entry_changes(entry_id, versions, base, upto))
    out.extend(_list_changes(states, base, upto))
    return tuple(out)


def _entry_changes(
    entry_id: str, versions: Sequence[EntryVersion], base: int, upto: int
) -> list[Change]:
    ordered = sorted((v for v in versions if v.list_version <= upto), key=lambda v: v.list_version)
    before = next((v for v in reversed(ordered) if v.list_version <= base), None)
    after_base = [v for v in ordered if v.list_version > base]
    if not after_base:
        return []
    now = after_base[-1]
    name = medication_name(now.content)
    is_in_use = _status(now) in IN_USE
    if before is None or _status(before) not in IN_USE:
        if not is_in_use:
            return []
        last = _last_changed(before, after_base, lambda c: c.get("status") in IN_USE)
        kind = ChangeKind.NEW if before is None else ChangeKind.RESUMED
        return [_change(kind, entry_id, name, None, _dosage_text(now.content), last)]
    if not is_in_use:
        last = _last_changed(before, after_base, lambda c: c.get("status") in IN_USE)
        discontinued = _change(
            ChangeKind.DISCONTINUED, entry_id, name, _status_text(before), _status_text(now), last
        )
        return [discontinued]
    out: list[Change] = []
    if _status(before) != _status(now):
        kind = ChangeKind.PAUSED if _status(now) == "on-hold" else ChangeKind.RESUMED
        last = _last_changed(before, after_base, lambda c: c.get("status"))
        out.append(_change(kind, entry_id, name, _status_text(before), _status_text(now), last))
    aspects = (
        (ChangeKind.MEDICATION, _medication),
        (ChangeKind.DOSE, _dose),
        (ChangeKind.TIMING, _timing),
        (ChangeKind.MULTIDOSE, packed_in_multidose),
        (ChangeKind.ROUTE, _route),
        (ChangeKind.INSTRUCTIONS, _instructions),
    )
    changed = {
        kind: _last_changed(before, after_base, key)
        for kind, key in aspects
        if key(dict(before.content)) != key(dict(now.content))
    }
    if ChangeKind.MEDICATION in changed:
        out.append(
            _change(
                ChangeKind.MEDICATION,
                entry_id,
                name,
                medication_name(before.content),
                name,
                changed[ChangeKind.MEDICATION],
            )
        )
    dose, timing = changed.get(ChangeKind.DOSE), changed.get(ChangeKind.TIMING)
    if dose is not None or timing is not None:
        kind = (
            ChangeKind.DOSAGE
            if dose is not None and timing is not None
            else ChangeKind.DOSE
            if dose is not None
            else ChangeKind.TIMING
        )
        last = max((v for v in (dose, timing) if v is not None), key=lambda v: v.list_version)
        out.append(
            _change(
                kind,
                entry_id,
                name,
                _dosage_text(before.content),
                _dosage_text(now.content),
                last,
            )
        )
    if ChangeKind.MULTIDOSE in changed:
        out.append(
            _change(
                ChangeKind.MULTIDOSE,
                entry_id,
                name,
                _packed_text(before.content),
                _packed_text(now.content),
                changed[ChangeKind.MULTIDOSE],
            )
        )
    for kind, text in (
        (ChangeKind.ROUTE, _route_text),
        (ChangeKind.INSTRUCTIONS, _instructions_text),
    ):
        if kind in changed:
            out.append(
                _change(
                    kind, entry_id, name, text(before.content), text(now.content), changed[kind]
                )
            )
    return out


def _list_changes(states: Sequence[ListState], base: int, upto: int) -> list[Change]:
    ordered = sorted((s for s in states if s.list_version <= upto), key=lambda s: s.list_version)
    at_base = next((s for s in reversed(ordered) if s.list_version <= base), None)
    later = [s for s in ordered if s.list_version > base]
    if not later:
        return []
    was = at_base.paused if at_base is not None else False
    now = later[-1]
    if now.paused == was:
        return []
    # the version that last flipped the state: the first of the final run of equal states
    last = now
    for state in reversed(later):
        if state.paused != now.paused:
            break
        last = state
    kind = ChangeKind.LIST_PAUSED if now.paused else ChangeKind.LIST_RESUMED
    return [Change(kind, None, "", None, None, last.by, last.at, last.list_version)]


def _last_changed(
    before: EntryVersion | None,
    after_base: Sequence[EntryVersion],
    key: Any,
) -> EntryVersion:
    """The last version after the base whose ``key`` differs from the version before it."""
    previous = key(dict(before.content)) if before is not None else None
    found = after_base[-1]
    for version in after_base:
        value = key(dict(version.content))
        if value != previous:
            found = version
        previous = value
    return found


def _change(
    kind: ChangeKind,
    entry_id: str,
    name: str,
    before: str | None,
    after: str | None,
    version: EntryVersion,
) -> Change:
    return Change(kind, entry_id, name, before, after, version.by, version.at, version.list_version)


def _status(version: EntryVersion) -> str:
    return str(version.content.get("status", ""))


def _status_text(version: EntryVersion) -> str:
    status = _status(version)
    return _STATUS_TEXT.get(status, status)


def _canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _elements(content: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    dosage = content.get("dosage") or []
    return [d for d in dosage if isinstance(d, Mapping)]


def _dose(content: Mapping[str, Any]) -> str:
    """What is given each time: amounts, as-needed and the maximum, per element."""
    keys = ("doseAndRate", "maxDosePerPeriod", "asNeededBoolean", "asNeededCodeableConcept")
    parts = [{k: d.get(k) for k in keys if k in d} for d in _elements(content)]
    # a free-text dosage has no structure: its text is what is given
    texts = [d.get("text") for d in _elements(content) if not _structured(d)]
    return _canonical([parts, texts])


def _timing(content: Mapping[str, Any]) -> str:
    """When it is given: each element's timing and step, and the treatment period."""
    parts = [{k: d.get(k) for k in ("timing", "sequence") if k in d} for d in _elements(content)]
    return _canonical([parts, content.get("effectivePeriod")])


def _medication(content: Mapping[str, Any]) -> str:
    return _canonical(
        {k: v for k, v in content.items() if k.startswith("medication")},
    )


def _structured(element: Mapping[str, Any]) -> bool:
    return any(
        k in element
        for k in (
            "timing",
            "doseAndRate",
            "asNeededBoolean",
            "asNeededCodeableConcept",
            "maxDosePerPeriod",
        )
    )


def _dosage_text(content: Mapping[str, Any]) -> str:
    """The Norwegian dosage text the list shows (the server writes it from the structure);
    several elements may repeat the whole text, so each text once."""
    texts = dict.fromkeys(str(d["text"]) for d in _elements(content) if d.get("text"))
    return "; ".join(texts) or "ingen dosering"


def _packed_text(content: Mapping[str, Any]) -> str:
    return "i multidose" if packed_in_multidose(dict(content)) else "ikke i multidose"


_ROUTE = ("route", "method", "site")
_INSTRUCTIONS = ("additionalInstruction", "patientInstruction")


def _route(content: Mapping[str, Any]) -> str:
    """How it is given: each element's route, method and site."""
    return _canonical([{k: d.get(k) for k in _ROUTE if k in d} for d in _elements(content)])


def _instructions(content: Mapping[str, Any]) -> str:
    """What to heed when giving: each element's additional and patient instructions."""
    parts = [{k: d.get(k) for k in _INSTRUCTIONS if k in d} for d in _elements(content)]
    return _canonical(parts)


def _route_text(content: Mapping[str, Any]) -> str:
    """``Oral``, ``Subkutan, lår``: the route, method and site as the list names them."""
    return _texts(content, _ROUTE) or "ikke angitt"


def _instructions_text(content: Mapping[str, Any]) -> str:
    return _texts(content, _INSTRUCTIONS) or "ingen"


def _texts(content: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    found: dict[str, None] = {}
    for element in _elements(content):
        for key in keys:
            value = element.get(key)
            for concept in value if isinstance(value, list) else [value]:
                text = _concept_text(concept)
                if text:
                    found[text] = None
    return ", ".join(found)


def _concept_text(value: Any) -> str:
    """A CodeableConcept's text, else its first coding's display or code; a string as is."""
    if isinstance(value, str):
        return value
    if not isinstance(value, Mapping):
        return ""
    if value.get("text"):
        return str(value["text"])
    for coding in value.get("coding") or []:
        if isinstance(coding, Mapping) and (coding.get("display") or coding.get("code")):
            return str(coding.get("display") or coding.get("code"))
    return ""
