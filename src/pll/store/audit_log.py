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

from pll.store import direct, pipeline
from pll.store.schema import (
    access_block,
    allergy,
    audit_chain,
    audit_event,
    care_registration,
    fest_catalog,
    multidose,
    paper_multidose,
    patient,
    proxy,
)

#: ``inline``: no ``RETURNING id`` (nobody reads it), so the insert can be pipelined
#: with the change it records (pll.store.pipeline)
_INSERT = insert(audit_event).inline()


def append(conn: Connection, row: dict[str, Any]) -> None:
    """Append one audit record (``row`` holds every column but the seal)."""
    pipeline.execute(conn, _INSERT, row)


def _facts_query(*, for_change: bool) -> Any:
    """The access facts of one patient for one caller; ``for_change`` adds, in the same
    statement, what a change of the patient's list reads besides: the patient's multidose
    registration and paper multidose (the columns of :func:`pll.store.multidose.state`),
    the drug catalogue version in use and whether the patient has an active reaction (CAVE)
    at all (issue 20: one statement where the domain needs one read)."""
    blocked = exists().where(
        and_(
            access_block.c.patient_id == patient.c.id,
            access_block.c.hpr == bindparam("hpr"),
            access_block.c.ended_at.is_(None),
        )
    )
    held = exists().where(
        and_(
            proxy.c.holder == bindparam("holder"),
            proxy.c.patient_identifier == patient.c.identifier_value,
        )
    )
    in_care = exists().where(
        and_(
            care_registration.c.patient_id == patient.c.id,
            care_registration.c.unit_orgnr == bindparam("org"),
            care_registration.c.ended_at.is_(None),
        )
    )
    columns: list[Any] = [
        patient.c.identifier_value,
        blocked.label("blocked"),
        held.label("proxy"),
        in_care.label("in_care"),
        multidose.c.pharmacy_org.label("pharmacy"),
        multidose.c.doctor_hpr.label("doctor"),
    ]
    source: Any = patient.outerjoin(multidose, multidose.c.patient_id == patient.c.id)
    if for_change:
        columns += [
            multidose.c.doctor.label("md_doctor"),
            multidose.c.pharmacy.label("md_pharmacy"),
            multidose.c.registered_at,
            multidose.c.registered_by,
            multidose.c.care_unit_org,
            multidose.c.care_unit_name,
            paper_multidose.c.registered_at.label("paper_at"),
            paper_multidose.c.registered_by.label("paper_by"),
            paper_multidose.c.pharmacy.label("paper_pharmacy"),
            paper_multidose.c.note.label("paper_note"),
            select(fest_catalog.c.version)
            .where(fest_catalog.c.status == "active")
            .scalar_subquery()
            .label("catalogue"),
            exists()
            .where(allergy.c.patient_id == patient.c.id, allergy.c.status == "active")
            .label("reactions"),
        ]
        source = source.outerjoin(paper_multidose, paper_multidose.c.patient_id == patient.c.id)
    return select(*columns).select_from(source).where(patient.c.id == bindparam("patient_id"))


# built once: building a statement costs more than running it (DESIGN §6)
_FACTS = {change: _facts_query(for_change=change) for change in (False, True)}


def facts(
    conn: Connection,
    patient_id: str,
    *,
    hpr: str | None,
    holder: str | None,
    org: str | None = None,
    for_change: bool = False,
) -> Row[Any] | None:
    """``(identifier_value, blocked, proxy, pharmacy_org, doctor_hpr, in_care)`` for one
    patient and one caller; ``pharmacy`` and ``doctor`` name the patient's multidose parties
    (M27), if registered; ``in_care`` says the patient has an open registration with the
    care unit ``org`` (the caller's organisation). ``for_change``: the row also holds the
    patient's multidose state (:func:`pll.store.multidose.state_of`), the catalogue
    version in use (``catalogue``) and whether any reaction of the patient is active
    (``reactions``), which a change of the list needs."""
    params = {"patient_id": patient_id, "hpr": hpr, "holder": holder, "org": org}
    return direct.first(conn, _FACTS[for_change], params)


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


def block(conn: Connection, block_id: str, *, lock: bool = False) -> Row[Any] | None:
    query = select(access_block).where(access_block.c.id == block_id)
    return conn.execute(query.with_for_update() if lock else query).first()


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


_UNSEALED: Any = (
    select(audit_event.c.id, audit_event.c.recorded_at, audit_event.c.mac)
    .where(audit_event.c.chain_seq.is_(None), audit_event.c.id > bindparam("after"))
    .order_by(audit_event.c.id)
    .limit(bindparam("limit"))
)


def unsealed(conn: Connection, limit: int, after: int = 0) -> Sequence[Row[Any]]:
    """The ``limit`` records not yet sealed with the lowest ids above ``after``: only what
    linking them takes (``id``, ``recorded_at`` naming the partition, ``mac``). A sealer
    going through a backlog passes the last id it sealed: its index scan then starts
    there, instead of stepping again over every record sealed so far, which stays in the
    index (dead) until vacuumed — work that grew with the square of the backlog."""
    return conn.execute(_UNSEALED, {"after": after, "limit": limit}).all()


def new_ids(conn: Connection, count: int) -> list[int]:
    """``count`` ids for records the caller is about to write in its transaction, rising:
    from the table's own sequence on PostgreSQL (so the ids the database gives later never
    meet them); on SQLite, the next ones after the largest (its single writer holds the
    database for the transaction, and the log is never deleted from)."""
    if count <= 0:
        return []
    if conn.dialect.name == "postgresql":
        drawn = conn.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence('audit_event', 'id')) "
                "FROM generate_series(1, :n)"
            ),
            {"n": count},
        ).scalars()
        return sorted(int(i) for i in drawn)
    top = conn.execute(select(func.coalesce(func.max(audit_event.c.id), 0))).scalar_one()
    return list(range(int(top) + 1, int(top) + 1 + count))


def unsealed_backlog(conn: Connection, cap: int) -> tuple[int, datetime | None]:
    """How many records wait to be sealed (counted up to ``cap``) and when the oldest was
    recorded (``None``: none waits); both on the partial index of the unsealed records."""
    waiting = (
        select(audit_event.c.id).where(audit_event.c.chain_seq.is_(None)).limit(cap).subquery()
    )
    count = conn.execute(select(func.count()).select_from(waiting)).scalar_one()
    oldest = conn.execute(
        select(audit_event.c.recorded_at)
        .where(audit_event.c.chain_seq.is_(None))
        .order_by(audit_event.c.id)
        .limit(1)
    ).scalar()
    return int(count), oldest


_SEAL = (
    update(audit_event)
    .where(audit_event.c.id == bindparam("record"))
    .values(chain_seq=bindparam("seq"), chain_hash=bindparam("hash"))
)
# On PostgreSQL a batch is one statement, each record found by its whole primary key (id and
# ``recorded_at``): the plan is a loop over the batch with one index lookup a record, in the
# one monthly partition its time names (pruned as the loop runs), however large the months
# grow (issue 20). A range of ``recorded_at`` in the WHERE clause would prune at planning
# instead, but the newest records lie past the partition's statistics, so PostgreSQL took the
# range for one row, scanned it and compared every record in it with every one in the batch:
# 64,000 records took 132 s to seal at 100,000 patients (485 a second, fewer than reads
# write). The ids, times and hashes go as three strings, and the positions follow from the
# first: a list of Python values costs several microseconds an element to send as an array,
# more than the hash.
SEAL_BATCH = text(
    """
    UPDATE audit_event AS a SET chain_seq = :first + v.n - 1, chain_hash = v.hash
    FROM unnest(CAST(string_to_array(:ids, ' ') AS bigint[]),
                CAST(string_to_array(:times, ' ') AS timestamp[]),
                string_to_array(:hashes, ' '))
         WITH ORDINALITY AS v(id, at, hash, n)
    WHERE a.id = v.id AND a.recorded_at = v.at
    """
)


def seal(conn: Connection, seals: list[dict[str, Any]], seq: int, head: str) -> None:
    """Write the chain positions and hashes of a batch (``record`` id, ``at`` its
    ``recorded_at``, ``seq``, ``hash``; the positions consecutive), and the new head,
    together."""
    if conn.dialect.name == "postgresql":
        done = conn.execute(SEAL_BATCH, seal_batch_parameters(seals)).rowcount
    else:
        done = conn.execute(_SEAL, seals).rowcount
    if done != len(seals):
        # a record not found by its id and time would otherwise stay unsealed behind a head
        # that counts it; the transaction rolls back and the next run tries again
        raise RuntimeError(f"sealing matched {done} of {len(seals)} audit records")
    move_head(conn, seq, head)


def seal_batch_parameters(seals: list[dict[str, Any]]) -> dict[str, Any]:
    """The parameters of the one statement that seals a batch on PostgreSQL
    (:data:`SEAL_BATCH`)."""
    return {
        "ids": " ".join(str(s["record"]) for s in seals),
        "times": " ".join(_naive_utc(s["at"]).isoformat() for s in seals),
        "hashes": " ".join(s["hash"] for s in seals),
        "first": seals[0]["seq"],
    }


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def move_head(conn: Connection, seq: int, head: str) -> None:
    """The chain now ends at position ``seq`` with hash ``head`` (under the head's lock)."""
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
