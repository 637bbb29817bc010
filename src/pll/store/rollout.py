"""Rows behind the rollout team's reports (issue 19): first list versions by month, what
each client system did per week, technical cases per client, the GP offices and who holds
each list."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select
from sqlalchemy.dialects import postgresql, sqlite

from pll.store.schema import (
    client_system,
    client_week_count,
    organisation,
    pll,
    pll_version,
    technical_case,
)


def first_versions(conn: Connection, start: datetime, end: datetime) -> list[Any]:
    """``(created_at, author)`` of every list made in ``[start, end)``: version 1 of each
    list (a patient has at most one, never deleted), found by ``ix_pll_created`` and then
    the version's primary key."""
    return list(
        conn.execute(
            select(pll.c.created_at, pll_version.c.author)
            .join(
                pll_version,
                and_(pll_version.c.list_id == pll.c.id, pll_version.c.version == 1),
            )
            .where(pll.c.created_at >= start, pll.c.created_at < end)
            .order_by(pll.c.created_at, pll.c.id)
        )
    )


def organisation_names(conn: Connection) -> dict[str, str]:
    return {r.id: r.name for r in conn.execute(select(organisation.c.id, organisation.c.name))}


def organisations_by_her(conn: Connection) -> dict[str, str]:
    """The register's organisation number of each HER-id it knows."""
    rows = conn.execute(
        select(organisation.c.her, organisation.c.id).where(organisation.c.her.is_not(None))
    )
    return {r.her: r.id for r in rows}


def count_for_client(conn: Connection, client_id: str, week: str, measure: str) -> None:
    """Add one to what ``client_id`` did in ``week``."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(client_week_count).values(
        client_id=client_id[:100], week=week, measure=measure, value=1
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["client_id", "week", "measure"],
            set_={"value": client_week_count.c.value + 1},
        )
    )


def client_counts(conn: Connection, week: str) -> dict[str, dict[str, int]]:
    """What each client did in ``week``, as counted where it happened."""
    out: dict[str, dict[str, int]] = {}
    rows = conn.execute(
        select(
            client_week_count.c.client_id, client_week_count.c.measure, client_week_count.c.value
        ).where(client_week_count.c.week == week)
    )
    for r in rows:
        out.setdefault(r.client_id, {})[r.measure] = int(r.value)
    return out


def changes_by_client(conn: Connection, start: datetime, end: datetime) -> list[Any]:
    """Per client system: list versions it wrote in ``[start, end)``, and how many of them
    overrode decision support (``ix_pll_version_recorded``). Versions PLL or a pharmacy's
    record wrote (no client) are left out."""
    return list(
        conn.execute(
            select(
                pll_version.c.client_id,
                func.count().label("changes"),
                func.count(pll_version.c.override).label("overrides"),
            )
            .where(
                pll_version.c.recorded_at >= start,
                pll_version.c.recorded_at < end,
                pll_version.c.client_id.is_not(None),
            )
            .group_by(pll_version.c.client_id)
        )
    )


def technical_cases_by_client(conn: Connection, start: datetime, end: datetime) -> list[Any]:
    """Per client system: technical cases reported about it in ``[start, end)``."""
    return list(
        conn.execute(
            select(technical_case.c.client_id, func.count().label("cases"))
            .where(technical_case.c.reported_at >= start, technical_case.c.reported_at < end)
            .group_by(technical_case.c.client_id)
        )
    )


def registered_clients(conn: Connection) -> dict[str, tuple[str, str]]:
    """The register of client systems: client id → (name, vendor)."""
    rows = conn.execute(
        select(client_system.c.client_id, client_system.c.name, client_system.c.vendor)
    )
    return {r.client_id: (r.name, r.vendor) for r in rows}


def gp_offices(conn: Connection) -> list[Any]:
    """The registered GP offices (actor type ``fastlege``)."""
    return list(
        conn.execute(
            select(
                organisation.c.id,
                organisation.c.name,
                organisation.c.municipality,
                organisation.c.list_patients,
            ).where(organisation.c.actor_type == "fastlege")
        )
    )


def holders(conn: Connection, batch: int = 5000) -> Iterator[Any]:
    """``(id, baton, confirmation)`` of every list, in batches by id (keyset paging), so a
    million lists are read without holding them all."""
    after = ""
    while True:
        rows = list(
            conn.execute(
                select(pll.c.id, pll.c.baton, pll.c.confirmation)
                .where(pll.c.id > after)
                .order_by(pll.c.id)
                .limit(batch)
            )
        )
        if not rows:
            return
        yield from rows
        after = rows[-1].id
