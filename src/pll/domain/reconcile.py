"""Reconciliation (*samstemming*): what differs between the list and another source, without
any I/O.

A doctor compares the PLL with another account of what the patient uses — the dispensing
history PLL keeps, a list the patient reports, a hospital's discharge list (*epikrise*) — and
then confirms the list. :func:`compare` takes both sides as small views (:class:`Listed` for
the list's entries, :class:`SourceItem` for the source's medicines) and returns the
:class:`Difference` s, each with an id that is a hash of what it says, so a client can name
the ones the doctor accepted and a difference that no longer holds is not applied.

Matching a source medicine with an entry, most certain first: the dispensing's prescription
is linked to the entry; the same FEST id; the same ATC code; the same name once case,
punctuation and spacing are set aside; the same brand (or substance) and strength once form
words are too ("Paracet 500 mg" is "Paracet Tab 500 mg", :mod:`pll.domain.drug_names`); the
same brand where one side states no strength. Past the FEST id, two medicines that state
different strengths are never one (a typed name the catalogue resolves comes with its
substance's ATC code, :mod:`pll.services.reconcile`).

Entries in use (``active``, ``on-hold``) are what the list says the patient uses; an entry
discontinued within :data:`LOOKBACK` only serves to explain a source
medicine (a ``status-differs`` instead of a ``missing-on-list``).

Two kinds of source, two ways to pair:

- **A list** (patient-reported, discharge, other) says what the patient uses *now*: each of
  its lines pairs with at most one entry and each entry with at most one line, entries in use
  and lines agreeing in status first. A line in use with no entry is ``missing-on-list``; an
  entry in use with no line is ``not-in-source``; a pair can differ in status (in use, paused,
  discontinued) and in dosage (compared as the dosage texts, when the source gives one).
- **The dispensing history** says what was handed out over the last :data:`LOOKBACK`: many
  dispensings are one medicine, so every dispensing joins the entry it matches, and those
  that match none are one ``missing-on-list`` per medicine — the difference that matters
  most, listed first. An entry in use that nothing was dispensed on is shown as
  ``not-in-source`` ("ikke utlevert siste 12 måneder"): the doctor expects to see it (a
  medicine the patient may no longer take, or one bought without prescription), and judges
  it; it is never changed unless accepted. A dispensing says nothing of a pause or of the
  dosage used, so there is no ``dosage-differs`` from it; a dispensing *after* an entry was
  discontinued is a ``status-differs`` (the patient still collects a stopped medicine).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pll.domain.drug_names import NameKey, name_key, strengths_differ
from pll.domain.errors import InvalidInput
from pll.domain.model import ENDED, IN_USE

#: How far back the dispensing history is read, and how long ago an entry may have been
#: discontinued and still explain a source medicine.
LOOKBACK = timedelta(days=365)


class Origin(StrEnum):
    """Where the source comes from (the ``source`` code of ``$compare``)."""

    DISPENSING = "dispensing"
    PATIENT = "patient"
    DISCHARGE = "discharge"
    OTHER = "other"

    @property
    def label(self) -> str:
        """What the source is, in a change's reason: "Samstemt mot <label>"."""
        return _LABEL[self]


_LABEL = {
    Origin.DISPENSING: "utleveringer siste 12 måneder",
    Origin.PATIENT: "pasientens egen liste",
    Origin.DISCHARGE: "epikrise",
    Origin.OTHER: "annen legemiddelliste",
}


class Kind(StrEnum):
    MISSING_ON_LIST = "missing-on-list"
    NOT_IN_SOURCE = "not-in-source"
    DOSAGE_DIFFERS = "dosage-differs"
    STATUS_DIFFERS = "status-differs"


_ORDER = {
    Kind.MISSING_ON_LIST: 0,
    Kind.STATUS_DIFFERS: 1,
    Kind.DOSAGE_DIFFERS: 2,
    Kind.NOT_IN_SOURCE: 3,
}


@dataclass(frozen=True)
class Source:
    """What the list is compared with: PLL's own dispensing history, or a list given as FHIR
    JSON (a ``Bundle`` of ``MedicationStatement`` s, or a ``List`` containing them).
    ``where`` is where that resource stands in the request, for error locations."""

    origin: Origin
    resource: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)
    where: str = "resource"

    @classmethod
    def dispensing(cls) -> Source:
        return cls(Origin.DISPENSING)


@dataclass(frozen=True)
class Drug:
    """What a medicine is, as far as matching goes."""

    display: str
    fest: tuple[str, ...] = ()
    atc: tuple[str, ...] = ()


@dataclass(frozen=True)
class Listed:
    """One entry of the list as the comparison sees it."""

    entry_id: str
    version: int
    status: str
    drug: Drug
    dosage: str | None = None
    ended_at: datetime | None = None
    prescriptions: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceItem:
    """One medicine of the source. ``status`` is ``active``, ``on-hold``, ``stopped`` or
    ``completed``; ``statement`` is the ``MedicationStatement`` content an accepted
    difference puts on the list (dosage, coding) — carried along, never read here."""

    drug: Drug
    status: str = "active"
    dosage: str | None = None
    #: where in the source: ``Bundle.entry[2].resource``, ``MedicationDispense/<id>``
    where: str = ""
    #: a dispensing: when it was handed out, and the prescription it was made on
    when: datetime | None = None
    prescription: str | None = None
    #: a status reason the source gives (why it was stopped)
    reason: str | None = None
    statement: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Difference:
    """One thing the list and the source disagree on, and what it would take to agree."""

    id: str
    kind: Kind
    drug: Drug
    #: one line in Norwegian (bokmål) for the doctor
    text: str
    entry_id: str | None = None
    entry_version: int | None = None
    list_dosage: str | None = None
    source_dosage: str | None = None
    list_status: str | None = None
    source_status: str | None = None
    #: the source's medicine, when the source has it
    item: SourceItem | None = None


def normalised(text: str | None) -> str:
    """A name or dosage text as it is compared: case, punctuation and spacing set aside."""
    if not text:
        return ""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", folded).split())


def match_level(entry: Listed, item: SourceItem) -> int | None:
    """How certainly ``item`` is the entry's medicine: 0 linked prescription, 1 FEST id,
    2 ATC code, 3 name, 4 brand and strength, 5 brand (one side states no strength);
    ``None`` when it is not."""
    if item.prescription and item.prescription in entry.prescriptions:
        return 0
    if set(entry.drug.fest) & set(item.drug.fest):
        return 1
    ours, theirs = name_key(entry.drug.display), name_key(item.drug.display)
    if strengths_differ(ours, theirs):
        return None
    if {c.upper() for c in entry.drug.atc} & {c.upper() for c in item.drug.atc}:
        return 2
    name = normalised(entry.drug.display)
    if name and name == normalised(item.drug.display):
        return 3
    return _brand_level(ours, theirs)


def _brand_level(ours: NameKey, theirs: NameKey) -> int | None:
    """4 the same brand and strength, 5 the same brand where one states no strength."""
    if not ours.brand or ours.brand != theirs.brand:
        return None
    return 4 if ours.strengths and theirs.strengths else 5


def compare(
    listed: Sequence[Listed], items: Sequence[SourceItem], origin: Origin, now: datetime
) -> list[Difference]:
    """Every difference between the list's entries and the source's medicines, in the order
    a doctor goes through them: missing on the list, status, dosage, not in the source."""
    # in a fixed order, so a tie pairs the same way however the entries come
    in_use = sorted((e for e in listed if e.status in IN_USE), key=lambda e: e.entry_id)
    ended = sorted(
        (
            e
            for e in listed
            if e.status in ENDED and (e.ended_at is None or e.ended_at >= now - LOOKBACK)
        ),
        key=lambda e: (-(e.ended_at.timestamp() if e.ended_at else 0.0), e.entry_id),
    )
    if origin is Origin.DISPENSING:
        recent = [i for i in items if i.when is not None and i.when >= now - LOOKBACK]
        found = _dispensing(in_use, ended, recent)
    else:
        found = _listed_source(in_use, ended, [i for i in items if i.status in _STATUSES], origin)
    return _identified(found, origin)


_STATUSES = IN_USE | ENDED


class _Index:
    """The entries by what :func:`match_level` compares — a linked prescription, a FEST id,
    an ATC code, the normalised name, the brand with or without its strength — so a source
    medicine meets only the entries it can match, never every entry of the list."""

    def __init__(self, entries: Sequence[Listed]) -> None:
        self._by: dict[tuple[str, ...], list[int]] = {}
        self._keys: dict[int, NameKey] = {}
        for ei, e in enumerate(entries):
            self.add(ei, e)

    def add(self, ei: int, e: Listed) -> None:
        keys: set[tuple[str, ...]] = {("rx", p) for p in e.prescriptions}
        keys |= {("fest", c) for c in e.drug.fest}
        keys |= {("atc", c.upper()) for c in e.drug.atc}
        name = normalised(e.drug.display)
        if name:
            keys.add(("name", name))
        key = name_key(e.drug.display)
        if key.brand:
            keys.add(("brand", key.brand))
            # by its strength, or as a brand stating none (which any strength may match)
            keys.add(("named", key.brand, *key.strengths) if key.strengths else ("bare", key.brand))
        self._keys[ei] = key
        for k in keys:
            self._by.setdefault(k, []).append(ei)

    def matches(self, item: SourceItem) -> dict[int, int]:
        """The entries ``item`` matches, by index, each with its :func:`match_level`: the
        keys are looked up most certain first, so an entry's first hit is its level; past a
        FEST id, an entry stating another strength is no match."""
        keys: list[tuple[str, ...]] = [("rx", item.prescription)] if item.prescription else []
        keys += [("fest", c) for c in item.drug.fest]
        keys += [("atc", c.upper()) for c in item.drug.atc]
        keys.append(("name", normalised(item.drug.display)))
        key = name_key(item.drug.display)
        if key.brand and key.strengths:
            keys += [("named", key.brand, *key.strengths), ("bare", key.brand)]
        elif key.brand:
            keys.append(("brand", key.brand))
        found: dict[int, int] = {}
        for k in keys:
            level = _LEVEL[k[0]]
            for ei in self._by.get(k, ()):
                found.setdefault(ei, level)
        return {
            ei: level
            for ei, level in found.items()
            if level <= 1 or not strengths_differ(self._keys[ei], key)
        }


_LEVEL = {"rx": 0, "fest": 1, "atc": 2, "name": 3, "named": 4, "bare": 5, "brand": 5}


def _listed_source(
    in_use: list[Listed], ended: list[Listed], items: list[SourceItem], origin: Origin
) -> list[Difference]:
    entries = in_use + ended
    index = _Index(entries)
    # what the ranking reads, worked out once per side rather than once per pair
    entry_in_use = [e.status in IN_USE for e in entries]
    entry_dosage = [normalised(e.dosage) for e in entries]
    candidates = []
    for ii, item in enumerate(items):
        item_in_use = item.status in IN_USE
        item_dosage = normalised(item.dosage)
        for ei, level in index.matches(item).items():
            rank = (
                0 if entry_in_use[ei] else 1,
                0 if entry_in_use[ei] == item_in_use else 1,
                level,
                0 if entry_dosage[ei] == item_dosage else 1,
            )
            candidates.append((rank, ei, ii))
    candidates.sort()
    paired: dict[int, int] = {}  # entry index -> item index
    taken: set[int] = set()
    for _, ei, ii in candidates:
        if ei not in paired and ii not in taken:
            paired[ei] = ii
            taken.add(ii)
    out: list[Difference] = []
    for ei, entry in enumerate(entries):
        if ei in paired:
            out += _pair(entry, items[paired[ei]], origin)
        elif entry.status in IN_USE:
            out.append(_not_in_source(entry, origin))
    out += [
        _missing(item, origin)
        for ii, item in enumerate(items)
        if ii not in taken and item.status in IN_USE
    ]
    return out


def _pair(entry: Listed, item: SourceItem, origin: Origin) -> list[Difference]:
    listed_in_use, source_in_use = entry.status in IN_USE, item.status in IN_USE
    if not listed_in_use and not source_in_use:
        return []  # both say it has ended
    out = []
    if listed_in_use != source_in_use or (source_in_use and entry.status != item.status):
        out.append(_status(entry, item, origin))
    dosage_differs = bool(item.dosage) and normalised(entry.dosage) != normalised(item.dosage)
    if listed_in_use and source_in_use and dosage_differs:
        out.append(_dosage(entry, item, origin))
    return out


def _dispensing(
    in_use: list[Listed], ended: list[Listed], items: list[SourceItem]
) -> list[Difference]:
    latest_first = sorted(items, key=_handed_over, reverse=True)
    entries = in_use + ended
    index = _Index(entries)
    on_entry: dict[int, list[SourceItem]] = {}
    unlisted: list[list[SourceItem]] = []  # one group per medicine, newest dispensing first
    # the groups by their first dispensing's medicine, as the entries are indexed
    groups = _Index([])
    for item in latest_first:
        scored = [
            (0 if entries[ei].status in IN_USE else 1, level, ei)
            for ei, level in index.matches(item).items()
        ]
        if scored:
            on_entry.setdefault(min(scored)[2], []).append(item)
            continue
        gi = min(groups.matches(item), default=None)
        if gi is None:
            groups.add(len(unlisted), _as_listed(item))
            unlisted.append([item])
        else:
            unlisted[gi].append(item)
    out = [_missing(group[0], Origin.DISPENSING) for group in unlisted]
    for ei, entry in enumerate(entries):
        given = on_entry.get(ei, [])
        if entry.status in IN_USE:
            if not given:
                out.append(_not_in_source(entry, Origin.DISPENSING))
            continue
        after = [i for i in given if entry.ended_at and i.when and i.when > entry.ended_at]
        if after:
            out.append(_status(entry, after[0], Origin.DISPENSING))
    return out


def _handed_over(item: SourceItem) -> tuple[float, str]:
    return (item.when.timestamp() if item.when else 0.0, item.where)


def _as_listed(item: SourceItem) -> Listed:
    """A dispensing as an entry would name it, to match other dispensings against."""
    linked = (item.prescription,) if item.prescription else ()
    return Listed("", 0, "active", item.drug, prescriptions=linked)


# -- what each difference says ------------------------------------------------------------------

_STATUS_WORD = {
    "active": "i bruk",
    "on-hold": "pauset",
    "stopped": "seponert",
    "completed": "avsluttet",
}
#: where a source says something, after "står ..." / "men ... "
_IN = {
    Origin.DISCHARGE: "i epikrisen",
    Origin.OTHER: "i den andre listen",
    Origin.PATIENT: "i pasientens egen liste",
}


def _date(moment: datetime | None) -> str:
    return moment.strftime("%d.%m.%Y") if moment else "ukjent dato"


def _missing(item: SourceItem, origin: Origin) -> Difference:
    name = item.drug.display
    if origin is Origin.DISPENSING:
        text = f"{name} er utlevert {_date(item.when)}, men står ikke på listen"
    elif origin is Origin.PATIENT:
        text = f"Pasienten oppgir at hen bruker {name}, men den står ikke på listen"
    else:
        text = f"{name} står {_IN[origin]}, men ikke på listen"
    return Difference(
        "",
        Kind.MISSING_ON_LIST,
        item.drug,
        text,
        source_dosage=item.dosage,
        source_status=item.status,
        item=item,
    )


def _not_in_source(entry: Listed, origin: Origin) -> Difference:
    name = entry.drug.display
    if origin is Origin.DISPENSING:
        text = f"{name} står på listen, men er ikke utlevert siste 12 måneder"
    elif origin is Origin.PATIENT:
        text = f"{name} står på listen, men pasienten oppgir ikke at hen bruker den"
    else:
        text = f"{name} står på listen, men ikke {_IN[origin]}"
    return Difference(
        "",
        Kind.NOT_IN_SOURCE,
        entry.drug,
        text,
        entry.entry_id,
        entry.version,
        list_dosage=entry.dosage,
        list_status=entry.status,
    )


def _status(entry: Listed, item: SourceItem, origin: Origin) -> Difference:
    name = entry.drug.display
    listed, source = _STATUS_WORD[entry.status], _STATUS_WORD[item.status]
    if origin is Origin.DISPENSING:
        text = (
            f"{name} er seponert på listen ({_date(entry.ended_at)}), men utlevert "
            f"{_date(item.when)}"
        )
    elif origin is Origin.PATIENT:
        text = f"{name} er {listed} på listen, men pasienten oppgir at den er {source}"
    else:
        text = f"{name} er {listed} på listen, men {source} {_IN[origin]}"
    return Difference(
        "",
        Kind.STATUS_DIFFERS,
        entry.drug,
        text,
        entry.entry_id,
        entry.version,
        entry.dosage,
        item.dosage,
        entry.status,
        item.status,
        item,
    )


def _dosage(entry: Listed, item: SourceItem, origin: Origin) -> Difference:
    listed = f"«{entry.dosage}»" if entry.dosage else "ingen"
    if origin is Origin.PATIENT:
        said = f"pasienten oppgir «{item.dosage}»"
    else:
        said = f"{_IN[origin]} «{item.dosage}»"
    return Difference(
        "",
        Kind.DOSAGE_DIFFERS,
        entry.drug,
        f"{entry.drug.display}: dosering på listen {listed}, {said}",
        entry.entry_id,
        entry.version,
        entry.dosage,
        item.dosage,
        entry.status,
        item.status,
        item,
    )


# -- ids ---------------------------------------------------------------------------------------

ID_PATTERN = re.compile(r"[0-9a-f]{16}(?:-[0-9]{1,4})?")


def _drug_key(drug: Drug) -> list[Any]:
    return [sorted(drug.fest), sorted(c.upper() for c in drug.atc), normalised(drug.display)]


def difference_id(d: Difference, origin: Origin) -> str:
    """A hash of what the difference says: the same difference on the same list and source
    has the same id; once the entry or the source changes what it says, the id changes."""
    material = [
        d.kind.value,
        origin.value,
        d.entry_id,
        d.list_status,
        normalised(d.list_dosage),
        d.source_status,
        normalised(d.source_dosage),
        _drug_key(d.drug),
        _drug_key(d.item.drug) if d.item is not None else None,
    ]
    text = json.dumps(material, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _identified(found: list[Difference], origin: Origin) -> list[Difference]:
    ordered = sorted(
        found,
        key=lambda d: (_ORDER[d.kind], normalised(d.drug.display), d.entry_id or "", d.text),
    )
    seen: dict[str, int] = {}
    out = []
    for d in ordered:
        base = difference_id(d, origin)
        seen[base] = seen.get(base, 0) + 1
        # two identical lines in a source: the second is told apart by its place
        out.append(replace(d, id=base if seen[base] == 1 else f"{base}-{seen[base]}"))
    return out


def accepted_ids(ids: Sequence[str], where: Sequence[str] | None = None) -> list[str]:
    """The ids of the differences a doctor accepted, each well-formed and named once."""
    out: list[str] = []
    for i, raw in enumerate(ids):
        here = where[i] if where is not None else f"accept[{i}]"
        value = str(raw).strip()
        if not ID_PATTERN.fullmatch(value):
            raise InvalidInput(
                f"{value[:40]!r} is not the id of a difference; use the ids $compare gives.", here
            )
        if value in out:
            raise InvalidInput(f"Difference {value} is accepted twice.", here)
        out.append(value)
    return out


# -- what accepting a difference does ----------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """What accepting one difference does to the list: put the source's medicine on it as a
    new entry (``create``), or change the entry ``entry_id`` — its status (with ``reason``)
    and/or its dosage (to that of ``dosage``)."""

    difference: Difference
    create: SourceItem | None = None
    entry_id: str | None = None
    status: str | None = None
    reason: str | None = None
    dosage: SourceItem | None = None


#: Longest reason a doctor gives for discontinuing (as on the discontinuation page).
MAX_REASON = 200


def action(d: Difference, origin: Origin, reason: str | None = None) -> Action:
    """Accepting a difference takes the source's side:

    - ``missing-on-list``: the source's medicine becomes a new entry;
    - ``not-in-source``: the entry is discontinued (``stopped``), with the doctor's
      ``reason`` when given and what the source said: "Bivirkning (Samstemming: står ikke
      i epikrisen)"; without one, the source's account is the reason;
    - ``dosage-differs``: the entry takes the source's dosage;
    - ``status-differs``: the entry takes the source's status — paused, resumed or
      discontinued; a discontinued entry is never brought back (DESIGN §3 rule 3), so a
      medicine the source has in use becomes a new entry.
    """
    if d.kind is Kind.MISSING_ON_LIST or (d.kind is Kind.STATUS_DIFFERS and d.list_status in ENDED):
        return Action(d, create=d.item)
    if d.kind is Kind.NOT_IN_SOURCE:
        said = _not_in(origin)
        stated = (reason or "").strip()[:MAX_REASON]
        why = f"{stated} ({said})" if stated else said
        return Action(d, entry_id=d.entry_id, status="stopped", reason=why)
    if d.kind is Kind.DOSAGE_DIFFERS:
        return Action(d, entry_id=d.entry_id, dosage=d.item)
    status = str(d.source_status)
    reason = None
    if status != "active":
        reason = f"Samstemming: {_said(origin, status)}"
        given = d.item.reason if d.item is not None else None
        reason += f" ({given})" if given else ""
    return Action(d, entry_id=d.entry_id, status=status, reason=reason)


def _not_in(origin: Origin) -> str:
    return (
        "Samstemming: "
        + {
            Origin.DISPENSING: "ikke utlevert siste 12 måneder",
            Origin.PATIENT: "pasienten oppgir at den ikke brukes",
            Origin.DISCHARGE: "står ikke i epikrisen",
            Origin.OTHER: "står ikke i den andre listen",
        }[origin]
    )


def _said(origin: Origin, status: str) -> str:
    word = _STATUS_WORD[status]
    if origin is Origin.PATIENT:
        return f"pasienten oppgir at den er {word}"
    return f"{word} {_IN.get(origin, '')}".strip()
