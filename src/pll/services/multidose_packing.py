"""The multidose packing rule (:mod:`pll.domain.multidose_packing`) where the list changes:
every change of a list (:meth:`pll.services.lists.PLLService.apply_in` — the REST API,
``$sendMedication``, the web UI, accepted proposals) and the pharmacy's proposals (M25.2).

This module gathers what the pure rule judges: the FEST form of the entry's medicine in the
catalogue in use, the structured dosage (the entry's own, else the e-resept's structured
dosing an SFM send carries, or that of the prescription it is based on) and the
prescriptions the entry is based on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from pll.domain import multidose_packing as rules
from pll.domain.model import Entry, ListVersion, MedicationList, Prescription
from pll.domain.multidose import Proposed
from pll.domain.prescriptions import local_day
from pll.fhir.sfm.dosing import structured_dosage
from pll.services.decision_support import named
from pll.store import catalog as catalog_store
from pll.store import repository as repo

_ENTRY = "MedicationStatement"


def forms_of(conn: Connection, contents: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """The FEST form of each FEST code these contents name, in the catalogue in use (one
    lookup); a code the catalogue does not have, or no catalogue, is left out."""
    codes = sorted({c for content in contents if (c := named("", dict(content)).fest)})
    version = catalog_store.active(conn) if codes else None
    if version is None:
        return {}
    rows = catalog_store.drugs_by_code(conn, version, codes)
    return {code: str(row.form) for code, row in rows.items() if row.form}


def marked(
    entry_id: str | None,
    content: Mapping[str, Any],
    forms: Mapping[str, str],
    prescriptions: Mapping[str, Prescription],
    sent: Sequence[Mapping[str, Any]] = (),
    where: str = _ENTRY,
    *,
    redosed: bool = False,
    by_sfm: bool = False,
) -> rules.Marked:
    """What the rule judges of an entry with this content. ``by_sfm``: the entry comes in
    an SFM ``$sendMedication``, whose statement keeps its dosage as text beside the
    e-resept's structured dosing; only then does an active linked prescription's
    structured dosing stand in for a dosage given as text. An entry written over REST, in
    a transaction, by a proposal or in the web UI states its own dosage: free text there
    is refused even on a structured prescription (issue 18: "not free text"), since its
    text may say otherwise. ``redosed``: the change gave an entry already on the list a
    new dosage; then only a structured dosage it states (its own, or ``sent``) counts, not
    the prescription's, which says the dose as it was."""
    linked = [
        prescriptions[ref.get("reference", "").removeprefix("MedicationRequest/")]
        for ref in content.get("basedOn") or []
        if isinstance(ref, dict)
        and ref.get("reference", "").removeprefix("MedicationRequest/") in prescriptions
    ]
    structured: list[Sequence[Mapping[str, Any]]] = [sent]
    for rx in linked:
        if rx.status != "active" or redosed or not by_sfm:
            continue
        given = rx.content.get("dosageInstruction")
        structured.append(given if isinstance(given, list) else [])
        mapped = structured_dosage(rx.content)
        structured.append(mapped.dosage if mapped is not None else [])
    fest = named("", dict(content)).fest
    return rules.Marked(
        entry_id,
        forms.get(fest) if fest else None,
        rules.judged_dosage(content, *structured),
        linked,
        where,
    )


def check_change(
    conn: Connection,
    lst: MedicationList,
    record: ListVersion,
    now: datetime,
    places: Mapping[str, str],
    sent: Mapping[str, Sequence[Mapping[str, Any]]],
    imported: set[str],
    by_sfm: frozenset[str] = frozenset(),
    loaded: Mapping[str, Entry] | None = None,
) -> None:
    """Refuse a change that marks an entry for multidose packing, or changes a marked
    entry's medicine, dosage or prescriptions, when the entry cannot be packed. Entries
    imported as they are elsewhere (an SFM list read in) are not judged: they record
    what is, and an old list must still load. ``by_sfm``: the entries a ``$sendMedication``
    brings (:func:`marked`). ``loaded``: the entries as the change loaded them, before it;
    an entry's previous version is taken from there instead of read again (issue 20)."""
    judged: list[tuple[str, dict[str, Any] | None, dict[str, Any]]] = []
    for t in record.touched:
        if t.resource_type != _ENTRY or t.id in imported or t.id not in lst.entries:
            continue
        after = lst.entries[t.id].content
        before = None
        if t.action != "create":
            prior = (loaded or {}).get(t.id)
            if prior is not None and prior.version == t.version - 1:
                before = prior.content
            else:
                old = repo.resource_version(conn, _ENTRY, t.id, t.version - 1)
                before = repo.content_of(old.resource) if old is not None else None
        if rules.needs_judging(before, after):
            judged.append((t.id, before, after))
    if not judged:
        return
    forms = forms_of(conn, [content for _, _, content in judged])
    today = local_day(now)
    for rid, before, content in judged:
        rules.check(
            marked(
                None if before is None else rid,
                content,
                forms,
                lst.prescriptions,
                sent.get(rid, ()),
                places.get(rid, _ENTRY),
                redosed=rules.redosed(before, content),
                by_sfm=rid in by_sfm,
            ),
            today,
        )


def prescriptions_named(items: Iterable[Proposed]) -> set[str]:
    """The prescriptions the statements of a proposal are based on, to load with the list."""
    return {
        str(ref.get("reference", "")).removeprefix("MedicationRequest/")
        for item in items
        for ref in (item.content or {}).get("basedOn") or []
        if isinstance(ref, dict)
    }


def check_proposal(
    conn: Connection, lst: MedicationList, items: Sequence[Proposed], now: datetime
) -> None:
    """Refuse a pharmacy's proposal (M25.2) that would mark for packing, or leave marked, an
    entry that cannot be packed: the doctor would have to reject it anyway. What the
    doctor accepts is judged again as the change it then is (:func:`check_change`)."""
    judged = []
    for item in items:
        if item.content is None:
            continue
        entry = lst.entries.get(item.entry_id) if item.entry_id else None
        before = entry.content if entry is not None else None
        if rules.needs_judging(before, item.content):
            judged.append(item)
    if not judged:
        return
    forms = forms_of(conn, [item.content or {} for item in judged])
    today = local_day(now)
    for item in judged:
        entry = lst.entries.get(item.entry_id) if item.entry_id else None
        rules.check(
            marked(
                item.entry_id,
                item.content or {},
                forms,
                lst.prescriptions,
                where=f"{item.where}.statement",
                redosed=rules.redosed(entry.content if entry else None, item.content or {}),
            ),
            today,
        )
