"""Rows behind e-multidose: the registration (M27), paper multidose and the items of the
pharmacy's proposals (M25.2). Every function takes the caller's open transaction.

The registration's parties are kept as SFM shows them (``Party`` JSON: ``name``, ``hpr``,
``org_name``, ``her``, ``role`` M or A, and for PLL's own registrations the pharmacy's
``org_id``), so ``$getMedication`` names them as SFM does; this module turns them into the
domain's :class:`~pll.domain.model.Registration`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import (
    Connection,
    Row,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)

from pll.domain.model import (
    Author,
    Multidose,
    PaperMultidose,
    Pharmacy,
    ReceivingUnit,
    Registration,
    Role,
)
from pll.domain.multidose import Held
from pll.store.schema import (
    access_block,
    multidose,
    multidose_item,
    paper_multidose,
    patient,
    pll,
    pll_message,
)

#: Who registered what came in with an SFM import (``registered_by`` {"import": "sfm"}).
IMPORTED = Author(name="Importert fra SFM", role=Role.SYSTEM)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# -- the registration and paper multidose ----------------------------------------------------


def doctor_json(doctor: Author) -> dict[str, str]:
    """The responsible doctor as SFM's ``Party`` (role M, kodeverk 7490)."""
    out = {"name": doctor.name, "hpr": doctor.hpr, "org_name": doctor.org_name, "her": doctor.her}
    return {**{k: v for k, v in out.items() if v}, "role": "M"}


def pharmacy_json(pharmacy: Pharmacy) -> dict[str, str]:
    """The multidose pharmacy as SFM's ``Party`` (role A), with its organisation number."""
    out = {"org_name": pharmacy.name, "org_id": pharmacy.org_id, "her": pharmacy.her}
    return {**{k: v for k, v in out.items() if v}, "role": "A"}


def author_label(text: str | None) -> str | None:
    """Who wrote a stored ``Party`` or author JSON, for display."""
    if not text:
        return None
    data = orjson.loads(text)
    parts = [data.get("name"), data.get("hpr") and f"HPR {data['hpr']}", data.get("org_name")]
    return ", ".join(p for p in parts if p) or None


def _author(text: str | None) -> Author:
    data = orjson.loads(text) if text else {}
    if isinstance(data, dict) and "name" in data and "role" in data:
        return Author.from_json(data)
    return IMPORTED


def _registration(
    row: Row[Any], doctor_text: str | None, pharmacy_text: str | None
) -> Registration | None:
    if row.registered_at is None:
        return None
    doctor = orjson.loads(doctor_text) if doctor_text else {}
    pharmacy = orjson.loads(pharmacy_text) if pharmacy_text else {}
    her = pharmacy.get("her")
    return Registration(
        doctor=Author(
            name=doctor.get("name") or "ukjent",
            role=Role.DOCTOR,
            hpr=doctor.get("hpr"),
            org_name=doctor.get("org_name"),
            her=doctor.get("her"),
        ),
        pharmacy=Pharmacy(
            name=pharmacy.get("org_name") or pharmacy.get("name") or (f"HER {her}" if her else ""),
            org_id=pharmacy.get("org_id"),
            her=her,
        ),
        at=row.registered_at,
        by=_author(row.registered_by),
        receiver=ReceivingUnit(row.care_unit_org, row.care_unit_name)
        if row.care_unit_org
        else None,
    )


def _paper(row: Row[Any]) -> PaperMultidose | None:
    if row.paper_at is None:
        return None
    return PaperMultidose(row.paper_at, _author(row.paper_by), row.paper_pharmacy, row.paper_note)


_STATE = (
    select(
        multidose.c.doctor,
        multidose.c.pharmacy,
        multidose.c.registered_at,
        multidose.c.registered_by,
        multidose.c.care_unit_org,
        multidose.c.care_unit_name,
        paper_multidose.c.registered_at.label("paper_at"),
        paper_multidose.c.registered_by.label("paper_by"),
        paper_multidose.c.pharmacy.label("paper_pharmacy"),
        paper_multidose.c.note.label("paper_note"),
    )
    .select_from(
        patient.outerjoin(multidose, multidose.c.patient_id == patient.c.id).outerjoin(
            paper_multidose, paper_multidose.c.patient_id == patient.c.id
        )
    )
    .where(patient.c.id == bindparam("patient_id"))
)


def lock(conn: Connection, patient_id: str) -> None:
    """Take the patient's row for a change of their multidose, so two registrations for one
    patient are judged one after the other (one pharmacy per patient)."""
    conn.execute(select(patient.c.id).where(patient.c.id == patient_id).with_for_update())


def state(conn: Connection, patient_id: str) -> Multidose:
    """The patient's e-multidose registration and paper multidose: one keyed lookup."""
    row = cast("Row[Any] | None", conn.execute(_STATE, {"patient_id": patient_id}).first())
    if row is None:
        return Multidose()
    return Multidose(_registration(row, row.doctor, row.pharmacy), _paper(row))


def state_of(row: Row[Any]) -> Multidose:
    """The same state from a row of :func:`pll.store.audit_log.facts` with ``for_change``,
    which reads it with the access facts in one statement (issue 20)."""
    return Multidose(_registration(row, row.md_doctor, row.md_pharmacy), _paper(row))


def enrolment(conn: Connection, patient_ids: Iterable[str]) -> dict[str, tuple[bool, bool]]:
    """Per patient, whether registered for e-multidose and whether on paper multidose, in
    one query for them all (the statistics consumer's batch, issue 20); a patient not
    found is on neither."""
    wanted = sorted(set(patient_ids))
    if not wanted:
        return {}
    rows = conn.execute(
        select(
            patient.c.id,
            multidose.c.patient_id.is_not(None).label("emultidose"),
            paper_multidose.c.patient_id.is_not(None).label("paper"),
        )
        .select_from(
            patient.outerjoin(multidose, multidose.c.patient_id == patient.c.id).outerjoin(
                paper_multidose, paper_multidose.c.patient_id == patient.c.id
            )
        )
        .where(patient.c.id.in_(wanted))
    )
    return {r.id: (bool(r.emultidose), bool(r.paper)) for r in rows}


def save(conn: Connection, patient_id: str, before: Multidose, after: Multidose) -> None:
    """Write what changed between two states of the patient's multidose."""
    if after.registration != before.registration:
        conn.execute(delete(multidose).where(multidose.c.patient_id == patient_id))
        reg = after.registration
        if reg is not None:
            conn.execute(
                insert(multidose).values(
                    patient_id=patient_id,
                    doctor=_dumps(doctor_json(reg.doctor)),
                    pharmacy=_dumps(pharmacy_json(reg.pharmacy)),
                    registered_at=reg.at,
                    registered_by=_dumps(reg.by.to_json()),
                    doctor_hpr=reg.doctor.hpr,
                    pharmacy_org=reg.pharmacy.org_id,
                    care_unit_org=reg.receiver.orgnr if reg.receiver else None,
                    care_unit_name=reg.receiver.name if reg.receiver else None,
                )
            )
    if after.paper != before.paper:
        conn.execute(delete(paper_multidose).where(paper_multidose.c.patient_id == patient_id))
        paper = after.paper
        if paper is not None:
            conn.execute(
                insert(paper_multidose).values(
                    patient_id=patient_id,
                    pharmacy=paper.pharmacy,
                    note=paper.note,
                    registered_at=paper.at,
                    registered_by=_dumps(paper.by.to_json()),
                )
            )


# -- the items of proposals (M25.2) --------------------------------------------------------


def add_item(
    conn: Connection,
    item_id: str,
    proposal_id: str,
    patient_id: str,
    seq: int,
    action: str,
    entry_id: str | None,
    entry_version: int | None,
    content: dict[str, Any] | None,
    reason: str | None,
) -> None:
    conn.execute(
        insert(multidose_item).values(
            id=item_id,
            proposal_id=proposal_id,
            patient_id=patient_id,
            seq=seq,
            action=action,
            entry_id=entry_id,
            entry_version=entry_version,
            resource=_dumps(content) if content is not None else None,
            reason=reason,
            status="pending",
        )
    )


def held(row: Row[Any]) -> Held:
    """An item as the domain judges it."""
    return Held(
        id=row.id,
        proposal_id=row.proposal_id,
        action=row.action,
        status=row.status,
        entry_id=row.entry_id,
        entry_version=row.entry_version,
        content=orjson.loads(row.resource) if row.resource else None,
        reason=row.reason,
        decided_by=_author(row.decided_by).label() if row.decided_by else None,
        decided_at=row.decided_at,
        decision_reason=row.decision_reason,
        list_version=row.list_version,
        entry_result=row.entry_result,
    )


def items(
    conn: Connection, patient_id: str, ids: Iterable[str], *, lock: bool = False
) -> dict[str, Held]:
    """The named items of this patient's proposals (others are not found), locked for a
    decision when ``lock``."""
    query = select(multidose_item).where(
        multidose_item.c.patient_id == patient_id, multidose_item.c.id.in_(sorted(set(ids)))
    )
    rows = conn.execute(query.with_for_update() if lock else query).all()
    return {r.id: held(r) for r in rows}


def close_pending(conn: Connection, patient_id: str, at: datetime, by: Author, why: str) -> None:
    """Reject every item still pending for the patient (the registration ended)."""
    conn.execute(
        update(multidose_item)
        .where(multidose_item.c.patient_id == patient_id, multidose_item.c.status == "pending")
        .values(
            status="rejected", decided_at=at, decided_by=_dumps(by.to_json()), decision_reason=why
        )
    )


def decide(
    conn: Connection,
    item_id: str,
    status: str,
    at: datetime,
    by: Author,
    reason: str | None,
    list_version: int | None,
    entry_result: str | None,
) -> None:
    conn.execute(
        update(multidose_item)
        .where(multidose_item.c.id == item_id)
        .values(
            status=status,
            decided_at=at,
            decided_by=_dumps(by.to_json()),
            decision_reason=reason,
            list_version=list_version,
            entry_result=entry_result,
        )
    )


def proposals(
    conn: Connection, patient_id: str, status: str | None
) -> list[tuple[Row[Any], list[Row[Any]]]]:
    """The patient's proposals, newest first, each with its items (only those in
    ``status`` when given; a proposal with none of those is left out)."""
    query = (
        select(multidose_item, pll_message.c.sent_at, pll_message.c.author, pll_message.c.detail)
        .join(pll_message, pll_message.c.id == multidose_item.c.proposal_id)
        .where(multidose_item.c.patient_id == patient_id)
        .order_by(pll_message.c.sent_at.desc(), multidose_item.c.proposal_id, multidose_item.c.seq)
    )
    if status is not None:
        query = query.where(multidose_item.c.status == status)
    grouped: dict[str, tuple[Row[Any], list[Row[Any]]]] = {}
    for row in conn.execute(query):
        grouped.setdefault(row.proposal_id, (row, []))[1].append(row)
    return list(grouped.values())


def pending_count(conn: Connection, patient_id: str) -> int:
    rows: Sequence[Row[Any]] = conn.execute(
        select(multidose_item.c.id).where(
            multidose_item.c.patient_id == patient_id, multidose_item.c.status == "pending"
        )
    ).all()
    return len(rows)


# -- the pharmacy's work list ----------------------------------------------------------------


def pharmacy_patients(
    conn: Connection, org_id: str, hpr: str | None, limit: int, offset: int
) -> tuple[int, Sequence[Row[Any]]]:
    """The patients whose registration names the pharmacy ``org_id``, newest registration
    first, one page of them; and how many there are in all.

    Each row carries what the access policy decides on (``identifier_value``,
    ``pharmacy_org``, ``doctor_hpr``, ``blocked`` for the worker ``hpr``) and what the
    pharmacy's work list shows: the patient resource, the list (``list_id``, ``version``,
    ``pause``), the items ``pending`` and whether paper multidose is recorded (``paper``)."""
    mine = multidose.c.pharmacy_org == org_id
    total = conn.execute(select(func.count()).select_from(multidose).where(mine)).scalar_one()
    pending = (
        select(func.count())
        .where(
            multidose_item.c.patient_id == multidose.c.patient_id,
            multidose_item.c.status == "pending",
        )
        .correlate(multidose)
        .scalar_subquery()
    )
    blocked = exists().where(
        and_(
            access_block.c.patient_id == multidose.c.patient_id,
            access_block.c.hpr == hpr,
            access_block.c.ended_at.is_(None),
        )
    )
    paper = exists().where(paper_multidose.c.patient_id == multidose.c.patient_id)
    query = (
        select(
            multidose.c.patient_id,
            multidose.c.pharmacy_org,
            multidose.c.doctor_hpr,
            multidose.c.doctor,
            multidose.c.registered_at,
            patient.c.identifier_value,
            patient.c.resource,
            pll.c.id.label("list_id"),
            pll.c.version,
            pll.c.pause,
            pending.label("pending"),
            blocked.label("blocked"),
            paper.label("paper"),
        )
        .select_from(
            multidose.join(patient, patient.c.id == multidose.c.patient_id).outerjoin(
                pll, pll.c.patient_id == multidose.c.patient_id
            )
        )
        .where(mine)
        .order_by(multidose.c.registered_at.desc(), multidose.c.patient_id)
        .limit(limit)
        .offset(offset)
    )
    return int(total), cast("Sequence[Row[Any]]", conn.execute(query).all())
