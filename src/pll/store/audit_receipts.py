"""Audit records that come from the read copy: each appended to the trail once.

The read copy keeps the records of the reads it serves in its own database and forwards
them (:mod:`pll.events.readcopy_audit`). A record carries the id the read copy gave it; the
receipt of that id (``audit_receipt``, migration 0026) is written in the transaction that
appends the record, so a record sent again — the read copy crashed after the store took the
batch and before it marked it sent — finds its receipt and is passed over. Two forwarders
sending one record at once: the second waits on the first's receipt and then passes it over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from pll.store import audit_log
from pll.store.schema import audit_receipt

#: what of a forwarded record goes into ``audit_event``: every column but the seal, which
#: the store's sealer adds (the MAC is the read copy's, made with the deployment's key)
FIELDS = (
    "recorded_at",
    "actor",
    "action",
    "resource_type",
    "resource_id",
    "patient_id",
    "basis",
    "outcome",
    "flag",
    "mac",
)


def receive(conn: Connection, records: Iterable[Mapping[str, Any]], now: datetime) -> int:
    """Append each record (``id`` and :data:`FIELDS`) whose id has no receipt yet, with its
    receipt, in the caller's transaction; returns how many were new."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    new = 0
    for record in records:
        # RETURNING, not the row count: PostgreSQL's driver gives none for ON CONFLICT here
        taken = conn.execute(
            dialect.insert(audit_receipt)
            .values(record_id=record["id"], received_at=now)
            .on_conflict_do_nothing()
            .returning(audit_receipt.c.record_id)
        ).first()
        if taken is not None:
            audit_log.append(conn, {name: record[name] for name in FIELDS})
            new += 1
    return new
