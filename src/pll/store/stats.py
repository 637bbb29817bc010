"""Rows behind the rollout statistics: the organisation register, what the statistics
remember of each list, the aggregated counts and the consumer's place in the audit trail."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from pll.stats.indicators import Home, Key, ListState
from pll.stats.organisations import Organisation
from pll.store.db import insert_absent
from pll.store.schema import (
    audit_event,
    organisation,
    patient,
    pll_version,
    stats_count,
    stats_emergency,
    stats_list,
    stats_place,
)

# -- the organisation register ---------------------------------------------------------------


def organisations_of_type(conn: Connection, actor_type: str, limit: int) -> list[Any]:
    """The registered organisations of one actor type (``apotek``), by name: id, name, her;
    at most ``limit``."""
    return list(
        conn.execute(
            select(organisation.c.id, organisation.c.name, organisation.c.her)
            .where(organisation.c.actor_type == actor_type)
            .order_by(organisation.c.name, organisation.c.id)
            .limit(limit)
        )
    )


def load_organisations(conn: Connection, orgs: Sequence[Organisation], now: datetime) -> int:
    """Register or update ``orgs`` (name, place and type); an organisation's ``live_since``
    is kept. Returns how many were new."""
    known = {r.id for r in conn.execute(select(organisation.c.id))}
    new = [o for o in orgs if o.id not in known]
    if new:
        conn.execute(insert(organisation), [_org_row(o) | {"registered_at": now} for o in new])
    for o in orgs:
        if o.id in known:
            conn.execute(update(organisation).where(organisation.c.id == o.id).values(_org_row(o)))
    return len(new)


def _org_row(o: Organisation) -> dict[str, Any]:
    return {
        "id": o.id,
        "name": o.name,
        "municipality": o.municipality,
        "region": o.region,
        "actor_type": o.actor_type,
        "her": o.her,
        "list_patients": o.list_patients,
    }


def actor_types(conn: Connection, org_ids: Iterable[str]) -> dict[str, str]:
    """The actor type of each of ``org_ids`` that is registered."""
    wanted = sorted(set(org_ids))
    if not wanted:
        return {}
    rows = conn.execute(
        select(organisation.c.id, organisation.c.actor_type).where(organisation.c.id.in_(wanted))
    )
    return {r.id: r.actor_type for r in rows}


def mark_live(conn: Connection, first_seen: dict[str, datetime]) -> None:
    """The organisations changed or confirmed a list at these times: live from the first.

    One read of their ``live_since`` and one ``executemany`` for those that move earlier
    (usually none: an organisation goes live once), whatever the number of organisations."""
    if not first_seen:
        return
    known = conn.execute(
        select(organisation.c.id, organisation.c.live_since).where(
            organisation.c.id.in_(sorted(first_seen))
        )
    )
    due = [
        {"org": r.id, "at": first_seen[r.id]}
        for r in known
        if r.live_since is None or r.live_since > first_seen[r.id]
    ]
    if due:
        conn.execute(_MARK_LIVE, due)


_MARK_LIVE = (
    update(organisation)
    .where(
        organisation.c.id == bindparam("org"),
        or_(organisation.c.live_since.is_(None), organisation.c.live_since > bindparam("at")),
    )
    .values(live_since=bindparam("at"))
)


def organisations(conn: Connection) -> list[Any]:
    """Every registered organisation: its region, municipality, type and when it went live."""
    return list(
        conn.execute(
            select(
                organisation.c.id,
                organisation.c.region,
                organisation.c.municipality,
                organisation.c.actor_type,
                organisation.c.live_since,
            )
        )
    )


# -- what the consumer looks up --------------------------------------------------------------


#: Keys per statement where a lookup takes many: far below SQLite's 32,766 variables, and a
#: consumer's batch (500 events) fits in one.
CHUNK = 2000


def versions(conn: Connection, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], Any]:
    """The author and activity of each (list id, version): one statement per
    :data:`CHUNK` keys (a row-value ``IN`` on the primary key)."""
    wanted = sorted(set(keys))
    found: dict[tuple[str, int], Any] = {}
    for start in range(0, len(wanted), CHUNK):
        rows = conn.execute(
            select(
                pll_version.c.list_id,
                pll_version.c.version,
                pll_version.c.author,
                pll_version.c.activity,
            ).where(
                tuple_(pll_version.c.list_id, pll_version.c.version).in_(
                    wanted[start : start + CHUNK]
                )
            )
        )
        found.update({(r.list_id, r.version): r for r in rows})
    return found


def patients(conn: Connection, patient_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The stored Patient resources of ``patient_ids``."""
    wanted = sorted(set(patient_ids))
    if not wanted:
        return {}
    rows = conn.execute(select(patient.c.id, patient.c.resource).where(patient.c.id.in_(wanted)))
    return {r.id: orjson.loads(r.resource) for r in rows}


def list_states(conn: Connection, patient_ids: Iterable[str]) -> dict[str, ListState]:
    wanted = sorted(set(patient_ids))
    if not wanted:
        return {}
    rows = conn.execute(select(stats_list).where(stats_list.c.patient_id.in_(wanted)))
    return {
        r.patient_id: ListState(
            r.patient_id,
            r.list_id,
            Home(r.region, r.municipality),
            r.created_at,
            r.confirmed_at,
            bool(r.paper),
            bool(r.emultidose),
        )
        for r in rows
    }


def save_list_states(conn: Connection, states: Iterable[ListState]) -> None:
    """Write the states, new and known patients alike: one upsert ``executemany``."""
    rows = [
        {
            "patient_id": s.patient_id,
            "list_id": s.list_id,
            "region": s.home.region,
            "municipality": s.home.municipality,
            "created_at": s.created_at,
            "confirmed_at": s.confirmed_at,
            "paper": s.paper,
            "emultidose": s.emultidose,
        }
        for s in states
    ]
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(stats_list)
    statement = statement.on_conflict_do_update(
        index_elements=[stats_list.c.patient_id],
        set_={c: statement.excluded[c] for c in rows[0] if c != "patient_id"},
    )
    conn.execute(statement, rows)


def first_emergencies(conn: Connection, accesses: Iterable[tuple[str, str, str]]) -> set[Any]:
    """Of the (patient, HPR number, day) ``accesses``, those not counted before, now
    remembered as counted."""
    wanted = sorted(set(accesses))
    if not wanted:
        return set()
    seen: set[tuple[str, str, str]] = set()
    key = tuple_(stats_emergency.c.patient_id, stats_emergency.c.hpr, stats_emergency.c.day)
    for start in range(0, len(wanted), CHUNK):
        rows = conn.execute(select(stats_emergency).where(key.in_(wanted[start : start + CHUNK])))
        seen.update((r.patient_id, r.hpr, r.day) for r in rows)
    new = [a for a in wanted if a not in seen]
    if new:
        conn.execute(
            insert(stats_emergency), [{"patient_id": p, "hpr": h, "day": d} for p, h, d in new]
        )
    return set(new)


# -- the counts ------------------------------------------------------------------------------


def add_counts(conn: Connection, counts: dict[Key, int]) -> None:
    """Add to the aggregated counts (a cell not there yet starts at 0)."""
    if not counts:
        return
    rows = [
        {
            "measure": m,
            "grain": g,
            "period": p,
            "region": r,
            "municipality": k,
            "actor_type": a,
            "value": v,
        }
        for (m, g, p, r, k, a), v in sorted(counts.items())
    ]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(stats_count)
    statement = statement.on_conflict_do_update(
        index_elements=[c.name for c in stats_count.primary_key.columns],
        set_={"value": stats_count.c.value + statement.excluded.value},
    )
    for start in range(0, len(rows), 500):
        conn.execute(statement, rows[start : start + 500])


def counts(
    conn: Connection,
    measures: Sequence[str],
    grain: str,
    *,
    since: str | None = None,
    until: str | None = None,
    by: Sequence[str] = (),
) -> list[Any]:
    """The counts of ``measures`` at ``grain`` (week, month, day or now): one row per period
    and per the columns in ``by`` (region, municipality, actor_type), summed over the rest,
    with one column per measure (``NULL`` where there is none). ``since`` and ``until``
    bound the periods, both included. Unordered."""
    group = [stats_count.c.period, *(stats_count.c[b] for b in by)]
    sums = [
        func.sum(case((stats_count.c.measure == m, stats_count.c.value))).label(m) for m in measures
    ]
    query = select(*group, *sums).where(
        stats_count.c.measure.in_(measures), stats_count.c.grain == grain
    )
    if since is not None:
        query = query.where(stats_count.c.period >= since)
    if until is not None:
        query = query.where(stats_count.c.period <= until)
    return list(conn.execute(query.group_by(*group)))


def totals(
    conn: Connection, measures: Sequence[str], grain: str, *, before: str, by: Sequence[str] = ()
) -> list[Any]:
    """The counts of ``measures`` at ``grain`` summed over every period before ``before``,
    per the columns in ``by``."""
    group = [stats_count.c[b] for b in by]
    query = select(*group, func.sum(stats_count.c.value).label("value")).where(
        stats_count.c.measure.in_(measures),
        stats_count.c.grain == grain,
        stats_count.c.period < before,
    )
    return list(conn.execute(query.group_by(*group) if group else query))


def bands(
    conn: Connection, measure: str, starts: Sequence[tuple[str, str]], *, by: Sequence[str] = ()
) -> list[Any]:
    """The day counts of ``measure`` summed into bands, per the columns in ``by``: each of
    ``starts`` names a band and the first day in it (``YYYY-MM-DD``), newest first; a day
    falls in the first band it is not before (the last band's start is ``""``: every day)."""
    group = [stats_count.c[b] for b in by]
    band = case(
        *((stats_count.c.period >= start, name) for name, start in starts[:-1]), else_=starts[-1][0]
    )
    sums = [
        func.sum(case((band == name, stats_count.c.value), else_=0)).label(name)
        for name, _ in starts
    ]
    query = select(*group, *sums).where(
        stats_count.c.measure == measure, stats_count.c.grain == "day"
    )
    return list(conn.execute(query.group_by(*group) if group else query))


# -- the consumer's place in the audit trail -------------------------------------------------


def audit_place(conn: Connection, name: str, now: datetime) -> int:
    """The id of the last audit record the consumer has read; locked until commit."""
    row = conn.execute(
        select(stats_place.c.position).where(stats_place.c.name == name).with_for_update()
    ).first()
    if row is None:  # made by whichever process comes first (see insert_absent)
        insert_absent(conn, stats_place, name=name, position=0, updated_at=now)
        row = conn.execute(
            select(stats_place.c.position).where(stats_place.c.name == name).with_for_update()
        ).one()
    return int(row.position)


def audit_due(name: str, before: datetime) -> ColumnElement[Any]:
    """Whether the consumer ``name`` has an audit record to read: the first record after its
    place (every one, for a consumer with no place yet) was recorded before ``before`` (see
    :func:`audit_after`). An expression, to be asked beside others in one query; one
    primary-key lookup."""
    position = select(stats_place.c.position).where(stats_place.c.name == name).scalar_subquery()
    first = (
        select(audit_event.c.recorded_at)
        .where(audit_event.c.id > func.coalesce(position, 0))
        .order_by(audit_event.c.id)
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(first < before, False)


def move_audit_place(conn: Connection, name: str, position: int, now: datetime) -> None:
    conn.execute(
        update(stats_place)
        .where(stats_place.c.name == name)
        .values(position=position, updated_at=now)
    )


def audit_after(
    conn: Connection, position: int, before: datetime, limit: int
) -> tuple[list[Any], int]:
    """The audit records after ``position`` that the statistics count (emergency accesses),
    up to the first recorded at or after ``before``, and the id
    to move on to.

    Audit ids are handed out when a record is inserted, not when it commits, so a record
    younger than ``before`` may still be joined by one with a smaller id: the consumer reads
    only up to the first record that recent (the caller sets ``before`` a settling time
    back), never past one."""
    rows = conn.execute(
        select(
            audit_event.c.id,
            audit_event.c.recorded_at,
            audit_event.c.actor,
            audit_event.c.patient_id,
            audit_event.c.basis,
            audit_event.c.outcome,
        )
        .where(audit_event.c.id > position)
        .order_by(audit_event.c.id)
        .limit(limit)
    ).all()
    counted, last = [], position
    for row in rows:
        if row.recorded_at >= before:
            break
        last = int(row.id)
        if row.basis == EMERGENCY_BASIS and row.outcome == "0":
            counted.append(row)
    return counted, last


#: The basis code of an emergency access (pll.auth.access.Basis.EMERGENCY)
EMERGENCY_BASIS = "HPAKUTT"
