"""Reading the events of the pseudonymised extract (issue 19) page by page.

Each kind of event is read in the order of its table's primary key, a page at a time, each
page starting after the last key of the one before (keyset pagination): memory stays that
of one page however many rows there are, every page is one short transaction that holds no
lock a writer waits for, and every query is a range of the primary key's index on both
databases (so a page costs the same at the end of a table as at its start).
Rows outside ``[since, until)`` by their recorded time are skipped by the same queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Connection, Select

from pll.store.db import Database
from pll.store.schema import (
    discrepancy_case,
    discrepancy_case_version,
    dispense,
    medication_administration,
    medication_administration_version,
    patient,
    pll,
    pll_version,
    technical_case,
    technical_case_version,
)


@dataclass(frozen=True)
class Source:
    """One kind of event: its query (every column a row needs, including ``patient_id``),
    the columns of its key in order, the column of its recorded time, and the joined
    table's column equal to the key's first (``None``: no join)."""

    query: Select[Any]
    key: tuple[ColumnElement[Any], ...]
    recorded: ColumnElement[Any]
    joined: ColumnElement[Any] | None = None


def _sources() -> dict[str, Source]:
    v, a, av = pll_version, medication_administration, medication_administration_version
    dv, tv = discrepancy_case_version, technical_case_version
    return {
        "list-version": Source(
            sa.select(
                v.c.list_id,
                v.c.version,
                v.c.recorded_at,
                v.c.author,
                v.c.activity,
                v.c.touched,
                v.c.override,
                pll.c.patient_id,
            ).join(pll, pll.c.id == v.c.list_id),
            (v.c.list_id, v.c.version),
            v.c.recorded_at,
            pll.c.id,
        ),
        "dispense": Source(
            sa.select(
                dispense.c.id,
                dispense.c.patient_id,
                dispense.c.prescription_id,
                dispense.c.recorded_at,
                dispense.c.resource,
            ),
            (dispense.c.id,),
            dispense.c.recorded_at,
        ),
        "administration": Source(
            sa.select(
                av.c.administration_id,
                av.c.version,
                av.c.recorded_at,
                av.c.author,
                av.c.status,
                av.c.resource,
                a.c.patient_id,
                a.c.entry_id,
                # never changed by a correction (the planned dose and the second signer are
                # what was recorded); the reason not given is each version's own, read from
                # its resource (pll.stats.extract.not_given_reason)
                a.c.slot_key,
                a.c.verifier_hpr,
            ).join(a, a.c.id == av.c.administration_id),
            (av.c.administration_id, av.c.version),
            av.c.recorded_at,
            a.c.id,
        ),
        "case": Source(
            sa.select(
                dv.c.case_id,
                dv.c.version,
                dv.c.recorded_at,
                dv.c.author,
                dv.c.action,
                dv.c.status,
                discrepancy_case.c.patient_id,
                discrepancy_case.c.entry_id,
                discrepancy_case.c.kind,
                discrepancy_case.c.owner_org,
            ).join(discrepancy_case, discrepancy_case.c.id == dv.c.case_id),
            (dv.c.case_id, dv.c.version),
            dv.c.recorded_at,
            discrepancy_case.c.id,
        ),
        "technical-case": Source(
            sa.select(
                tv.c.case_id,
                tv.c.version,
                tv.c.recorded_at,
                tv.c.author,
                tv.c.action,
                tv.c.status,
                technical_case.c.patient_id,
                technical_case.c.client_id,
                technical_case.c.owner_org,
            ).join(technical_case, technical_case.c.id == tv.c.case_id),
            (tv.c.case_id, tv.c.version),
            tv.c.recorded_at,
            technical_case.c.id,
        ),
    }


SOURCES = _sources()


def pages(
    db: Database, kind: str, since: datetime | None, until: datetime, size: int
) -> Iterator[list[sa.Row[Any]]]:
    """The events of ``kind`` recorded in ``[since, until)``, ``size`` rows a page, in key
    order; each page read in its own transaction."""
    source = SOURCES[kind]
    after: tuple[Any, ...] | None = None
    while True:
        query = source.query.where(source.recorded < until)
        if since is not None:
            query = query.where(source.recorded >= since)
        if after is not None:
            query = query.where(_after(source.key, after))
            if source.joined is not None:
                # the same bound on the joined table's key: PostgreSQL does not carry a range
                # across the join's equality, and without it a merge join reads the joined
                # table from its start on every page
                query = query.where(source.joined >= after[0])
        query = query.order_by(*source.key).limit(size)
        with db.read() as conn:
            rows = list(conn.execute(query))
        if rows:
            yield rows
        if len(rows) < size:
            return
        last = rows[-1]._mapping
        after = tuple(last[column] for column in source.key)


def _after(key: tuple[ColumnElement[Any], ...], values: tuple[Any, ...]) -> ColumnElement[bool]:
    """Rows whose key comes after ``values``. A single column compares directly; two columns
    are spelt out (``a >= x AND (a > x OR (a = x AND b > y))``). The leading ``a >= x`` is
    what makes it a range on the primary key: PostgreSQL plans the ``OR`` alone as a filter
    over the index from its start, so every page read all the rows before it (at 1,000,000
    patients a page of list versions took 1 s instead of 6 ms, ``bench/README.md``)."""
    if len(key) == 1:
        only: ColumnElement[bool] = key[0] > values[0]
        return only
    first, second = key
    return sa.and_(
        first >= values[0],
        sa.or_(first > values[0], sa.and_(first == values[0], second > values[1])),
    )


def people(db: Database, patient_ids: Iterable[str]) -> dict[str, Any]:
    """The stored Patient rows (id, identifier system and value, resource) of ``patient_ids``."""
    wanted = sorted(set(patient_ids))
    if not wanted:
        return {}
    with db.read() as conn:
        return _people(conn, wanted)


def _people(conn: Connection, wanted: list[str]) -> dict[str, Any]:
    query = sa.select(
        patient.c.id, patient.c.identifier_system, patient.c.identifier_value, patient.c.resource
    ).where(patient.c.id.in_(wanted))
    return {r.id: r for r in conn.execute(query).all()}
