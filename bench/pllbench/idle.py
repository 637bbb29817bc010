"""Before a measurement, wait until the server's background work is idle (issue 20).

What a load or the previous measurement left for the background work — audit records to
seal, events and audit records the statistics consumer has not counted — would otherwise be
done during the next measurement, by the ``pll worker`` that ``pll serve`` starts, whose CPU
the CPU table counts as the server's; or beside pgbench, taking the machine from it.

- **Sealing.** The server measures with its sealer off, as pgbench seals nothing
  (``drivers.Server``); so the bench seals what waits itself (``pll audit seal``), timed.
- **Statistics.** The worker counts events every few seconds and reads the audit trail for
  emergency accesses, staying :data:`pll.services.stats.SETTLE` (30 s) behind the newest
  record; so after a measurement that wrote audit records the wait is at least that long.

The wait ends when nothing waits, or after ``limit`` seconds; either way the run goes on and
the result says which (``idle``) and how long it waited.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from pll.auth.audit import AuditKey
from pll.events import outbox
from pll.services.audit import AuditTrail
from pll.services.stats import AUDIT, CONSUMER
from pll.store import audit_log
from pll.store.db import Database
from pll.store.schema import audit_event, consumer, stats_place
from pllbench.drivers import Server


@dataclass
class Backlog:
    """What the background work has not done yet."""

    unsealed: int
    events_behind: int
    audit_behind: int

    @property
    def idle(self) -> bool:
        return not (self.unsealed or self.events_behind or self.audit_behind)


def backlog(db: Database) -> Backlog:
    """Audit records not sealed, events the statistics consumer has not counted, and audit
    records it has not read (ids between its place and the newest record)."""
    with db.read() as conn:
        unsealed, _ = audit_log.unsealed_backlog(conn, 1_000_000)
        row = conn.execute(select(consumer).where(consumer.c.name == CONSUMER)).first()
        place = outbox.position_of(row) if row is not None else outbox.START
        events, _ = outbox.lag(conn, place, datetime.now(UTC))
        newest = conn.execute(select(func.coalesce(func.max(audit_event.c.id), 0))).scalar_one()
        read = conn.execute(
            select(stats_place.c.position).where(stats_place.c.name == AUDIT)
        ).scalar()
    return Backlog(int(unsealed), int(events), max(int(newest) - int(read or 0), 0))


def _seal(db: Database, data_dir: Path) -> dict[str, float]:
    """Seal every audit record waiting, here, with the server's key (``PLL_AUDIT_KEY``, or
    the key file in its data folder, as ``pll audit seal`` would), timed."""
    trail = AuditTrail(db, AuditKey.load(data_dir), lambda: datetime.now(UTC))
    started = time.perf_counter()
    records = trail.seal()
    seconds = time.perf_counter() - started
    return {
        "records": records,
        "seconds": round(seconds, 2),
        "records_per_second": round(records / seconds) if seconds else 0,
    }


def wait_idle(server: Server, url: str, limit: float, poll: float = 1.0) -> dict[str, Any]:
    """Seal what waits, then wait until the statistics consumer has caught up (at most
    ``limit`` seconds in all); returns what to keep with the measurement."""
    started = time.perf_counter()
    db = Database(url, pool_size=1)
    sealing = None
    try:
        left = backlog(db)
        if left.unsealed:
            sealing = _seal(db, Path(server.env["PLL_DATA_DIR"]))
            left = backlog(db)
        while not left.idle and time.perf_counter() - started < limit:
            time.sleep(poll)
            left = backlog(db)
    finally:
        db.dispose()
    return {
        "idle": left.idle,
        "waited_seconds": round(time.perf_counter() - started, 1),
        "limit_seconds": limit,
        "sealed": sealing,
        "unsealed": left.unsealed,
        "statistics_events_behind": left.events_behind,
        "statistics_audit_behind": left.audit_behind,
    }


def describe(kind: str, side: str, waited: dict[str, Any]) -> str:
    """One line for the console: how long the run waited, and for what."""
    sealed = waited["sealed"]
    how = f", sealed {sealed['records']:,} audit records in {sealed['seconds']} s" if sealed else ""
    took = waited["waited_seconds"]
    if waited["idle"]:
        return f"{kind}: background idle before the {side} run, waited {took} s{how}"
    return (
        f"[yellow]{kind}: background still busy after {took} s before the "
        f"{side} run (unsealed {waited['unsealed']:,}, statistics behind by "
        f"{waited['statistics_events_behind']:,} events and {waited['statistics_audit_behind']:,} "
        f"audit records){how}; measuring anyway[/]"
    )
