"""The current-list read, answered on the event loop where the database allows it.

This is the request PLL serves most (DESIGN §6: "a read is one keyed lookup plus its audit
row"). On PostgreSQL the common case — an admitted read of a current document — is one
statement through :class:`~pll.store.audited_read.AuditedListReader`, which applies the
caller's compiled read rule. Everything else (SQLite, a refusal to explain and log, an
expired document, a patient naming another person) is :meth:`PLLService.current` in a
worker thread. The rules are the same either way.

With read replicas (``PLL_READ_DATABASE_URL``, :mod:`pll.store.replicas`) the admitted read
of a current document is served by a replica when one serves and its copy is at least the
version the client last saw (``min_version``: ``X-PLL-Min-Version`` or ``If-None-Match``);
the audit record and the access facts stay on the primary, and every other case above is
the primary's as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import anyio.to_thread

from pll.auth.access import Access
from pll.domain.errors import Unavailable
from pll.services.base import Stored
from pll.services.lists import PLLService, read_key
from pll.store.audit_batch import AuditNotWritten, GroupCommit
from pll.store.audited_read import AuditedListReader
from pll.store.replicas import ReplicaSet


@dataclass(frozen=True)
class CurrentList:
    """A current List or list document as stored: UTF-8 JSON, answered as it is."""

    body: bytes
    version: int
    updated: datetime
    patient_id: str

    @classmethod
    def of(cls, stored: Stored) -> CurrentList:
        return cls(stored.text.encode(), stored.version, stored.updated, stored.patient_id)


class ListReads:
    """Current-list reads for the HTTP edge."""

    def __init__(
        self,
        service: PLLService,
        group_commit: GroupCommit | None = None,
        replicas: ReplicaSet | None = None,
    ) -> None:
        """``group_commit``: on PostgreSQL, commit the audit rows of concurrent reads
        together (:mod:`pll.store.audit_batch`) instead of one statement per read.
        ``replicas``: the read replicas that may serve these reads (PostgreSQL only)."""
        self.service = service
        db = service.db
        if replicas is not None and db.is_sqlite:
            raise ValueError("Read replicas (PLL_READ_DATABASE_URL) need PostgreSQL.")
        self.replicas = replicas
        self.fast = (
            None
            if db.is_sqlite
            else AuditedListReader(db.libpq_url(), group_commit=group_commit, replicas=replicas)
        )
        self._key = service.trail.key

    def start(self) -> None:
        """Start checking the replicas' lag (in the serving process, after any fork)."""
        if self.replicas is not None:
            self.replicas.start()

    async def current(
        self,
        access: Access,
        *,
        list_id: str | None = None,
        patient_id: str | None = None,
        identifier: tuple[str | None, str] | None = None,
        document: bool = False,
        min_version: int | None = None,
    ) -> CurrentList | None:
        """The current List (or list document), logged. ``min_version``: the list version
        the client last wrote or read; a replica whose copy is older does not serve it."""
        slow = partial(
            self.service.current,
            access,
            list_id=list_id,
            patient_id=patient_id,
            identifier=identifier,
            document=document,
        )
        rule = access.read_rule()
        if self.fast is None or rule is None:
            return await self._general(slow)
        key, value, system = read_key(list_id, patient_id, identifier)
        if key == "identifier" and access.is_patient and value != access.actor.pid:
            # A proxy's read: the person named is checked before any lookup (see current).
            return await self._general(slow)
        now = self.service.clock()
        try:
            row = await self.fast.read(
                key,
                value,
                document=document,
                system=system,
                now=now,
                actor=self.service.trail.actor(access),
                basis=access.basis.value if access.basis else None,
                rule=rule,
                audit_key=self._key,
                min_version=min_version,
            )
        except AuditNotWritten:
            # rule 5: no answer without its record
            raise Unavailable(
                "The read could not be logged, so it is not answered; try again shortly.",
                "List",
            ) from None
        if row is None:
            return None
        if not row.admitted or row.expired(now):
            # Not logged yet: the general path refuses and logs why, or lets the old
            # entries go, then reads and logs.
            return await self._general(slow)
        return CurrentList(row.body, row.version, row.updated, row.patient_id)

    @staticmethod
    async def _general(read: Callable[[], Stored | None]) -> CurrentList | None:
        """The service's read, in a worker thread."""
        stored = await anyio.to_thread.run_sync(read)
        return None if stored is None else CurrentList.of(stored)

    async def close(self) -> None:
        if self.fast is not None:
            await self.fast.close()
        if self.replicas is not None:
            await anyio.to_thread.run_sync(self.replicas.stop)
