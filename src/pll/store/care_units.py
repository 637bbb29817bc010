"""Care units and patients' registrations with them (issue 17): the rows behind
:mod:`pll.domain.care_units`. Every function takes the caller's open transaction."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, Row, insert, select, update

from pll.domain.care_units import CareRegistration, CareUnit, UnitKind
from pll.domain.model import Author
from pll.store.schema import care_registration, care_unit, patient


def lock(conn: Connection, patient_id: str) -> None:
    """Take the patient's row, so two registrations of one patient are judged one after
    the other (one open registration per unit)."""
    conn.execute(select(patient.c.id).where(patient.c.id == patient_id).with_for_update())


def open_registrations(conn: Connection, patient_id: str) -> list[CareRegistration]:
    """The patient's registrations that have not ended, oldest first."""
    query = (
        select(care_registration, care_unit.c.name)
        .join(care_unit, care_unit.c.orgnr == care_registration.c.unit_orgnr)
        .where(
            care_registration.c.patient_id == patient_id,
            care_registration.c.ended_at.is_(None),
        )
        .order_by(care_registration.c.started_at, care_registration.c.id)
    )
    return [_registration(row) for row in conn.execute(query)]


def save_unit(conn: Connection, unit: CareUnit, now: Any) -> None:
    """Record the unit, or update its kind (and its name, when one is given) to what the
    latest registration says."""
    found = conn.execute(select(care_unit.c.orgnr).where(care_unit.c.orgnr == unit.orgnr)).first()
    if found is None:
        conn.execute(
            insert(care_unit).values(
                orgnr=unit.orgnr, kind=unit.kind.value, name=unit.name, registered_at=now
            )
        )
        return
    values: dict[str, Any] = {"kind": unit.kind.value}
    if unit.name:
        values["name"] = unit.name
    conn.execute(update(care_unit).where(care_unit.c.orgnr == unit.orgnr).values(**values))


def insert_registration(conn: Connection, registration: CareRegistration) -> None:
    conn.execute(
        insert(care_registration).values(
            id=registration.id,
            patient_id=registration.patient_id,
            unit_orgnr=registration.unit.orgnr,
            kind=registration.unit.kind.value,
            started_at=registration.started_at,
            started_by=_author(registration.started_by),
        )
    )


def end_registration(conn: Connection, registration: CareRegistration) -> None:
    if registration.ended_at is None or registration.ended_by is None:
        raise ValueError("end_registration needs an ended registration")
    conn.execute(
        update(care_registration)
        .where(care_registration.c.id == registration.id)
        .values(ended_at=registration.ended_at, ended_by=_author(registration.ended_by))
    )


def _author(author: Author) -> str:
    return orjson.dumps(author.to_json(), option=orjson.OPT_SORT_KEYS).decode()


def _registration(row: Row[Any]) -> CareRegistration:
    return CareRegistration(
        id=row.id,
        patient_id=row.patient_id,
        unit=CareUnit(row.unit_orgnr, UnitKind(row.kind), row.name),
        started_at=row.started_at,
        started_by=Author.from_json(orjson.loads(row.started_by)),
        ended_at=row.ended_at,
        ended_by=Author.from_json(orjson.loads(row.ended_by)) if row.ended_by else None,
    )


def unit(conn: Connection, orgnr: str) -> Row[Any] | None:
    """The care unit with this organisation number, if any patient was ever registered there."""
    return conn.execute(select(care_unit).where(care_unit.c.orgnr == orgnr)).first()


def unit_patients(conn: Connection, orgnr: str, limit: int) -> list[str]:
    """The ids of the patients with an open registration at the unit, longest registered
    first, at most ``limit`` (the unit's chart shows them all; the bound keeps a page's work
    bounded)."""
    query = (
        select(care_registration.c.patient_id)
        .where(care_registration.c.unit_orgnr == orgnr, care_registration.c.ended_at.is_(None))
        .order_by(care_registration.c.started_at, care_registration.c.id)
        .limit(limit)
    )
    return list(dict.fromkeys(r.patient_id for r in conn.execute(query)))
