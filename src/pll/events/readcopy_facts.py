"""The read copy's access facts: copied from the store with the events, read for a decision.

What decides a read of a patient's list, beside who the caller is, is what the store holds
about the patient (:class:`pll.auth.access.PatientFacts`): the patient's blocks, the proxies
(fullmakt) for them, their multidose parties and their care unit registrations. The copy
keeps these in tables of its own (:mod:`pll.events.readcopy_schema`) so that it decides reads
with the same policy (:meth:`pll.auth.access.Access.decide`) when the store is down.

They are copied as the lists are: for each event that names a patient the copy reads that
patient's facts afresh, in the snapshot the events came from, and writes them with its place
(:meth:`pll.events.readcopy.ReadCopy.step`). Reading the state afresh, rather than applying
what each event says, makes the order of a patient's events beside each other irrelevant,
and an event applied twice changes nothing. Every change of a fact writes an event in its own
transaction (:mod:`pll.services.access_events`; a multidose change that makes a list version
has the list's), so the copy reads every change after it has committed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, exists, insert, select

from pll.auth.access import PatientFacts
from pll.events.readcopy_schema import copy_block, copy_care, copy_multidose, copy_proxy
from pll.store.schema import access_block, care_registration, multidose, patient, proxy


@dataclass
class Facts:
    """The access facts of some patients (``None``: of every patient) as the store holds
    them, to replace what the copy holds of them."""

    patients: list[str] | None
    identifiers: list[str] | None
    blocks: list[dict[str, Any]] = field(default_factory=list)
    proxies: list[dict[str, Any]] = field(default_factory=list)
    multidose: list[dict[str, Any]] = field(default_factory=list)
    care: list[dict[str, Any]] = field(default_factory=list)


def read(conn: Connection, patient_ids: Iterable[str] | None) -> Facts:
    """The facts of these patients (``None``: all) in the store's transaction ``conn``; a
    patient's proxies are those for their person number."""
    if patient_ids is None:
        found = Facts(None, None)
        only_patients: Any = None
        only_identifiers: Any = None
    else:
        ids = sorted(set(patient_ids))
        identifiers = sorted(
            str(v)
            for v in conn.execute(
                select(patient.c.identifier_value).where(patient.c.id.in_(ids))
            ).scalars()
        )
        found = Facts(ids, identifiers)
        only_patients, only_identifiers = ids, identifiers
    blocks = select(access_block.c.patient_id, access_block.c.hpr).where(
        access_block.c.ended_at.is_(None)
    )
    proxies = select(proxy.c.holder, proxy.c.patient_identifier)
    parties = select(multidose.c.patient_id, multidose.c.doctor_hpr, multidose.c.pharmacy_org)
    care = select(care_registration.c.patient_id, care_registration.c.unit_orgnr).where(
        care_registration.c.ended_at.is_(None)
    )
    if only_patients is not None:
        blocks = blocks.where(access_block.c.patient_id.in_(only_patients))
        proxies = proxies.where(proxy.c.patient_identifier.in_(only_identifiers))
        parties = parties.where(multidose.c.patient_id.in_(only_patients))
        care = care.where(care_registration.c.patient_id.in_(only_patients))
    # a set: the store may hold one worker blocked twice, or registered twice at a unit
    found.blocks = [dict(r._mapping) for r in set(conn.execute(blocks).all())]
    found.proxies = [dict(r._mapping) for r in conn.execute(proxies)]
    found.multidose = [dict(r._mapping) for r in conn.execute(parties)]
    found.care = [dict(r._mapping) for r in set(conn.execute(care).all())]
    return found


def save(conn: Connection, facts: Facts) -> None:
    """Replace what the copy holds of the patients ``facts`` is about with it."""
    for table, key, keys in (
        (copy_block, copy_block.c.patient_id, facts.patients),
        (copy_multidose, copy_multidose.c.patient_id, facts.patients),
        (copy_care, copy_care.c.patient_id, facts.patients),
        (copy_proxy, copy_proxy.c.patient_identifier, facts.identifiers),
    ):
        conn.execute(delete(table) if keys is None else delete(table).where(key.in_(keys)))
    for table, rows in (
        (copy_block, facts.blocks),
        (copy_multidose, facts.multidose),
        (copy_care, facts.care),
        (copy_proxy, facts.proxies),
    ):
        if rows:
            conn.execute(insert(table), rows)


def _facts_query() -> Any:
    """The copy's answer to the store's :func:`pll.store.audit_log.facts`, in its names."""
    blocked = exists().where(
        and_(
            copy_block.c.patient_id == bindparam("patient_id"), copy_block.c.hpr == bindparam("hpr")
        )
    )
    held = exists().where(
        and_(
            copy_proxy.c.holder == bindparam("holder"),
            copy_proxy.c.patient_identifier == bindparam("identifier"),
        )
    )
    in_care = exists().where(
        and_(
            copy_care.c.patient_id == bindparam("patient_id"),
            copy_care.c.unit_orgnr == bindparam("org"),
        )
    )
    party = select(copy_multidose).where(copy_multidose.c.patient_id == bindparam("patient_id"))
    return select(
        blocked.label("blocked"),
        held.label("proxy"),
        in_care.label("in_care"),
        party.with_only_columns(copy_multidose.c.pharmacy_org).scalar_subquery().label("pharmacy"),
        party.with_only_columns(copy_multidose.c.doctor_hpr).scalar_subquery().label("doctor"),
    )


_FACTS = _facts_query()


def facts(
    conn: Connection,
    patient_id: str,
    identifier: str,
    *,
    hpr: str | None,
    holder: str | None,
    org: str | None,
) -> PatientFacts:
    """The patient's facts for one caller (:meth:`pll.auth.access.Access.fact_keys`), as
    the copy holds them: one statement."""
    params = {"patient_id": patient_id, "identifier": identifier}
    row = conn.execute(_FACTS, params | {"hpr": hpr, "holder": holder, "org": org}).one()
    return PatientFacts.of(patient_id, SimpleNamespace(**row._mapping, identifier_value=identifier))


def holds_proxy(conn: Connection, holder: str, identifier: str) -> bool:
    """Whether the copy knows ``holder`` holds a proxy for the person ``identifier``."""
    query = select(copy_proxy.c.holder).where(
        copy_proxy.c.holder == holder, copy_proxy.c.patient_identifier == identifier
    )
    return conn.execute(query).first() is not None
