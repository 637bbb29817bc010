"""Rows behind the multidose bags of the administration schedule (issue 17): the pharmacy's
packing reports (M25.3, kept in ``pll_message``) and the entry versions they were packed
from. Every function takes the caller's open transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Row, and_, func, select

from pll.domain.model import Entry
from pll.store.repository import author_of, content_of
from pll.store.schema import entry_version, pll_message

#: The kind a packing report is kept under in ``pll_message``.
PACKING_REPORT = "M25.3"


def packing_reports(conn: Connection, patient_id: str, limit: int) -> Sequence[Row[Any]]:
    """The patient's newest ``limit`` packing reports, newest first (one indexed range:
    ``ix_pll_message_patient`` is patient, kind, sent_at)."""
    query = (
        select(pll_message)
        .where(pll_message.c.patient_id == patient_id, pll_message.c.kind == PACKING_REPORT)
        .order_by(pll_message.c.sent_at.desc(), pll_message.c.id)
        .limit(limit)
    )
    return conn.execute(query).all()


def entries_at(conn: Connection, entry_ids: Iterable[str], list_version: int) -> dict[str, Entry]:
    """Each named entry as it stood at ``list_version`` of its list: its newest version
    written at or before that list version. An entry made later is not found."""
    ids = sorted(set(entry_ids))
    if not ids:
        return {}
    newest = (
        select(entry_version.c.entry_id, func.max(entry_version.c.version).label("version"))
        .where(entry_version.c.entry_id.in_(ids), entry_version.c.list_version <= list_version)
        .group_by(entry_version.c.entry_id)
        .subquery()
    )
    rows = conn.execute(
        select(entry_version).join(
            newest,
            and_(
                entry_version.c.entry_id == newest.c.entry_id,
                entry_version.c.version == newest.c.version,
            ),
        )
    ).all()
    return {
        r.entry_id: Entry(
            id=r.entry_id,
            version=r.version,
            content=content_of(r.resource),
            last_changed=r.recorded_at,
            changed_by=author_of(r.changed_by),
        )
        for r in rows
    }
