"""A care unit's acknowledgements of list changes (issue 17, migration 0016) and the list's
past they are measured against. Every function takes the caller's open transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Row, and_, func, insert, select

from pll.domain.administration.changes import Change, EntryVersion
from pll.store.repository import author_of, content_of
from pll.store.schema import (
    care_acknowledged_change,
    care_acknowledgement,
    care_registration,
    entry,
    entry_version,
    pll_version,
)


def registration_start(conn: Connection, patient_id: str, orgnr: str) -> datetime | None:
    """When the patient's open registration with the unit began; ``None``: not registered."""
    found = conn.execute(
        select(func.min(care_registration.c.started_at)).where(
            care_registration.c.patient_id == patient_id,
            care_registration.c.unit_orgnr == orgnr,
            care_registration.c.ended_at.is_(None),
        )
    ).scalar_one_or_none()
    return cast("datetime | None", found)


def version_at(conn: Connection, list_id: str, at: datetime) -> int:
    """The list version current at ``at`` (0: the list did not exist yet)."""
    found = conn.execute(
        select(func.max(pll_version.c.version)).where(
            pll_version.c.list_id == list_id, pll_version.c.recorded_at <= at
        )
    ).scalar_one_or_none()
    return int(found or 0)


def acknowledged(conn: Connection, list_id: str, orgnr: str, since: datetime) -> int:
    """The newest list version the unit has acknowledged since ``since`` (0: none)."""
    found = conn.execute(
        select(func.max(care_acknowledgement.c.list_version)).where(
            care_acknowledgement.c.list_id == list_id,
            care_acknowledgement.c.unit_orgnr == orgnr,
            care_acknowledgement.c.acknowledged_at >= since,
        )
    ).scalar_one_or_none()
    return int(found or 0)


def entry_versions(
    conn: Connection, list_id: str, base: int, upto: int
) -> dict[str, list[EntryVersion]]:
    """The entries a list version ``base < v <= upto`` wrote: each with the version in force
    at the base (when there was one) and every version written after it up to ``upto``."""
    ev = entry_version
    columns = (ev.c.entry_id, ev.c.list_version, ev.c.resource, ev.c.changed_by, ev.c.recorded_at)
    later = conn.execute(
        select(*columns)
        .join(entry, entry.c.id == ev.c.entry_id)
        .where(entry.c.list_id == list_id, ev.c.list_version > base, ev.c.list_version <= upto)
        .order_by(ev.c.entry_id, ev.c.version)
    ).all()
    ids = sorted({r.entry_id for r in later})
    rows: Sequence[Row[Any]] = []
    if ids:
        newest = (
            select(ev.c.entry_id.label("eid"), func.max(ev.c.version).label("v"))
            .where(ev.c.entry_id.in_(ids), ev.c.list_version <= base)
            .group_by(ev.c.entry_id)
            .subquery()
        )
        rows = cast(
            "Sequence[Row[Any]]",
            conn.execute(
                select(*columns).join(
                    newest, and_(newest.c.eid == ev.c.entry_id, newest.c.v == ev.c.version)
                )
            ).all(),
        )
    out: dict[str, list[EntryVersion]] = {eid: [] for eid in ids}
    for r in [*rows, *later]:
        out[r.entry_id].append(
            EntryVersion(
                r.list_version, content_of(r.resource), author_of(r.changed_by), r.recorded_at
            )
        )
    return out


def list_versions(conn: Connection, list_id: str, base: int, upto: int) -> Sequence[Row[Any]]:
    """The list versions ``base <= v <= upto``: ``(version, recorded_at, author, list_json)``."""
    rows = conn.execute(
        select(
            pll_version.c.version,
            pll_version.c.recorded_at,
            pll_version.c.author,
            pll_version.c.list_json,
        )
        .where(pll_version.c.list_id == list_id, pll_version.c.version.between(base, upto))
        .order_by(pll_version.c.version)
    ).all()
    return cast("Sequence[Row[Any]]", rows)


def add(conn: Connection, values: dict[str, Any], changes: Sequence[Change]) -> None:
    """One acknowledgement and the changes it took in (never updated: append-only)."""
    conn.execute(insert(care_acknowledgement).values(**values))
    if changes:
        conn.execute(
            insert(care_acknowledged_change),
            [
                {
                    "acknowledgement_id": values["id"],
                    "seq": i,
                    "kind": c.kind.value,
                    "entry_id": c.entry_id,
                    "list_version": c.list_version,
                    "changed_at": c.at,
                }
                for i, c in enumerate(changes)
            ],
        )


def delays(conn: Connection, first: datetime, last: datetime) -> Sequence[Row[Any]]:
    """Each change acknowledged in ``[first, last)``: ``(unit_orgnr, changed_at,
    acknowledged_at)``."""
    a, c = care_acknowledgement, care_acknowledged_change
    rows = conn.execute(
        select(a.c.unit_orgnr, c.c.changed_at, a.c.acknowledged_at)
        .join(a, a.c.id == c.c.acknowledgement_id)
        .where(a.c.acknowledged_at >= first, a.c.acknowledged_at < last)
    ).all()
    return cast("Sequence[Row[Any]]", rows)


def open_registrations(conn: Connection) -> Sequence[Row[Any]]:
    """Every open registration: ``(unit_orgnr, patient_id)``."""
    rows = conn.execute(
        select(care_registration.c.unit_orgnr, care_registration.c.patient_id)
        .where(care_registration.c.ended_at.is_(None))
        .order_by(care_registration.c.unit_orgnr, care_registration.c.patient_id)
    ).all()
    return cast("Sequence[Row[Any]]", rows)
