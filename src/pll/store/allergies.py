"""A patient's recorded drug reactions (CAVE) and their versions. Every function takes the
caller's open transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
from sqlalchemy import Connection, Row, and_, bindparam, func, insert, select, update

from pll.store.list_reads import CURRENT_LIST
from pll.store.schema import allergy, allergy_version, patient, pll


@dataclass(frozen=True)
class ReactionRow:
    id: str
    display: str
    atc: str | None
    substance: str | None


def active_count(conn: Connection, patient_id: str, besides: str) -> int:
    """How many reactions of the patient are active, ``besides`` not counted."""
    return int(
        conn.execute(
            select(func.count()).where(
                allergy.c.patient_id == patient_id,
                allergy.c.status == "active",
                allergy.c.id != besides,
            )
        ).scalar_one()
    )


_ACTIVE = select(allergy.c.id, allergy.c.atc, allergy.c.substance, allergy.c.resource).where(
    allergy.c.patient_id == bindparam("patient_id"), allergy.c.status == "active"
)


def active_reactions(conn: Connection, patient_id: str) -> list[ReactionRow]:
    rows = conn.execute(_ACTIVE, {"patient_id": patient_id}).all()
    out = []
    for row in rows:
        code = orjson.loads(row.resource).get("code") or {}
        display = code.get("text") or next(
            (c.get("display") for c in code.get("coding") or [] if c.get("display")),
            row.atc or row.substance or "ukjent",
        )
        out.append(ReactionRow(row.id, str(display), row.atc, row.substance))
    return out


def get(conn: Connection, allergy_id: str, *, lock: bool = False) -> Row[Any] | None:
    query = select(allergy).where(allergy.c.id == allergy_id)
    if lock:
        query = query.with_for_update()
    return conn.execute(query).first()


def for_patient(conn: Connection, patient_id: str) -> Sequence[Row[Any]]:
    return conn.execute(
        select(allergy).where(allergy.c.patient_id == patient_id).order_by(allergy.c.updated_at)
    ).all()


def save(conn: Connection, row: dict[str, Any], author: str, *, new: bool) -> None:
    """Write the current row and its version (``row`` holds every column of ``allergy``)."""
    if new:
        conn.execute(insert(allergy).values(**row))
    else:
        conn.execute(update(allergy).where(allergy.c.id == row["id"]).values(**row))
    conn.execute(
        insert(allergy_version).values(
            id=row["id"],
            version=row["version"],
            recorded_at=row["updated_at"],
            author=author,
            resource=row["resource"],
        )
    )


def versions(conn: Connection, allergy_id: str) -> Sequence[Row[Any]]:
    return conn.execute(
        select(allergy_version)
        .where(allergy_version.c.id == allergy_id)
        .order_by(allergy_version.c.version.desc())
    ).all()


def with_patient(conn: Connection, patient_id: str) -> Sequence[Row[Any]]:
    """The patient, their List (if any) and their active reactions in one statement, for a
    page's patient banner: one row per active reaction (one row with ``reaction`` None when
    there is none); no row when the patient does not exist. Columns: ``identifier_system``,
    ``identifier_value``, ``patient`` (the Patient), ``list_json`` and ``reaction`` (the
    AllergyIntolerance), oldest reaction first."""
    reactions = and_(allergy.c.patient_id == patient.c.id, allergy.c.status == "active")
    query = (
        select(
            patient.c.identifier_system,
            patient.c.identifier_value,
            patient.c.resource.label("patient"),
            CURRENT_LIST.label("list_json"),
            allergy.c.resource.label("reaction"),
        )
        .select_from(
            patient.outerjoin(pll, pll.c.patient_id == patient.c.id).outerjoin(allergy, reactions)
        )
        .where(patient.c.id == patient_id)
        .order_by(allergy.c.updated_at, allergy.c.id)
    )
    return cast("Sequence[Row[Any]]", conn.execute(query).all())
