"""Who did what to whose data, and who may: the audit trail (its records, the head of the
sealed chain, the records a read copy forwarded), a patient's blocks on named health
workers, and registered proxies.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from pll.store.schema.base import ID, BigId, UTCDateTime, metadata

#: One row per access to patient data (DESIGN §3 rule 5). As declared here on SQLite. On
#: PostgreSQL (migration 0023, issue 20) it is partitioned by month of ``recorded_at``
#: (``pll.store.audit_partitions``): the primary key is ``(id, recorded_at)`` and
#: ``uq_audit_event_chain_seq`` is one unique index on ``chain_seq`` per partition, as a
#: partitioned table's unique index must hold the partition key.
audit_event = Table(
    "audit_event",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", String(20), nullable=False),
    Column("resource_type", String(40), nullable=False),
    Column("resource_id", String(ID)),
    Column("patient_id", String(ID)),
    #: the access basis a health worker stated (HPAKUTT, ...), see pll.auth.access
    Column("basis", String(24)),
    #: FHIR AuditEvent.outcome: 0 success, 4 refused
    Column("outcome", String(2), nullable=False, server_default="0"),
    #: for follow-up, such as a blocked worker's emergency access
    Column("flag", String(40)),
    #: HMAC of the record (pll.auth.audit); NULL only for records from before 0002
    Column("mac", String(64)),
    #: the record's place in the sealed chain and the chain hash there; NULL until sealed
    Column("chain_seq", BigInteger),
    Column("chain_hash", String(64)),
    UniqueConstraint("chain_seq", name="uq_audit_event_chain_seq"),
    Index("ix_audit_patient", "patient_id", "recorded_at"),
    Index(
        "ix_audit_unsealed",
        "id",
        postgresql_where=text("chain_seq IS NULL"),
        sqlite_where=text("chain_seq IS NULL"),
    ),
)

#: The head of the sealed audit chain (one row).
audit_chain = Table(
    "audit_chain",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    #: records up to this id, this many, were written before records carried a MAC
    Column("legacy_upto", BigInteger, nullable=False),
    Column("legacy_count", BigInteger, nullable=False),
)

#: The audit records forwarded by a read copy (migration 0026): each by the id the read copy
#: gave it, so a record sent again after a crash between its sending and its marking is
#: taken once (pll.store.audit_receipts). The record itself joins ``audit_event``.
audit_receipt = Table(
    "audit_receipt",
    metadata,
    #: the read copy's id of the record (a UUID)
    Column("record_id", String(36), primary_key=True),
    Column("received_at", UTCDateTime, nullable=False),
)

#: A patient's block on a named health worker (a FHIR Consent with a deny provision).
access_block = Table(
    "access_block",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("patient_id", String(ID), ForeignKey("patient.id"), nullable=False),
    Column("hpr", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Column("resource", Text, nullable=False),
    Index("ix_block_patient_hpr", "patient_id", "hpr"),
)

#: A registered proxy (fullmakt): ``holder`` may act for the patient ``patient_identifier``.
proxy = Table(
    "proxy",
    metadata,
    Column("holder", String(32), primary_key=True),
    Column("patient_identifier", String(32), primary_key=True),
    Column("registered_at", UTCDateTime, nullable=False),
)
