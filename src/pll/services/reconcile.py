"""Reconciliation (*samstemming*): compare a patient's PLL with another source, then take the
differences the doctor accepts and confirm the list — as one change.

:meth:`Reconciliation.compare` is a read: it decides access and leaves an audit record like
every read, and returns the differences :func:`pll.domain.reconcile.compare` finds between the
list and the source (PLL's own dispensing history, or a list given as FHIR).

:meth:`Reconciliation.resolve` compares again, in the transaction that writes, turns each
accepted difference into the list change it means (:func:`pll.domain.reconcile.action`), and
applies those changes together with the confirmation through
:meth:`PLLService.apply_in` — so access, decision support, the relay baton, the version,
the audit trail and the outgoing event are those of every change. The relay baton: the doctor
names the list version they compared (``If-Match``). If the list has moved on since, the
change still goes through when nothing it concerns moved — every entry changed since then
agrees with the source now, and every accepted difference still stands; otherwise it is
refused (412) with who changed what, and nothing is written. An accepted id that is not a
difference of the list and the source as they are now is refused, naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Row

from pll.auth.access import Access, Verb
from pll.domain import reconcile as rules
from pll.domain.diff import diff_content
from pll.domain.drug_names import name_key, names_a_medicine
from pll.domain.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PreconditionRequired,
    VersionConflict,
)
from pll.domain.model import IN_USE, RX_ACTIVE, Entry, Prescription
from pll.domain.reconcile import Difference, Kind, Origin, Source, SourceItem
from pll.fhir import reconcile as fhir_rc
from pll.services.catalogue import Catalogue
from pll.services.lists import ChangeResult, Op, PLLService
from pll.store import repository as repo
from pll.store import sfm as sfm_store

__all__ = [
    "Comparison",
    "Difference",
    "Kind",
    "Origin",
    "Reconciliation",
    "Resolution",
    "Source",
]

_ENTRY = "MedicationStatement"


@dataclass(frozen=True)
class Comparison:
    """The differences between a list, at ``list_version``, and a source."""

    list_id: str
    patient_id: str
    #: the version compared: what ``resolve`` takes as ``based_on_version``
    list_version: int
    origin: Origin
    differences: tuple[Difference, ...]
    #: the source's medicines as they were read (none for the dispensing history)
    items: tuple[SourceItem, ...] = ()


@dataclass(frozen=True)
class Resolution:
    """A reconciliation written: the change (one list version, confirmed), the differences
    it took, and those it left as they are."""

    result: ChangeResult
    accepted: tuple[Difference, ...]
    rejected: tuple[Difference, ...]


@dataclass
class _State:
    head: Row[Any]
    entries: dict[str, Entry]
    prescriptions: dict[str, Prescription]
    differences: list[Difference]


@dataclass
class Reconciliation:
    """Compare a list with a source; take the accepted differences and confirm the list."""

    service: PLLService

    def compare(self, access: Access, list_id: str, source: Source) -> Comparison:
        """The differences between the list as it is and ``source``. A read: anyone who may
        read the list may compare it (a nurse too; only a doctor may then change it)."""
        items, persons = _parsed(source)
        items = self._known(items)
        svc = self.service
        with svc.guard(access):
            with svc.db.read() as conn:
                head = _head(conn, list_id)
                facts = svc.trail.admit(
                    conn, access, Verb.READ, head.patient_id, "compare", "List", list_id
                )
                _same_patient(facts.identifier, persons)
                _, _, listed, found = self._sides(conn, head, source.origin, items)
            # the comparison itself needs no transaction: a read holds none longer than
            # its reading (on SQLite even a read holds the one writer, for its audit row)
            differences = rules.compare(listed, found, source.origin, svc.clock())
            return Comparison(
                list_id,
                head.patient_id,
                head.version,
                source.origin,
                tuple(differences),
                tuple(items),
            )

    def resolve(
        self,
        access: Access,
        list_id: str,
        source: Source,
        accepted: Sequence[str],
        based_on_version: int | None,
        reason: str | None = None,
        reasons: Mapping[str, str] | None = None,
    ) -> Resolution:
        """Apply the accepted differences (their ids from :meth:`compare`) and confirm the
        list, as one change based on the list version compared. No accepted ids: the list
        is confirmed as it is. ``reasons`` are the doctor's reasons for the entries an
        accepted ``not-in-source`` discontinues, by difference id (:func:`rules.action`).
        Returns the change (``result.list_version`` is the new, confirmed version)."""
        wanted = rules.accepted_ids(list(accepted))
        items, persons = _parsed(source)
        items = self._known(items)
        if based_on_version is None:
            raise PreconditionRequired(
                "A reconciliation confirms the list: say which list version you compared, "
                'with If-Match: W/"<version>" (the listVersion $compare gave).',
                "List",
            )
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            head = _head(conn, list_id, lock=True)
            facts = svc.trail.admit(
                conn, access, Verb.WRITE, head.patient_id, "reconcile", "List", list_id
            )
            _same_patient(facts.identifier, persons)
            state = self._state(conn, head, source.origin, items)
            by_id = {d.id: d for d in state.differences}
            confirm_on = self._baton(conn, state, based_on_version, wanted, by_id)
            chosen = [by_id[i] for i in wanted]
            ops = self._ops(
                state, [rules.action(d, source.origin, (reasons or {}).get(d.id)) for d in chosen]
            )
            ops.append(Op("confirm", if_match=confirm_on))
            why = reason or (
                f"Samstemt mot {source.origin.label}: {len(chosen)} av "
                f"{len(state.differences)} avvik tatt inn"
            )
            result = svc.apply_in(conn, access, head.patient_id, ops, why)
            taken = set(wanted)
            rest = tuple(d for d in state.differences if d.id not in taken)
            return Resolution(result, tuple(chosen), rest)

    def _known(self, items: list[SourceItem]) -> list[SourceItem]:
        """The source's medicines, those named by text alone with what the catalogue says of
        them: their substance's ATC code, so "Paracetamol 500 mg" meets the list's "Paracet
        Tab 500 mg" (the strength stays as written, and two strengths never meet). Read
        before any transaction: the catalogue is reference data. A text that cannot name a
        medicine (markup, no letters), or that the catalogue does not know and that states no
        strength and no dosage, is refused where it stands: it is no medicine to compare."""
        brands: dict[int, str] = {}
        for n, item in enumerate(items):
            if item.drug.fest or item.drug.atc:
                continue
            if not names_a_medicine(item.drug.display):
                raise _no_medicine(item)
            brands[n] = name_key(item.drug.display).brand
        known = Catalogue(self.service.db).atc_of(brands.values()) if brands else None
        out = []
        for n, item in enumerate(items):
            code = (known or {}).get(brands.get(n, ""))
            if code is not None:
                out.append(replace(item, drug=replace(item.drug, atc=(code,))))
                continue
            stated = name_key(item.drug.display).strengths or item.dosage
            if n in brands and known is not None and not stated:
                raise _no_medicine(item)
            out.append(item)
        return out

    # -- reading both sides ----------------------------------------------------------------

    def _state(
        self, conn: Connection, head: Row[Any], origin: Origin, items: list[SourceItem]
    ) -> _State:
        entries, prescriptions, listed, found = self._sides(conn, head, origin, items)
        differences = rules.compare(listed, found, origin, self.service.clock())
        return _State(head, entries, prescriptions, differences)

    def _sides(
        self, conn: Connection, head: Row[Any], origin: Origin, items: list[SourceItem]
    ) -> tuple[dict[str, Entry], dict[str, Prescription], list[rules.Listed], list[SourceItem]]:
        """What is compared, read: the list's entries (and prescriptions), the entries as
        the comparison sees them, and the source's medicines (PLL's own dispensings)."""
        # every entry the list had: one discontinued long ago may still explain a dispensing
        entries = {e.id: e for e in repo.all_entries(conn, head.id)}
        prescriptions: dict[str, Prescription] = {}
        if origin is Origin.DISPENSING:
            prescriptions = repo.all_prescriptions(conn, head.id)
            items = _dispensed(conn, head.patient_id, prescriptions)
        return entries, prescriptions, [fhir_rc.listed(e) for e in entries.values()], items

    # -- the relay baton -------------------------------------------------------------------

    def _baton(
        self,
        conn: Connection,
        state: _State,
        based_on: int,
        wanted: list[str],
        by_id: dict[str, Difference],
    ) -> int:
        """The list version the confirmation is made on, once the comparison the doctor saw
        is known to stand; refused (412 or 409) when it does not."""
        head = state.head
        unknown = [i for i in wanted if i not in by_id]
        if based_on == head.version:
            if unknown:
                raise Conflict(
                    f"{_named(unknown)} not among the differences between List/{head.id} and "
                    "the source as they are now (the source changed, or the id is wrong). "
                    "Compare again; nothing was changed.",
                    "accept",
                    {"differences": ", ".join(unknown)},
                )
            return based_on
        baton = repo.author_of(head.baton)
        if not 1 <= based_on < head.version:
            raise _list_moved(head, based_on, baton.label(), "")
        if unknown:
            raise _list_moved(
                head,
                based_on,
                baton.label(),
                f" {_named(unknown)} no longer among the differences.",
            )
        moved = {
            rid
            for rtype, rid in repo.touched_between(conn, head.id, based_on, head.version)
            if rtype == _ENTRY
        }
        concerned = sorted({d.entry_id for d in state.differences if d.entry_id in moved})
        if concerned:
            raise self._entry_moved(conn, state, concerned[0], based_on)
        return int(head.version)

    def _entry_moved(
        self, conn: Connection, state: _State, entry_id: str, based_on: int
    ) -> VersionConflict:
        """Tell the doctor which entry someone else changed since their comparison, how,
        and hand back its current version (DESIGN §3 rule 2)."""
        entry = state.entries[entry_id]
        history = repo.versions_until(conn, _ENTRY, [entry_id], based_on).get(entry_id, [])
        held = max(history, default=None)
        said = ""
        if held is not None:
            changes = diff_content(repo.content_of(held[2]), entry.content)
            said = "; ".join(
                f"{c.element}: {c.before or '(none)'} → {c.after or '(none)'}" for c in changes
            )
        exc = VersionConflict(
            f"{_ENTRY}/{entry_id} was changed by {entry.changed_by.label()} at "
            f"{entry.last_changed.isoformat()}, after list version {based_on} that you "
            f"compared" + (f" (changed: {said})" if said else " (it was added since)") + ". "
            "Compare again and reconcile on the current version; nothing was changed.",
            _ENTRY,
            {
                "resource": f"{_ENTRY}/{entry_id}",
                "yourVersion": str(held[0]) if held is not None else "none",
                "currentVersion": str(entry.version),
                "changedBy": entry.changed_by.label(),
                "changedAt": entry.last_changed.isoformat(),
            },
        )
        row = repo.resource_row(conn, _ENTRY, entry_id)
        if row is not None:
            exc.resources.append(orjson.loads(row.resource))
        return exc

    # -- the changes -----------------------------------------------------------------------

    def _ops(self, state: _State, actions: list[rules.Action]) -> list[Op]:
        """One update per entry (its status and dosage together), then the new entries."""
        updates: dict[str, dict[str, Any]] = {}
        creates: list[Op] = []
        for act in actions:
            if act.create is not None:
                based_on = _free_prescription(state, act.create)
                resource = fhir_rc.new_statement(act.create, based_on)
                creates.append(Op("create", _ENTRY, self.service.ids(), resource))
                continue
            eid = str(act.entry_id)
            current = updates.get(eid) or state.entries[eid].content
            updates[eid] = fhir_rc.changed_entry(
                current, status=act.status, reason=act.reason, dosage=act.dosage
            )
        ops = [
            Op("update", _ENTRY, eid, content, if_match=state.entries[eid].version)
            for eid, content in updates.items()
        ]
        return ops + creates


def _parsed(source: Source) -> tuple[list[SourceItem], list[tuple[str, str]]]:
    """The source's medicines (checked before anything is read), and whom it names."""
    if source.origin is Origin.DISPENSING:
        return [], []
    return fhir_rc.source_items(source)


def _no_medicine(item: SourceItem) -> InvalidInput:
    name = item.drug.display[:60]
    return InvalidInput(
        f"{name!r} names no medicine: the catalogue knows no drug by that name, and no "
        "strength or dosage is given. Name the drug as FEST does, or code it (FEST or ATC).",
        f"{item.where}.medicationCodeableConcept",
        norwegian=(
            f"«{name}» er ikke et legemiddel PLL kjenner. Skriv legemidlets navn, gjerne med "
            "styrke og dosering (for eksempel «Paracet 500 mg; 2 tabletter ved behov»)."
        ),
    )


def _head(conn: Connection, list_id: str, *, lock: bool = False) -> Row[Any]:
    head = repo.list_row(conn, list_id=list_id, lock=lock)
    if head is None:
        raise NotFound(f"List/{list_id} does not exist.", "List.id")
    return head


def _same_patient(identifier: str, persons: list[tuple[str, str]]) -> None:
    """A source that names its patient must name this list's patient."""
    for value, where in persons:
        if value != identifier:
            raise InvalidInput(
                "The source is about another patient than this list's: its fødselsnummer or "
                "D-nummer is not the list's patient's.",
                where,
            )


def _dispensed(
    conn: Connection, patient_id: str, prescriptions: dict[str, Prescription]
) -> list[SourceItem]:
    out = []
    for dispense_id, content, rx_id in sfm_store.dispenses(conn, patient_id):
        item = fhir_rc.dispensed_item(dispense_id, content, prescriptions.get(rx_id or ""))
        if item is not None:
            out.append(item)
    return out


def _free_prescription(state: _State, item: SourceItem) -> str | None:
    """The dispensing's prescription, for a new entry to name: when it is still in use and
    no entry in use holds it (a prescription is never on two active entries)."""
    rx = state.prescriptions.get(item.prescription or "")
    if rx is None or rx.status not in RX_ACTIVE:
        return None
    held = any(rx.id in e.prescription_ids for e in state.entries.values() if e.status in IN_USE)
    return None if held else rx.id


def _named(ids: list[str]) -> str:
    if len(ids) == 1:
        return f"Difference {ids[0]} is"
    return f"Differences {', '.join(ids)} are"


def _list_moved(head: Row[Any], based_on: int, by: str, more: str) -> VersionConflict:
    updated: datetime = head.updated_at
    return VersionConflict(
        f"List/{head.id} was changed by {by} at {updated.isoformat()}: you compared version "
        f"{based_on}, the current version is {head.version}.{more} Compare again and "
        "reconcile on the current version; nothing was changed.",
        "List",
        {
            "resource": f"List/{head.id}",
            "yourVersion": str(based_on),
            "currentVersion": str(head.version),
            "changedBy": by,
            "changedAt": updated.isoformat(),
        },
    )
