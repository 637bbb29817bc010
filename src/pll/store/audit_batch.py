"""Group commit of audit rows on PostgreSQL: many reads' records in one INSERT and one COMMIT.

An audited read on PostgreSQL is capped by its commit, not by its lookup (DESIGN §6): one
commit — a WAL flush — per read. Here the reads of one server process hand their audit rows
to an :class:`AuditBatcher`, which writes the rows of concurrent reads in one multi-row
``INSERT`` (one statement over ``unnest`` of one array per column, so it is prepared once
whatever the batch's size) in autocommit mode: one commit for the whole batch. Each read
waits until the batch holding its row has committed (rule 5: the row is durable before the
answer); a failed batch fails every read in it (:class:`AuditNotWritten`) and none of them is
answered. Issue 20's moonshot.

When a batch is flushed:

- at once (on the next turn of the event loop, so rows of the same turn go together) when no
  batch of this process is being written — an idle server adds no wait;
- when the batch in flight has committed, if rows are waiting (they arrived meanwhile: the
  busier the server, the larger the batch, as with PostgreSQL's own group commit);
- when the batch holds ``max_rows`` rows;
- ``max_wait`` seconds after its first row, whatever else is in flight (the bound on the
  wait). The timer exists only while rows wait.

The rows are whole audit records with their MACs, computed by the caller exactly as any
other writer computes them (:func:`pll.auth.audit.canonical`): the sealer, ``pll audit verify``
and the patient's access log cannot tell them from others. The INSERT names its columns and
lets the table fill ``id``, so it works on a plain or a partitioned ``audit_event``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pll.store.statement_pool import StatementPool

#: The batch INSERT; ``$n`` is an array per column, one element per row.
INSERT = """
INSERT INTO audit_event (recorded_at, actor, action, resource_type, resource_id, patient_id,
                         basis, outcome, flag, mac)
SELECT * FROM unnest(%(recorded_at)s::timestamp[], %(actor)s::text[], %(action)s::text[],
                     %(resource_type)s::text[], %(resource_id)s::text[], %(patient_id)s::text[],
                     %(basis)s::text[], %(outcome)s::text[], %(flag)s::text[], %(mac)s::text[])
"""
#: The column order of :data:`INSERT`'s parameters (and of :class:`AuditRow`).
COLUMNS = (
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
_POSITIONAL = INSERT
for _i, _name in enumerate(COLUMNS, start=1):
    _POSITIONAL = _POSITIONAL.replace(f"%({_name})s", f"${_i}")


@dataclass(frozen=True)
class GroupCommit:
    """How audit rows are batched (``PLL_AUDIT_BATCH_ROWS``, ``PLL_AUDIT_BATCH_WAIT_MS``)."""

    #: a batch is written as soon as it holds this many rows
    max_rows: int = 64
    #: and at the latest this many seconds after its first row arrived
    max_wait: float = 0.001


@dataclass(frozen=True)
class AuditRow:
    """One ``audit_event`` row as written: ``recorded_at`` naive UTC, ``mac`` its HMAC."""

    recorded_at: datetime
    actor: str
    action: str
    resource_type: str
    resource_id: str | None
    patient_id: str | None
    basis: str | None
    outcome: str
    flag: str | None
    mac: str


class AuditNotWritten(Exception):
    """The batch holding this read's audit row was not committed: the read must not be
    answered (rule 5)."""


def columns(rows: Sequence[AuditRow]) -> list[list[object]]:
    """The INSERT's parameters: one list per column of :data:`COLUMNS`."""
    return [[getattr(row, name) for row in rows] for name in COLUMNS]


@dataclass
class BatchCounts:
    """What a batcher has written, for the benchmark's faithful pgbench script."""

    rows: int = 0
    batches: int = 0
    failed: int = 0
    #: reads that were alone in their process and so ran as the one statement
    #: (:class:`pll.store.audited_read.AuditedListReader`)
    alone: int = 0


class AuditBatcher:
    """Collects the audit rows of one event loop's concurrent reads and commits them together.

    Belongs to one event loop and one statement pool (a server process has one of each).
    """

    def __init__(self, pool: StatementPool, config: GroupCommit) -> None:
        self._pool = pool
        self._config = config
        self._rows: list[AuditRow] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._soon: asyncio.Handle | None = None
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.counts = BatchCounts()

    async def write(self, row: AuditRow) -> None:
        """Return once ``row`` is committed; raise :class:`AuditNotWritten` if its batch
        failed."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._rows.append(row)
        self._waiters.append(waiter)
        if len(self._rows) >= self._config.max_rows:
            self._flush()
        elif self._in_flight == 0:
            if self._soon is None:
                # this turn's other rows join; nothing else to wait for
                self._soon = loop.call_soon(self._flush)
        elif self._timer is None:
            self._timer = loop.call_later(self._config.max_wait, self._flush)
        await waiter

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None
        if not self._rows:
            return
        rows, waiters = self._rows, self._waiters
        self._rows, self._waiters = [], []
        self._in_flight += 1
        task = asyncio.get_running_loop().create_task(self._commit(rows, waiters))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _commit(self, rows: list[AuditRow], waiters: list[asyncio.Future[None]]) -> None:
        try:
            # autocommit: the INSERT is its own transaction, committed when execute returns
            await self._pool.execute(_POSITIONAL, *columns(rows))
        except BaseException as exc:  # a cancelled flush did not commit either
            self.counts.failed += 1
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(AuditNotWritten(f"audit batch of {len(rows)} failed"))
            if not isinstance(exc, Exception):
                raise
        else:
            self.counts.rows += len(rows)
            self.counts.batches += 1
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        finally:
            self._in_flight -= 1
            if self._rows and self._in_flight == 0:
                # the rows that came while this batch was written go now
                self._flush()

    async def close(self) -> None:
        """Write what waits and let the batches in flight finish."""
        self._flush()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
