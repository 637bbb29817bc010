"""The read copy's own audit records, and their forwarding to the store's audit trail.

Every read the copy serves or refuses leaves a record (DESIGN §3 rule 5) with the content
the store's trail would hold — actor, action ``read-copy``, the List, the patient, the
basis, the outcome, the flag, and the MAC made with the deployment's audit key
(:func:`pll.services.audit.audit_record`) — written to the copy's own database before the
answer goes out, so a read needs no store.

:meth:`CopyAudit.forward` sends the records not yet sent to the store, oldest first, and
marks them sent. The store takes each record once, by its id
(:mod:`pll.store.audit_receipts`): a crash between the store's commit and the mark sends the
batch again, and nothing is appended twice. The records join ``audit_event`` as any other;
the store's sealer links them into the chain, so ``pll audit verify`` checks them as every
record. A sent record stays in the copy for :data:`KEEP`, then goes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from pll.events.readcopy_schema import copy_audit
from pll.store import audit_receipts
from pll.store.db import Database

#: How long a record stays in the copy after the store took it, and how often the records
#: past that are deleted.
KEEP = timedelta(days=30)
PRUNE_EVERY = timedelta(hours=1)


def append(conn: Connection, record: dict[str, Any]) -> str:
    """Keep one record (as :func:`pll.services.audit.audit_record` makes it) in the
    copy's transaction ``conn``; returns the id it is forwarded by."""
    record_id = str(uuid.uuid4())
    conn.execute(insert(copy_audit).values(id=record_id, **record))
    return record_id


class CopyAudit:
    """The copy's records (in ``copy``) and the store's trail (in ``store``) they go to."""

    def __init__(self, copy: Database, store: Database, clock: Callable[[], datetime]) -> None:
        self.copy, self.store, self.clock = copy, store, clock
        self._next_prune: datetime | None = None

    def forward(self, batch: int = 500) -> int:
        """Send every record not sent yet to the store's trail, in batches of ``batch``,
        each in one transaction of the store; returns how many were sent (the store
        appended those it had not taken before). Raises when the store cannot be reached:
        what was not sent is sent the next time."""
        sent = 0
        while True:
            with self.copy.read() as conn:
                rows = conn.execute(
                    select(copy_audit)
                    .where(copy_audit.c.forwarded_at.is_(None))
                    .order_by(copy_audit.c.seq)
                    .limit(batch)
                ).all()
            if not rows:
                break
            now = self.clock()
            with self.store.write() as conn:
                audit_receipts.receive(conn, [dict(r._mapping) for r in rows], now)
            # a crash here sends the batch again; the store passes over what it has
            with self.copy.write() as conn:
                conn.execute(
                    update(copy_audit)
                    .where(copy_audit.c.seq.in_([r.seq for r in rows]))
                    .values(forwarded_at=now)
                )
            sent += len(rows)
        now = self.clock()
        if self._next_prune is None or now >= self._next_prune:
            # once an hour: ``run`` calls this several times a second
            with self.copy.write() as conn:
                conn.execute(delete(copy_audit).where(copy_audit.c.forwarded_at < now - KEEP))
            self._next_prune = now + PRUNE_EVERY
        return sent

    def waiting(self) -> tuple[int, float]:
        """How many records wait to be sent, and how old the oldest is in seconds (0 when
        none waits): an age that grows says the store has been away that long."""
        with self.copy.read() as conn:
            count, oldest = conn.execute(
                select(func.count(), func.min(copy_audit.c.recorded_at)).where(
                    copy_audit.c.forwarded_at.is_(None)
                )
            ).one()
        if not count:
            return 0, 0.0
        return int(count), max((self.clock() - oldest).total_seconds(), 0.0)
