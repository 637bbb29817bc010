"""Audit records, the sealed chain, patients' blocks and proxies: the rows access depends on.

Every function takes the caller's open transaction. The MAC and chain arithmetic is
:mod:`pll.auth.audit`; this module only stores and fetches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    and_,
    bindparam,
    exists,
    func,
    insert,
    select,
    text,
    update,
)

from pll.store.schema import (
    access_block,
    audit_chain,
    audit_event,
    care_registration,
    multidose,
    patient,
    proxy,
)

_INSERT = insert(audit_event)
_COLUMNS = [c for c in audit_event.c if c.name not in ("chain_seq", "chain_hash")]


def append(conn: Connection, row: dict[str, Any]) -> None:
    """Append one audit record (``row`` holds every column but the seal)."""
    conn.execute(_INSERT, row)


def facts(
    conn: Connection,
    patient_id: str,
    *,
    hpr: str | None,
    holder: str | None,
    org: str | None = None,
) -> Row[Any] | None:
    """``(identifier_value, blocked, proxy, pharmacy_org, doctor_hpr, in_care)`` for one
    patient and one caller; ``pharmacy`` and ``doctor`` name the patient's multidose parties
    (M27), if registered; ``in_care`` says the patient has an open registration with the
    care unit ``org`` (the caller's organisation)."""
    blocked = exists().where(
        and_(
            access_block.c.patient_id == patient.c.id,
            access_block.c.hpr == hpr,
            access_block.c.ended_at.is_(None),
        )
    )
    held = exists().where(
        and_(proxy.c.holder == holder, proxy.c.patient_identifier == patient.c.identifier_value)
    )
    registered = (
        select(multidose.c.pharmacy_org, multidose.c.doctor_hpr)
        .where(multidose.c.patient_id == patient.c.id)
        .correlate(patient)
    )
    in_care = exists().where(
        and_(
            care_registration.c.patient_id == patient.c.id,
            care_registration.c.unit_orgnr == org,
            care_registration.c.ended_at.is_(None),
        )
    )
    query = select(
        patient.c.identifier_value,
        blocked.label("blocked"),
        held.label("proxy"),
        in_care.label("in_care"),
        registered.with_only_columns(multidose.c.pharmacy_org).scalar_subquery().label("pharmacy"),
        registered.with_only_columns(multidose.c.doctor_hpr).scalar_subquery().label("doctor"),
    ).where(patient.c.id == patient_id)
    return conn.execute(query).first()


def has_proxy(conn: Connection, holder: str, patient_identifier: str) -> bool:
    query = select(proxy.c.holder).where(
        proxy.c.holder == holder, proxy.c.patient_identifier == patient_identifier
    )
    return conn.execute(query).first() is not None


def proxies_held(conn: Connection, holder: str) -> list[str]:
    """The fødselsnumre/D-numre ``holder`` holds a proxy for, in the order registered."""
    query = (
        select(proxy.c.patient_identifier)
        .where(proxy.c.holder == holder)
        .order_by(proxy.c.registered_at, proxy.c.patient_identifier)
    )
    return [str(value) for value in conn.execute(query).scalars()]


def add_proxy(conn: Connection, holder: str, patient_identifier: str, now: datetime) -> bool:
    if has_proxy(conn, holder, patient_identifier):
        return False
    conn.execute(
        insert(proxy).values(
            holder=holder, patient_identifier=patient_identifier, registered_at=now
        )
    )
    return True


def remove_proxy(conn: Connection, holder: str, patient_identifier: str) -> bool:
    result = conn.execute(
        proxy.delete().where(
            proxy.c.holder == holder, proxy.c.patient_identifier == patient_identifier
        )
    )
    return result.rowcount > 0


# -- blocks ------------------------------------------------------------------------------


def insert_block(
    conn: Connection, block_id: str, patient_id: str, hpr: str, now: datetime, resource: str
) -> None:
    conn.execute(
        insert(access_block).values(
            id=block_id, patient_id=patient_id, hpr=hpr, created_at=now, resource=resource
        )
    )


def block(conn: Connection, block_id: str) -> Row[Any] | None:
    return conn.execute(select(access_block).where(access_block.c.id == block_id)).first()


def blocks(conn: Connection, patient_id: str) -> Sequence[Row[Any]]:
    query = (
        select(access_block)
        .where(access_block.c.patient_id == patient_id)
        .order_by(access_block.c.created_at)
    )
    return conn.execute(query).all()


def end_block(conn: Connection, block_id: str, now: datetime, resource: str) -> None:
    conn.execute(
        update(access_block)
        .where(access_block.c.id == block_id)
        .values(ended_at=now, resource=resource)
    )


# -- the patient's access log -------------------------------------------------------------


def for_patient(
    conn: Connection, patient_id: str, count: int, offset: int
) -> tuple[int, Sequence[Row[Any]]]:
    where = audit_event.c.patient_id == patient_id
    total = conn.execute(select(func.count()).select_from(audit_event).where(where)).scalar_one()
    rows = conn.execute(
        select(audit_event)
        .where(where)
        .order_by(audit_event.c.recorded_at.desc(), audit_event.c.id.desc())
        .limit(count)
        .offset(offset)
    ).all()
    return int(total), rows


# -- the seal -----------------------------------------------------------------------------


def chain_head(conn: Connection, *, lock: bool = False) -> Row[Any] | None:
    query = select(audit_chain).where(audit_chain.c.id == 1)
    if lock:
        query = query.with_for_update()
    return conn.execute(query).first()


def start_chain(conn: Connection) -> None:
    conn.execute(
        insert(audit_chain).values(id=1, seq=0, hash="0" * 64, legacy_upto=0, legacy_count=0)
    )


def unsealed(conn: Connection, limit: int) -> Sequence[Row[Any]]:
    query = (
        select(*_COLUMNS).where(audit_event.c.chain_seq.is_(None)).order_by(audit_event.c.id)
    ).limit(limit)
    return conn.execute(query).all()


_SEAL = (
    update(audit_event)
    .where(audit_event.c.id == bindparam("record"))
    .values(chain_seq=bindparam("seq"), chain_hash=bindparam("hash"))
)
# On PostgreSQL a batch is one statement, and ``recorded_at`` names each record's monthly
# partition (issue 20): by the id alone every month's index would be searched, and one
# UPDATE per record costs a plan over all partitions each time.
_SEAL_BATCH = text(
    """
    UPDATE audit_event AS a SET chain_seq = v.seq, chain_hash = v.hash
    FROM unnest(CAST(:ids AS bigint[]), CAST(:ats AS timestamp[]), CAST(:seqs AS bigint[]),
                CAST(:hashes AS text[])) AS v(id, at, seq, hash)
    WHERE a.id = v.id AND a.recorded_at = v.at
    """
)


def seal(conn: Connection, seals: list[dict[str, Any]], seq: int, head: str) -> None:
    """Write the chain positions and hashes of a batch (``record`` id, ``at`` its
    ``recorded_at``, ``seq``, ``hash``), and the new head, together."""
    if conn.dialect.name == "postgresql":
        done = conn.execute(
            _SEAL_BATCH,
            {
                "ids": [s["record"] for s in seals],
                "ats": [s["at"].astimezone(UTC).replace(tzinfo=None) for s in seals],
                "seqs": [s["seq"] for s in seals],
                "hashes": [s["hash"] for s in seals],
            },
        ).rowcount
    else:
        done = conn.execute(_SEAL, seals).rowcount
    if done != len(seals):
        # a record not found by its id and time would otherwise stay unsealed behind a head
        # that counts it; the transaction rolls back and the next run tries again
        raise RuntimeError(f"sealing matched {done} of {len(seals)} audit records")
    conn.execute(update(audit_chain).where(audit_chain.c.id == 1).values(seq=seq, hash=head))


def all_records(conn: Connection, batch: int = 5000) -> Iterator[Row[Any]]:
    """Every record, sealed ones in chain order first (a position held by two records, which
    only tampering makes, by id), then the unsealed by id. On PostgreSQL this merges the
    monthly partitions' ``chain_seq`` indexes in order (no index spans them, issue 20)."""
    last = 0
    while True:
        rows = conn.execute(
            select(audit_event)
            .where(audit_event.c.chain_seq > last)
            .order_by(audit_event.c.chain_seq, audit_event.c.id)
            .limit(batch)
        ).all()
        if not rows:
            break
        last = rows[-1].chain_seq
        # the batch may end between two records at one position: take them all, by id
        yield from (row for row in rows if row.chain_seq != last)
        yield from conn.execute(
            select(audit_event).where(audit_event.c.chain_seq == last).order_by(audit_event.c.id)
        ).all()
    yield from unsealed_all(conn)


def unsealed_all(conn: Connection) -> Sequence[Row[Any]]:
    return conn.execute(
        select(audit_event).where(audit_event.c.chain_seq.is_(None)).order_by(audit_event.c.id)
    ).all()


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(audit_event)).scalar_one())
