"""A list's resources (entries and prescriptions) one by one: the current row, every version,
the list versions that wrote them (``Provenance``), and the locked list row for a change to
one. Every function takes the caller's open transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Row, Select, and_, bindparam, func, select

from pll.store import direct
from pll.store.list_rows import ENTRY_IS_CURRENT, LIST_COLUMNS, RX_IS_CURRENT
from pll.store.schema import (
    entry,
    entry_version,
    pll,
    pll_version,
    prescription,
    prescription_version,
    provenance_target,
)

RESOURCE_TABLES = {
    "MedicationStatement": (entry, entry_version, entry_version.c.entry_id),
    "MedicationRequest": (
        prescription,
        prescription_version,
        prescription_version.c.prescription_id,
    ),
}
#: how a current row finds its resource, its version row (pll.store.list_rows)
_IS_CURRENT = {"MedicationStatement": ENTRY_IS_CURRENT, "MedicationRequest": RX_IS_CURRENT}


def _recorded(rtype: str) -> Any:
    """When PLL first recorded each resource of ``rtype`` (its first version's time)."""
    table, history, key = RESOURCE_TABLES[rtype]
    # an alias: the statement may join the version table already, for the current resource
    first = history.alias("first")
    found = select(first.c.recorded_at).where(first.c[key.name] == table.c.id, first.c.version == 1)
    return found.scalar_subquery().label("recorded_at")


def _current(rtype: str, *columns: Any) -> Select[Any]:
    """``columns`` of each current resource of ``rtype`` and its resource text."""
    table, history, _ = RESOURCE_TABLES[rtype]
    current = table.join(history, _IS_CURRENT[rtype])
    return select(*columns, history.c.resource).select_from(current)


def _resource_row_query(rtype: str) -> Select[Any]:
    table = RESOURCE_TABLES[rtype][0]
    return (
        _current(
            rtype,
            table.c.id,
            table.c.version,
            table.c.list_id,
            table.c.last_changed,
            pll.c.patient_id,
            _recorded(rtype),
        )
        .join(pll, pll.c.id == table.c.list_id)
        .where(table.c.id == bindparam("rid"))
    )


def _resource_version_query(rtype: str) -> Select[Any]:
    _, history, key = RESOURCE_TABLES[rtype]
    return select(history).where(key == bindparam("rid"), history.c.version == bindparam("v"))


def _list_of_query(rtype: str) -> Select[Any]:
    table = RESOURCE_TABLES[rtype][0]
    return (
        select(*LIST_COLUMNS)
        .join(table, table.c.list_id == pll.c.id)
        .where(table.c.id == bindparam("rid"))
        .with_for_update(of=pll)
    )


# built once, as the list statements (pll.store.list_rows): every write runs them
_RESOURCE_ROW = {rtype: _resource_row_query(rtype) for rtype in RESOURCE_TABLES}
_LIST_OF = {rtype: _list_of_query(rtype) for rtype in RESOURCE_TABLES}
_RESOURCE_VERSION = {rtype: _resource_version_query(rtype) for rtype in RESOURCE_TABLES}


def resource_row(conn: Connection, rtype: str, rid: str) -> Row[Any] | None:
    """A current resource with its list's patient and ``recorded_at``, when PLL first
    recorded it."""
    return direct.first(conn, _RESOURCE_ROW[rtype], {"rid": rid})


def list_of(conn: Connection, rtype: str, rid: str) -> Row[Any] | None:
    """The row of the list that holds a resource (as :func:`~pll.store.list_rows.list_row`
    gives it), locked for a change: one statement for an update of the resource (issue 20).
    The list row is the first row a change locks, as always; the resource is read again once
    it is held (:func:`~pll.store.list_rows.load_list`)."""
    return direct.first(conn, _LIST_OF[rtype], {"rid": rid})


def resource_version(conn: Connection, rtype: str, rid: str, version: int) -> Row[Any] | None:
    return conn.execute(_RESOURCE_VERSION[rtype], {"rid": rid, "v": version}).first()


def resource_versions(conn: Connection, rtype: str, rid: str) -> Sequence[Row[Any]]:
    _, history, key = RESOURCE_TABLES[rtype]
    return conn.execute(select(history).where(key == rid).order_by(history.c.version.desc())).all()


def resources_for_list(
    conn: Connection, rtype: str, list_id: str, limit: int, offset: int
) -> tuple[int, Sequence[Row[Any]]]:
    table = RESOURCE_TABLES[rtype][0]
    total = conn.execute(
        select(func.count()).select_from(table).where(table.c.list_id == list_id)
    ).scalar_one()
    rows = conn.execute(
        _current(rtype, _recorded(rtype))
        .where(table.c.list_id == list_id)
        .order_by(table.c.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return total, rows


def versions_until(
    conn: Connection, rtype: str, ids: Iterable[str], list_version: int
) -> dict[str, list[tuple[int, int, str]]]:
    """Each resource's versions written at or before a list version:
    ``{id: [(version, list_version, resource text), ...]}``."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    _, history, key = RESOURCE_TABLES[rtype]
    rows = conn.execute(
        select(
            key.label("rid"), history.c.version, history.c.list_version, history.c.resource
        ).where(key.in_(wanted), history.c.list_version <= list_version)
    ).all()
    out: dict[str, list[tuple[int, int, str]]] = {}
    for r in rows:
        out.setdefault(r.rid, []).append((r.version, r.list_version, r.resource))
    return out


def touched_between(conn: Connection, list_id: str, after: int, upto: int) -> set[tuple[str, str]]:
    """The (type, id) of every resource written by list versions ``after < v <= upto``."""
    rows = conn.execute(
        select(provenance_target.c.target_type, provenance_target.c.target_id).where(
            provenance_target.c.list_id == list_id,
            provenance_target.c.list_version > after,
            provenance_target.c.list_version <= upto,
        )
    ).all()
    return {(r.target_type, r.target_id) for r in rows}


def provenance_rows(
    conn: Connection,
    target_type: str,
    target_id: str,
    target_version: int | None,
    limit: int,
    offset: int,
    upto: int,
) -> tuple[int, Sequence[Row[Any]]]:
    """The list versions up to ``upto`` that wrote a resource (or one version of it), newest
    first."""
    where = and_(
        provenance_target.c.target_type == target_type,
        provenance_target.c.target_id == target_id,
        provenance_target.c.list_version <= upto,
    )
    if target_version is not None:
        where = and_(where, provenance_target.c.target_version == target_version)
    total = conn.execute(
        select(func.count()).select_from(provenance_target).where(where)
    ).scalar_one()
    rows = conn.execute(
        select(pll_version)
        .join(
            provenance_target,
            and_(
                provenance_target.c.list_id == pll_version.c.list_id,
                provenance_target.c.list_version == pll_version.c.version,
            ),
        )
        .where(where)
        .order_by(pll_version.c.version.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return total, rows
