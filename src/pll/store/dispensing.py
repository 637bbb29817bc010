"""Dispensings (M10, ``MedicationDispense``) by prescription and by patient. Every function
takes the caller's open transaction; :func:`pll.store.sfm.add_dispense` writes them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import orjson
from sqlalchemy import Connection, Row, func, select

from pll.store.schema import dispense


def dispense_patient(conn: Connection, dispense_id: str) -> str | None:
    """The patient a dispensing belongs to, or ``None`` if there is no such dispensing."""
    return cast(
        "str | None",
        conn.execute(select(dispense.c.patient_id).where(dispense.c.id == dispense_id)).scalar(),
    )


def for_prescription(conn: Connection, rx_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Every dispensing on one prescription: (id, content)."""
    rows = conn.execute(
        select(dispense.c.id, dispense.c.resource)
        .where(dispense.c.prescription_id == rx_id)
        .order_by(dispense.c.recorded_at, dispense.c.id)
    )
    return [(r.id, orjson.loads(r.resource)) for r in rows]


def get(conn: Connection, dispense_id: str) -> Row[Any] | None:
    return conn.execute(select(dispense).where(dispense.c.id == dispense_id)).first()


def for_patient(
    conn: Connection, patient_id: str, count: int, offset: int
) -> tuple[int, Sequence[Row[Any]]]:
    """A page of the patient's dispensings, newest handed over first, and how many in all."""
    total = conn.execute(
        select(func.count()).select_from(dispense).where(dispense.c.patient_id == patient_id)
    ).scalar_one()
    rows = conn.execute(
        select(dispense)
        .where(dispense.c.patient_id == patient_id)
        .order_by(dispense.c.recorded_at.desc(), dispense.c.id)
        .limit(count)
        .offset(offset)
    ).all()
    return int(total), rows
