"""Rows behind the SFM Basis operations: the reads a send is held to, dispensings, M25
messages and multidose parties. Every function takes the caller's open transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import Connection, Row, delete, func, insert, select, update

from pll.store.repository import dumps
from pll.store.schema import dispense, multidose, pll_message, sfm_read

#: Reads are kept this long; a send must come within four hours of its read.
READS_KEPT = timedelta(days=1)


def add_read(
    conn: Connection,
    read_id: str,
    patient_id: str,
    client_id: str | None,
    reader_id: str,
    reader: dict[str, Any],
    read_at: datetime,
    list_version: int,
    shown: dict[str, Any],
) -> None:
    conn.execute(
        delete(sfm_read).where(
            sfm_read.c.patient_id == patient_id, sfm_read.c.read_at < read_at - READS_KEPT
        )
    )
    conn.execute(
        insert(sfm_read).values(
            id=read_id,
            patient_id=patient_id,
            client_id=client_id,
            reader_id=reader_id,
            reader=dumps(reader),
            read_at=read_at,
            list_version=list_version,
            shown=dumps(shown),
        )
    )


def get_read(conn: Connection, read_id: str, *, lock: bool = False) -> Row[Any] | None:
    query = select(sfm_read).where(sfm_read.c.id == read_id)
    return conn.execute(query.with_for_update() if lock else query).first()


def latest_read_at(
    conn: Connection, patient_id: str, client_id: str | None, reader_id: str
) -> datetime | None:
    """When this user of this client system last read the patient's list."""
    client = (
        sfm_read.c.client_id.is_(None) if client_id is None else sfm_read.c.client_id == client_id
    )
    return cast(
        "datetime | None",
        conn.execute(
            select(func.max(sfm_read.c.read_at)).where(
                sfm_read.c.patient_id == patient_id, client, sfm_read.c.reader_id == reader_id
            )
        ).scalar(),
    )


def update_read(conn: Connection, read_id: str, list_version: int, shown: dict[str, Any]) -> None:
    """After a send, the read stands for the list as the send left it (a second send on the
    same read must account for what the first one added)."""
    conn.execute(
        update(sfm_read)
        .where(sfm_read.c.id == read_id)
        .values(list_version=list_version, shown=dumps(shown))
    )


def add_dispense(
    conn: Connection,
    dispense_id: str,
    patient_id: str,
    prescription_id: str | None,
    handed_over: str | None,
    recorded_at: datetime,
    resource: dict[str, Any],
) -> None:
    conn.execute(
        insert(dispense).values(
            id=dispense_id,
            patient_id=patient_id,
            prescription_id=prescription_id,
            handed_over=handed_over,
            recorded_at=recorded_at,
            resource=dumps(resource),
        )
    )


def dispense_exists(conn: Connection, dispense_id: str) -> bool:
    return (
        conn.execute(select(dispense.c.id).where(dispense.c.id == dispense_id)).first() is not None
    )


def dispenses(conn: Connection, patient_id: str) -> list[tuple[str, dict[str, Any], str | None]]:
    rows = conn.execute(
        select(dispense.c.id, dispense.c.resource, dispense.c.prescription_id)
        .where(dispense.c.patient_id == patient_id)
        .order_by(dispense.c.handed_over, dispense.c.id)
    )
    return [(r.id, orjson.loads(r.resource), r.prescription_id) for r in rows]


def add_message(
    conn: Connection,
    message_id: str,
    patient_id: str,
    kind: str,
    identifier: str,
    sent_at: datetime,
    author: dict[str, Any] | None,
    detail: dict[str, Any],
    list_version: int | None = None,
) -> None:
    conn.execute(
        insert(pll_message).values(
            id=message_id,
            patient_id=patient_id,
            kind=kind,
            identifier=identifier,
            sent_at=sent_at,
            list_version=list_version,
            author=dumps(author) if author is not None else None,
            detail=dumps(detail),
        )
    )


def messages(conn: Connection, patient_id: str) -> Sequence[Row[Any]]:
    """The newest message of each kind."""
    rows = conn.execute(
        select(pll_message)
        .where(pll_message.c.patient_id == patient_id)
        .order_by(pll_message.c.kind, pll_message.c.sent_at.desc())
    ).all()
    newest: dict[str, Row[Any]] = {}
    for row in rows:
        newest.setdefault(row.kind, row)
    return list(newest.values())


def set_multidose(
    conn: Connection,
    patient_id: str,
    doctor: dict[str, Any] | None,
    pharmacy: dict[str, Any] | None,
    at: datetime,
    by: dict[str, Any],
) -> None:
    """Register the patient's multidose parties (``Party`` JSON), replacing any before. The
    doctor's ``hpr`` and the pharmacy's ``org_id`` (organisation number) are what access
    decisions compare with the caller's."""
    conn.execute(delete(multidose).where(multidose.c.patient_id == patient_id))
    conn.execute(
        insert(multidose).values(
            patient_id=patient_id,
            doctor=dumps(doctor) if doctor else None,
            pharmacy=dumps(pharmacy) if pharmacy else None,
            registered_at=at,
            registered_by=dumps(by),
            doctor_hpr=(doctor or {}).get("hpr"),
            pharmacy_org=(pharmacy or {}).get("org_id"),
        )
    )


def get_multidose(conn: Connection, patient_id: str) -> Row[Any] | None:
    return conn.execute(select(multidose).where(multidose.c.patient_id == patient_id)).first()
