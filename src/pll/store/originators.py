"""Who recorded each entry and prescription first: the authors of their first versions.

A dentist or midwife changes only what they put on the list (:mod:`pll.domain.prescribers`);
the write path asks this for the entries and prescriptions a change may touch, and only for
such a prescriber, so a doctor's write runs no extra statement.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, bindparam, select

from pll.domain.model import Author
from pll.domain.prescribers import Originators
from pll.store.repository import author_of
from pll.store.schema import entry_version, prescription_version

_FIRST_ENTRIES = select(entry_version.c.entry_id, entry_version.c.changed_by).where(
    entry_version.c.entry_id.in_(bindparam("ids", expanding=True)),
    entry_version.c.version == 1,
)
_FIRST_PRESCRIPTIONS = select(
    prescription_version.c.prescription_id, prescription_version.c.changed_by
).where(
    prescription_version.c.prescription_id.in_(bindparam("ids", expanding=True)),
    prescription_version.c.version == 1,
)


def originators(conn: Connection, entry_ids: Iterable[str], rx_ids: Iterable[str]) -> Originators:
    """The first authors of these entries and prescriptions (those that exist)."""
    entries: dict[str, Author] = {}
    prescriptions: dict[str, Author] = {}
    wanted = sorted(set(entry_ids))
    if wanted:
        for rid, by in conn.execute(_FIRST_ENTRIES, {"ids": wanted}):
            entries[rid] = author_of(by)
    wanted = sorted(set(rx_ids))
    if wanted:
        for rid, by in conn.execute(_FIRST_PRESCRIPTIONS, {"ids": wanted}):
            prescriptions[rid] = author_of(by)
    return Originators(entries, prescriptions)
