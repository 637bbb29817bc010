"""What others are told of changes: the outbox each change writes its event to, in the
change's own transaction, each consumer's place in it, and the FHIR Subscriptions that
deliver the events.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, FetchedValue, Index, Integer, String, Table, Text, text

from pll.store.schema.base import ID, BigId, UTCDateTime, metadata

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("patient_id", String(ID), nullable=False),
    Column("list_id", String(ID), nullable=False),
    Column("list_version", Integer, nullable=False),
    Column("kind", String(60), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("payload", Text, nullable=False),
    #: where the event stands among the writing transactions, filled in by PostgreSQL
    #: (migration 0022; pll.store.repository.add_event); 0 on SQLite and for events written
    #: before. Consumers read in ``(tx, id)`` order (pll.events.outbox).
    Column("tx", BigInteger, nullable=False, server_default=FetchedValue()),
    Index("ix_outbox_tx_id", "tx", "id"),
)

#: FHIR R4 Subscriptions (rest-hook, Subscriptions Backport style): who is told of changes.
subscription = Table(
    "subscription",
    metadata,
    Column("id", String(ID), primary_key=True),
    #: requested, active, error or off (FHIR Subscription.status)
    Column("status", String(16), nullable=False),
    Column("criteria", String(200), nullable=False),
    #: the patient the criteria names (List?patient=<id>); NULL for every patient
    Column("patient_id", String(ID)),
    Column("endpoint", Text, nullable=False),
    #: the key payloads are signed with (HMAC-SHA256), given by the subscriber
    Column("secret", Text, nullable=False),
    Column("owner", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("resource", Text, nullable=False),
)

#: Each consumer's place in the outbox (the ``(tx, id)`` of the last event it has had), so
#: every consumer gets every event in order, at least once, at its own pace.
consumer = Table(
    "consumer",
    metadata,
    Column("name", String(100), primary_key=True),
    #: the outbox id of the last event it has had
    Column("position", BigInteger, nullable=False),
    #: and that event's ``tx`` (migration 0022; 0 for places made before)
    Column("position_tx", BigInteger, nullable=False, server_default=text("0")),
    Column("attempts", Integer, nullable=False),
    Column("next_try_at", UTCDateTime),
    Column("last_error", Text),
    Column("updated_at", UTCDateTime, nullable=False),
    #: when its deliveries began to fail, until one succeeds again (migration 0020)
    Column("failing_since", UTCDateTime),
)
