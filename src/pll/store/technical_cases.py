"""Rows of the register of client systems and of technical cases (with their history, only
ever added to). Every function takes the caller's open transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import ColumnElement, Connection, Row, delete, func, insert, select, update

from pll.domain.cases import Action, Recipient, Status, Step
from pll.domain.model import Author
from pll.domain.technical_cases import ClientSystem, TechnicalCase
from pll.store.repository import author_of, dumps
from pll.store.schema import (
    client_system,
    discrepancy_case,
    technical_case,
    technical_case_version,
)

# -- the register of client systems ---------------------------------------------------------


def client(conn: Connection, client_id: str) -> ClientSystem | None:
    row = conn.execute(select(client_system).where(client_system.c.client_id == client_id)).first()
    return _client_of(row) if row is not None else None


def clients(conn: Connection) -> list[ClientSystem]:
    rows = conn.execute(select(client_system).order_by(client_system.c.client_id)).all()
    return [_client_of(r) for r in rows]


def operates(conn: Connection, orgnr: str) -> bool:
    """Whether ``orgnr`` operates any registered client system."""
    found = conn.execute(
        select(client_system.c.client_id).where(client_system.c.operator_orgnr == orgnr).limit(1)
    ).first()
    return found is not None


def put_client(conn: Connection, system: ClientSystem, now: datetime) -> bool:
    """Register a client system, or update it; whether it was new."""
    values = {
        "name": system.name,
        "vendor": system.vendor,
        "email": system.email,
        "phone": system.phone,
        "operator_orgnr": system.operator_orgnr,
    }
    done = conn.execute(
        update(client_system).where(client_system.c.client_id == system.client_id).values(values)
    )
    if done.rowcount:
        return False
    conn.execute(
        insert(client_system).values(client_id=system.client_id, registered_at=now, **values)
    )
    return True


def remove_client(conn: Connection, client_id: str) -> bool:
    done = conn.execute(delete(client_system).where(client_system.c.client_id == client_id))
    return bool(done.rowcount)


def _client_of(row: Row[Any]) -> ClientSystem:
    return ClientSystem(
        row.client_id, row.name, row.vendor, row.email, row.phone, row.operator_orgnr
    )


# -- technical cases ------------------------------------------------------------------------


def add(conn: Connection, case: TechnicalCase, step: Step, resource: str) -> None:
    conn.execute(
        insert(technical_case).values(
            id=case.id,
            client_id=case.client_id,
            patient_id=case.patient_id,
            subscription_id=case.subscription_id,
            status=case.status.value,
            version=case.version,
            reporter=dumps(case.reporter.to_json()),
            recipient=dumps(
                {
                    "person": case.recipient.person.to_json(),
                    "org_id": case.recipient.org_id,
                    "org_name": case.recipient.org_name,
                }
            ),
            owner_org=case.recipient.org_id,
            handler=None,
            description=case.description,
            reported_at=case.reported_at,
            updated_at=case.updated_at,
            due_at=case.due_at,
            resource=resource,
        )
    )
    _add_step(conn, case.id, step, resource)


def save(conn: Connection, case: TechnicalCase, step: Step, resource: str) -> None:
    conn.execute(
        update(technical_case)
        .where(technical_case.c.id == case.id)
        .values(
            status=case.status.value,
            version=case.version,
            handler=dumps(case.handler.to_json()) if case.handler else None,
            updated_at=case.updated_at,
            resource=resource,
        )
    )
    _add_step(conn, case.id, step, resource)


def _add_step(conn: Connection, case_id: str, step: Step, resource: str) -> None:
    conn.execute(
        insert(technical_case_version).values(
            case_id=case_id,
            version=step.version,
            recorded_at=step.at,
            author=dumps(step.by.to_json()),
            action=step.action.value,
            status=step.status.value,
            comment=step.comment,
            resource=resource,
        )
    )


def get(conn: Connection, case_id: str, *, lock: bool = False) -> Row[Any] | None:
    query = select(technical_case).where(technical_case.c.id == case_id)
    if lock:
        query = query.with_for_update()
    return conn.execute(query).first()


def case_of(row: Row[Any]) -> TechnicalCase:
    recipient = orjson.loads(row.recipient)
    return TechnicalCase(
        id=row.id,
        client_id=row.client_id,
        status=Status(row.status),
        version=row.version,
        reporter=author_of(row.reporter),
        recipient=Recipient(
            Author.from_json(recipient["person"]), recipient["org_id"], recipient["org_name"]
        ),
        description=row.description,
        reported_at=row.reported_at,
        updated_at=row.updated_at,
        due_at=row.due_at,
        patient_id=row.patient_id,
        handler=author_of(row.handler) if row.handler else None,
        subscription_id=row.subscription_id,
    )


def steps(conn: Connection, case_id: str) -> list[Step]:
    rows = conn.execute(
        select(technical_case_version)
        .where(technical_case_version.c.case_id == case_id)
        .order_by(technical_case_version.c.version)
    ).all()
    return [
        Step(
            r.version,
            r.recorded_at,
            author_of(r.author),
            Action(r.action),
            Status(r.status),
            r.comment,
        )
        for r in rows
    ]


def versions(conn: Connection, case_id: str) -> Sequence[Row[Any]]:
    """Every stored version of a case's Task, newest first."""
    rows = conn.execute(
        select(
            technical_case_version.c.version,
            technical_case_version.c.recorded_at,
            technical_case_version.c.resource,
        )
        .where(technical_case_version.c.case_id == case_id)
        .order_by(technical_case_version.c.version.desc())
    ).all()
    return cast("Sequence[Row[Any]]", rows)


def open_for_subscription(conn: Connection, subscription_id: str) -> bool:
    """Whether a case PLL opened for this subscription is still open."""
    found = conn.execute(
        select(technical_case.c.id)
        .where(
            technical_case.c.subscription_id == subscription_id,
            technical_case.c.status.in_([Status.OPEN.value, Status.IN_PROGRESS.value]),
        )
        .limit(1)
    ).first()
    return found is not None


def for_owner(
    conn: Connection,
    org_id: str,
    statuses: Iterable[Status] | None,
    overdue_at: datetime | None,
    limit: int,
    offset: int,
) -> tuple[int, Sequence[Row[Any]]]:
    """A page of the technical cases addressed to an organisation, newest first (only
    those in ``statuses``; only those overdue at ``overdue_at``, if given)."""
    where = technical_case.c.owner_org == org_id
    if statuses is not None:
        where = where & technical_case.c.status.in_(sorted(s.value for s in statuses))
    if overdue_at is not None:
        where = where & _overdue(overdue_at)
    return _page(conn, where, limit, offset)


def _overdue(now: datetime) -> ColumnElement[bool]:
    return technical_case.c.status.in_([Status.OPEN.value, Status.IN_PROGRESS.value]) & (
        technical_case.c.due_at < now
    )


def _page(
    conn: Connection, where: ColumnElement[bool], limit: int, offset: int
) -> tuple[int, Sequence[Row[Any]]]:
    total = conn.execute(select(func.count()).select_from(technical_case).where(where)).scalar_one()
    rows = conn.execute(
        select(technical_case)
        .where(where)
        .order_by(technical_case.c.reported_at.desc(), technical_case.c.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return int(total), rows


def case_times(conn: Connection, first: datetime, last: datetime) -> list[tuple[str, Any]]:
    """Every case of either table reported in ``first..last`` (excluded), with its kind
    (``clinical``, ``administration`` or ``technical``), when it was reported, its deadline,
    its status and when it last changed (for a closed case: when it was closed)."""
    out: list[tuple[str, Any]] = []
    dc = discrepancy_case.c
    for row in conn.execute(
        select(dc.kind, dc.reported_at, dc.due_at, dc.status, dc.updated_at).where(
            dc.reported_at >= first, dc.reported_at < last
        )
    ).all():
        kind = "administration" if row.kind == "administration" else "clinical"
        out.append((kind, row))
    tc = technical_case.c
    for found in conn.execute(
        select(tc.reported_at, tc.due_at, tc.status, tc.updated_at).where(
            tc.reported_at >= first, tc.reported_at < last
        )
    ).all():
        out.append(("technical", found))
    return out
