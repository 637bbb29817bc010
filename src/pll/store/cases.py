"""Rows of discrepancy cases: the case as it stands (with its current Task) and its history,
which is only ever added to. Every function takes the caller's open transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import ColumnElement, Connection, Row, func, insert, select, update

from pll.domain.cases import Action, Case, Kind, Recipient, Status, Step
from pll.domain.model import Author
from pll.store.repository import author_of, dumps
from pll.store.schema import discrepancy_case, discrepancy_case_version


def _recipient_json(recipient: Recipient) -> str:
    return dumps(
        {
            "person": recipient.person.to_json(),
            "org_id": recipient.org_id,
            "org_name": recipient.org_name,
        }
    )


def add(conn: Connection, case: Case, step: Step, resource: str) -> None:
    """A newly reported case, with the first step of its history."""
    conn.execute(
        insert(discrepancy_case).values(
            id=case.id,
            patient_id=case.patient_id,
            list_id=case.list_id,
            entry_id=case.entry_id,
            focus_version=case.focus_version,
            status=case.status.value,
            version=case.version,
            reporter=dumps(case.reporter.to_json()),
            recipient=_recipient_json(case.recipient),
            owner_org=case.recipient.org_id,
            owner_name=case.recipient.org_name,
            handler=None,
            description=case.description,
            kind=case.kind.value,
            administration_id=case.administration_id,
            planned_dose=case.planned_dose,
            due_at=case.due_at,
            reported_at=case.reported_at,
            updated_at=case.updated_at,
            resource=resource,
        )
    )
    add_step(conn, case.id, step, resource)


def save(conn: Connection, case: Case, step: Step, resource: str) -> None:
    """The case after a step; the step joins its history."""
    conn.execute(
        update(discrepancy_case)
        .where(discrepancy_case.c.id == case.id)
        .values(
            status=case.status.value,
            version=case.version,
            handler=dumps(case.handler.to_json()) if case.handler else None,
            updated_at=case.updated_at,
            resource=resource,
        )
    )
    add_step(conn, case.id, step, resource)


def add_step(conn: Connection, case_id: str, step: Step, resource: str) -> None:
    conn.execute(
        insert(discrepancy_case_version).values(
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
    query = select(discrepancy_case).where(discrepancy_case.c.id == case_id)
    if lock:
        query = query.with_for_update()
    return conn.execute(query).first()


def case_of(row: Row[Any]) -> Case:
    """The domain's case from its row."""
    recipient = orjson.loads(row.recipient)
    return Case(
        id=row.id,
        patient_id=row.patient_id,
        list_id=row.list_id,
        entry_id=row.entry_id,
        focus_version=row.focus_version,
        status=Status(row.status),
        version=row.version,
        reporter=author_of(row.reporter),
        recipient=Recipient(
            Author.from_json(recipient["person"]), recipient["org_id"], recipient["org_name"]
        ),
        description=row.description,
        reported_at=row.reported_at,
        updated_at=row.updated_at,
        handler=author_of(row.handler) if row.handler else None,
        # cases from before migration 0018 are all discrepancies on the list
        kind=Kind(row.kind) if row.kind else Kind.DISCREPANCY,
        administration_id=row.administration_id,
        planned_dose=row.planned_dose,
        due_at=row.due_at,
    )


def steps(conn: Connection, case_id: str) -> list[Step]:
    """A case's history, oldest first."""
    rows = conn.execute(
        select(discrepancy_case_version)
        .where(discrepancy_case_version.c.case_id == case_id)
        .order_by(discrepancy_case_version.c.version)
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
            discrepancy_case_version.c.version,
            discrepancy_case_version.c.recorded_at,
            discrepancy_case_version.c.resource,
        )
        .where(discrepancy_case_version.c.case_id == case_id)
        .order_by(discrepancy_case_version.c.version.desc())
    ).all()
    return cast("Sequence[Row[Any]]", rows)


def for_owner(
    conn: Connection,
    org_id: str,
    statuses: Iterable[Status] | None,
    limit: int,
    offset: int,
    overdue_at: datetime | None = None,
) -> tuple[int, Sequence[Row[Any]]]:
    """A page of the cases addressed to an organisation (only those in ``statuses``, if
    given; only those still open past their deadline at ``overdue_at``, if given), newest
    first: its inbox (``ix_discrepancy_case_owner``)."""
    where = discrepancy_case.c.owner_org == org_id
    if statuses is not None:
        where = where & discrepancy_case.c.status.in_(sorted(s.value for s in statuses))
    if overdue_at is not None:
        where = (
            where
            & discrepancy_case.c.status.in_([Status.OPEN.value, Status.IN_PROGRESS.value])
            & (discrepancy_case.c.due_at < overdue_at)
        )
    return _page(conn, where, limit, offset)


def for_patient(
    conn: Connection, patient_id: str, statuses: Iterable[Status] | None, limit: int, offset: int
) -> tuple[int, Sequence[Row[Any]]]:
    """A page of a patient's cases (only those in ``statuses``, if given), newest first."""
    where = discrepancy_case.c.patient_id == patient_id
    if statuses is not None:
        where = where & discrepancy_case.c.status.in_(sorted(s.value for s in statuses))
    return _page(conn, where, limit, offset)


def _page(
    conn: Connection, where: ColumnElement[bool], limit: int, offset: int
) -> tuple[int, Sequence[Row[Any]]]:
    total = conn.execute(
        select(func.count()).select_from(discrepancy_case).where(where)
    ).scalar_one()
    rows = conn.execute(
        select(discrepancy_case)
        .where(where)
        .order_by(discrepancy_case.c.reported_at.desc(), discrepancy_case.c.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return int(total), rows
