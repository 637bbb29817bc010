"""A care unit's settings (issue 17): the rows behind
:mod:`pll.domain.administration.unit_settings`, and the records of the schedule's days.
Every function takes the caller's open transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, time
from typing import Any, cast

import orjson
from sqlalchemy import Connection, Row, delete, insert, select

from pll.domain.administration.records import Status
from pll.domain.administration.slots import SLOTS, Slot
from pll.domain.administration.unit_settings import UnitSettings
from pll.domain.model import Author
from pll.store.schema import care_registration, care_unit, care_unit_settings
from pll.store.schema import medication_administration as ma


def unit_known(conn: Connection, orgnr: str) -> bool:
    """Whether PLL knows the care unit (it has registered a patient)."""
    found = conn.execute(select(care_unit.c.orgnr).where(care_unit.c.orgnr == orgnr)).first()
    return found is not None


def registered_with(conn: Connection, patient_id: str, orgnr: str | None) -> bool:
    """Whether the patient has an open registration with the unit ``orgnr``."""
    if not orgnr:
        return False
    query = select(care_registration.c.id).where(
        care_registration.c.patient_id == patient_id,
        care_registration.c.unit_orgnr == orgnr,
        care_registration.c.ended_at.is_(None),
    )
    return conn.execute(query.limit(1)).first() is not None


def history(conn: Connection, orgnr: str, until: date | None = None) -> list[UnitSettings]:
    """The unit's settings, each from its day on, oldest first (those applying from
    ``until`` or before, when given)."""
    query = select(care_unit_settings).where(care_unit_settings.c.orgnr == orgnr)
    if until is not None:
        query = query.where(care_unit_settings.c.valid_from <= until.isoformat())
    rows = conn.execute(query.order_by(care_unit_settings.c.valid_from))
    return [_settings(row) for row in rows]


def save(conn: Connection, settings: UnitSettings) -> None:
    """Settings from their day on, replacing what was set before for that very day (a day
    not yet begun: earlier days are never touched)."""
    if settings.set_at is None or settings.set_by is None:
        raise ValueError("save needs the settings' author and time")
    day = settings.valid_from.isoformat()
    conn.execute(
        delete(care_unit_settings).where(
            care_unit_settings.c.orgnr == settings.orgnr, care_unit_settings.c.valid_from == day
        )
    )
    conn.execute(
        insert(care_unit_settings).values(
            orgnr=settings.orgnr,
            valid_from=day,
            group_b_second_signature=settings.group_b_second_signature,
            set_at=settings.set_at,
            set_by=orjson.dumps(settings.set_by.to_json(), option=orjson.OPT_SORT_KEYS).decode(),
            **{str(slot): f"{settings.times[slot]:%H:%M}" for slot in SLOTS},
        )
    )


def standing_records(
    conn: Connection, patient_id: str, first: date, last: date
) -> Sequence[Row[Any]]:
    """The patient's records that stand (not entered in error) of the local days ``first``
    to ``last``: one query for a whole schedule."""
    query = select(
        ma.c.id,
        ma.c.entry_id,
        ma.c.slot_key,
        ma.c.day,
        ma.c.status,
        ma.c.status_reason,
        ma.c.amount,
        ma.c.unit,
        ma.c.planned_amount,
        ma.c.effective_at,
    ).where(
        ma.c.patient_id == patient_id,
        ma.c.day >= first.isoformat(),
        ma.c.day <= last.isoformat(),
        ma.c.status != Status.ENTERED_IN_ERROR.value,
    )
    return cast(Sequence[Row[Any]], conn.execute(query.order_by(ma.c.effective_at, ma.c.id)).all())


def _settings(row: Row[Any]) -> UnitSettings:
    times = {slot: time.fromisoformat(getattr(row, str(slot))) for slot in Slot}
    return UnitSettings(
        orgnr=row.orgnr,
        valid_from=date.fromisoformat(row.valid_from),
        times=times,
        group_b_second_signature=bool(row.group_b_second_signature),
        set_at=row.set_at,
        set_by=Author.from_json(orjson.loads(row.set_by)),
    )
