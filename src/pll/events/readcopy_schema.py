"""The read copy's own tables, in a database of its own (``PLL_READCOPY_URL``).

Not PLL's migrations: :meth:`pll.events.readcopy.ReadCopy.setup` makes them, and the copy
can be dropped and rebuilt at any time (``pll readcopy rebuild``) — except
``copy_audit`` while it holds records not yet forwarded (``pll readcopy status`` says).

- ``copy_list``, ``copy_place``: every list's current document, and the place in the
  outbox up to which the copy has applied the events.
- ``copy_block``, ``copy_proxy``, ``copy_multidose``, ``copy_care``: what access to a
  patient's list depends on (:class:`pll.auth.access.PatientFacts`), as the store holds it:
  open blocks, proxies, the multidose parties, open care unit registrations.
- ``copy_audit``: the records of the reads the copy served, until forwarded to the store's
  audit trail (and for :data:`pll.events.readcopy_audit.KEEP` after).
- ``dpop_proof``: the DPoP proofs the copy's server has accepted (as the store's own table,
  :mod:`pll.store.dpop_proofs`): the copy checks replays without the store.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from pll.store.schema import UTCDateTime, dpop_proof

copy_metadata = MetaData()

copy_list = Table(
    "copy_list",
    copy_metadata,
    Column("list_id", String(64), primary_key=True),
    Column("patient_id", String(64), nullable=False),
    Column("identifier_system", String(64), nullable=False),
    Column("identifier_value", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("document", Text, nullable=False),
    #: when a discontinued entry next leaves the list (90 days): the document is stale then
    Column("expires_at", UTCDateTime),
    Column("copied_at", UTCDateTime, nullable=False),
    Index("ix_copy_list_patient", "patient_id", unique=True),
    Index("ix_copy_list_identifier", "identifier_system", "identifier_value"),
)

copy_place = Table(
    "copy_place",
    copy_metadata,
    Column("name", String(20), primary_key=True),
    #: the outbox place (pll.events.outbox.Position) of the last event applied: its id,
    Column("position", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    #: and its ``tx`` (added for issue 20; a copy made before gets it, as 0, from setup)
    Column("position_tx", BigInteger, nullable=False, server_default=text("0")),
)

#: the patient's blocks that have not ended, by the blocked worker's HPR number
copy_block = Table(
    "copy_block",
    copy_metadata,
    Column("patient_id", String(64), primary_key=True),
    Column("hpr", String(16), primary_key=True),
)

#: ``holder`` may act for the person ``patient_identifier`` (kept by person number, as the
#: store keeps it: a proxy may come before the person is registered)
copy_proxy = Table(
    "copy_proxy",
    copy_metadata,
    Column("holder", String(32), primary_key=True),
    Column("patient_identifier", String(32), primary_key=True),
    Index("ix_copy_proxy_patient", "patient_identifier"),
)

#: the patient's multidose parties (M27): the doctor's HPR, the pharmacy's orgnr
copy_multidose = Table(
    "copy_multidose",
    copy_metadata,
    Column("patient_id", String(64), primary_key=True),
    Column("doctor_hpr", String(16)),
    Column("pharmacy_org", String(16)),
)

#: the care units the patient is registered with, registrations that have not ended
copy_care = Table(
    "copy_care",
    copy_metadata,
    Column("patient_id", String(64), primary_key=True),
    Column("unit_orgnr", String(16), primary_key=True),
)

#: The records of reads the copy served, with the content ``audit_event`` holds (and its
#: MAC, made with the deployment's audit key), until forwarded (pll.events.readcopy_audit).
copy_audit = Table(
    "copy_audit",
    copy_metadata,
    #: the order the records were written in, which is the order they are forwarded in
    Column("seq", Integer, primary_key=True, autoincrement=True),
    #: the record's id (a UUID): the store takes each id once (``audit_receipt``)
    Column("id", String(36), nullable=False, unique=True),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", String(20), nullable=False),
    Column("resource_type", String(40), nullable=False),
    Column("resource_id", String(64)),
    Column("patient_id", String(64)),
    Column("basis", String(24)),
    Column("outcome", String(2), nullable=False),
    Column("flag", String(40)),
    Column("mac", String(64), nullable=False),
    #: when the store took it; NULL until then
    Column("forwarded_at", UTCDateTime),
    Index("ix_copy_audit_forwarded", "forwarded_at", "seq"),
)

dpop_proof.to_metadata(copy_metadata)
