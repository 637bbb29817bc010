"""The current-list read, answered on the event loop where the database allows it.

This is the request PLL serves most (DESIGN §6: "a read is one keyed lookup plus its audit
row"). On PostgreSQL it is one statement through :class:`~pll.store.audited_read.
AuditedListReader`; on SQLite, or when the stored document has expired, it is
:meth:`PLLService.current` in a worker thread. The rules are the same either way: the
patient reads only their own list, and every answered read leaves its audit row.
"""

from __future__ import annotations

from functools import partial

import anyio.to_thread

from pll.auth.access import Access
from pll.services.lists import PLLService, Stored, read_key
from pll.store.audited_read import AuditedListReader
from pll.store.repository import actor_json


class ListReads:
    """Current-list reads for the HTTP edge."""

    def __init__(self, service: PLLService) -> None:
        self.service = service
        db = service.db
        self.fast = None if db.is_sqlite else AuditedListReader(db.libpq_url())

    async def current(
        self,
        access: Access,
        *,
        list_id: str | None = None,
        patient_id: str | None = None,
        identifier: tuple[str | None, str] | None = None,
        document: bool = False,
    ) -> Stored | None:
        slow = partial(
            self.service.current,
            access,
            list_id=list_id,
            patient_id=patient_id,
            identifier=identifier,
            document=document,
        )
        if self.fast is None:
            return await anyio.to_thread.run_sync(slow)
        key, value, system = read_key(access, list_id, patient_id, identifier)
        now = self.service.clock()
        row = await self.fast.read(
            key,
            value,
            document=document,
            actor=actor_json(access.actor),
            now=now,
            system=system,
            pid=access.actor.pid if access.needs_identity_check else None,
            check=access.needs_identity_check,
        )
        if row is None:
            return None
        access.check_read(row.identifier_value)
        if row.expired(now):
            # Not logged yet: the slow path lets the old entries go, then reads and logs.
            return await anyio.to_thread.run_sync(slow)
        return Stored(row.text, row.version, row.updated, row.patient_id)

    async def close(self) -> None:
        if self.fast is not None:
            await self.fast.close()
