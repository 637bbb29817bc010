"""Recorded administrations (issue 17): the rows behind ``MedicationAdministration``. Every
function takes the caller's open transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from pll.domain.administration import Given
from pll.domain.administration.records import Status
from pll.store.schema import medication_administration as ma
from pll.store.schema import medication_administration_version as ma_version


def slot_taken(conn: Connection, key: str) -> bool:
    """Whether a record that stands (not entered in error) names this planned dose."""
    return conn.execute(select(ma.c.id).where(ma.c.slot_taken == key)).first() is not None


def given_between(
    conn: Connection,
    start: datetime,
    end: datetime,
    *,
    entry_id: str | None = None,
    patient_id: str | None = None,
) -> list[Given]:
    """The completed records that stand with a time given in ``[start, end]``, of one entry
    or of a patient's entries: what an as-needed maximum counts over its rolling period."""
    where = [
        ma.c.effective_at >= start,
        ma.c.effective_at <= end,
        ma.c.status == Status.COMPLETED.value,
        ma.c.amount.is_not(None),
    ]
    if entry_id is not None:
        where.append(ma.c.entry_id == entry_id)
    if patient_id is not None:
        where.append(ma.c.patient_id == patient_id)
    rows = conn.execute(
        select(ma.c.entry_id, ma.c.effective_at, ma.c.amount, ma.c.unit).where(*where)
    )
    return [Given(r.entry_id, r.effective_at, Decimal(r.amount), r.unit or "") for r in rows]


def add(conn: Connection, values: dict[str, Any], author: str) -> None:
    """A new record (version 1) and its first history row. ``values`` are the columns."""
    conn.execute(insert(ma).values(**values))
    _history(conn, values, author)


def current(conn: Connection, rid: str, *, lock: bool = False) -> Row[Any] | None:
    query = select(ma).where(ma.c.id == rid)
    return conn.execute(query.with_for_update() if lock else query).first()


def save(conn: Connection, rid: str, values: dict[str, Any], author: str) -> None:
    """A new version of a record: the current row replaced, the version kept in history."""
    conn.execute(update(ma).where(ma.c.id == rid).values(**values))
    _history(conn, {"id": rid, **values}, author)


def versions(conn: Connection, rid: str) -> Sequence[Row[Any]]:
    """Every version of a record, newest first."""
    query = (
        select(ma_version)
        .where(ma_version.c.administration_id == rid)
        .order_by(ma_version.c.version.desc())
    )
    return conn.execute(query).all()


def for_patient(
    conn: Connection, patient_id: str, day: date | None, count: int, offset: int
) -> tuple[int, list[str]]:
    """A page of the patient's records (of one local day, if given), by time given."""
    where = [ma.c.patient_id == patient_id]
    if day is not None:
        where.append(ma.c.day == day.isoformat())
    total = conn.execute(select(func.count()).select_from(ma).where(*where)).scalar_one()
    rows = conn.execute(
        select(ma.c.resource)
        .where(*where)
        .order_by(ma.c.effective_at, ma.c.id)
        .limit(count)
        .offset(offset)
    )
    return int(total), [r.resource for r in rows]


def _history(conn: Connection, values: dict[str, Any], author: str) -> None:
    conn.execute(
        insert(ma_version).values(
            administration_id=values["id"],
            version=values["version"],
            recorded_at=values["updated_at"],
            author=author,
            status=values["status"],
            resource=values["resource"],
        )
    )


def standing_on(conn: Connection, patient_id: str, day: date) -> list[Row[Any]]:
    """The patient's records of a local day that stand (not entered in error), by time given:
    what the chart shows as done."""
    query = (
        select(
            ma.c.id,
            ma.c.version,
            ma.c.entry_id,
            ma.c.slot_key,
            ma.c.status,
            ma.c.amount,
            ma.c.unit,
            ma.c.status_reason,
            ma.c.effective_at,
            ma.c.performer,
            ma.c.verifier_hpr,
            ma.c.resource,
        )
        .where(
            ma.c.patient_id == patient_id,
            ma.c.day == day.isoformat(),
            ma.c.status != Status.ENTERED_IN_ERROR.value,
        )
        .order_by(ma.c.effective_at, ma.c.id)
    )
    return list(conn.execute(query))
