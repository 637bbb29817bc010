"""The DPoP proofs already accepted, kept where every server process sees them.

RFC 9449 §11.1 asks a server to accept each proof once. A cache in memory does that for one
process only: behind ``pll serve --workers 2``, or several machines behind a load balancer,
a replayed proof reaches a process that has never seen it. :class:`AcceptedProofs` keeps the
accepted proofs in the ``dpop_proof`` table instead, keyed by the digest that
:class:`pll.auth.dpop.DPoPVerifier` makes of the key thumbprint and ``jti``, and lets the
primary key decide: of any number of processes recording the same digest at once, exactly
one inserts the row and accepts the proof.

Each proof costs one statement, autocommitted, on a small connection pool of its own:

* PostgreSQL: ``INSERT ... ON CONFLICT DO NOTHING`` that also sets ``synchronous_commit``
  off for its own transaction, so it costs one round trip and does not wait for the WAL to
  reach disk. The row is visible to every other session as soon as it is committed. A
  request that changes or reads patient data commits its change or audit record later,
  synchronously, and the WAL is flushed in order: its proof is durable with it. A request
  that commits nothing afterwards (refused as bad input, say) may lose its proof's row in a
  crash within the moment before the WAL reaches disk, and its proof could then be
  accepted once more, for as long as it is fresh (``iat`` within the verifier's window):
  harmless, as the first use changed nothing.
* SQLite: the same insert on connections with ``synchronous=NORMAL`` (WAL mode), for the
  same reason: the next fully synchronous commit, the request's own, makes it durable, and
  the same holds for requests that commit nothing.

A row stays until its proof has been too old to be accepted for :attr:`CLOCK_MARGIN` more
seconds (for servers whose clocks differ a little), and is then deleted in bounded batches,
at most once every :attr:`PRUNE_INTERVAL` seconds per process.
"""

from __future__ import annotations

import logging
import threading
import weakref
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from pll.store.db import normalise_url
from pll.store.schema import dpop_proof

log = logging.getLogger("pll.store")

# Sent as they stand (exec_driver_sql), which saves SQLAlchemy's statement handling, a
# quarter of the insert's cost; the parameters are what the schema's types would bind.
_INSERT_SQLITE = (
    "INSERT INTO dpop_proof (digest, expires_at) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING"
)
_INSERT_POSTGRESQL = (
    "INSERT INTO dpop_proof (digest, expires_at) SELECT %s::bytea, %s::timestamp "
    # set_config(..., true) is SET LOCAL: it holds for this statement's own transaction
    "WHERE set_config('synchronous_commit', 'off', true) = 'off' "
    "ON CONFLICT (digest) DO NOTHING"
)
#: How SQLAlchemy keeps a DateTime in SQLite, so that prune's comparisons hold.
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # as pll.store.db keeps it; NORMAL needs WAL
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class AcceptedProofs:
    """The shared record of accepted DPoP proofs: one row per proof, for as long as it
    could be accepted (the ``ReplayStore`` that :class:`pll.auth.dpop.DPoPVerifier` takes)."""

    #: Seconds a row outlives its proof's acceptance window: servers' clocks may differ by
    #: up to this much before one of them forgets a proof that another still accepts.
    CLOCK_MARGIN = 60.0
    #: Seconds between prunes in one process, and the most rows one prune deletes.
    PRUNE_INTERVAL = 1.0
    PRUNE_BATCH = 5_000

    def __init__(self, url: str, *, pool_size: int = 4) -> None:
        url = normalise_url(url)
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine: Engine = create_engine(
                url,
                isolation_level="AUTOCOMMIT",
                connect_args={"check_same_thread": False, "timeout": 30},
            )
            event.listen(self.engine, "connect", _sqlite_on_connect)
        else:
            self.engine = create_engine(
                url, isolation_level="AUTOCOMMIT", pool_size=pool_size, max_overflow=pool_size
            )
        self._insert = _INSERT_SQLITE if self.is_sqlite else _INSERT_POSTGRESQL
        self._next_prune = float("-inf")
        self._lock = threading.Lock()
        # The record lives as long as the server that made it; its connections are closed
        # when it goes, not left for the garbage collector to drop unclosed.
        weakref.finalize(self, self.engine.dispose)

    def remember(self, digest: bytes, expires: float, now: float) -> bool:
        """Record the proof ``digest``, acceptable until ``expires`` (seconds since the
        epoch): True if this call recorded it, False if it was recorded before. Raises
        :class:`sqlalchemy.exc.SQLAlchemyError` when the database cannot say, and the proof
        must then be refused."""
        # naive UTC, as the schema's UTCDateTime keeps it
        naive = datetime.fromtimestamp(expires, UTC).replace(tzinfo=None)
        moment = naive.strftime(_SQLITE_DATETIME) if self.is_sqlite else naive
        with self.engine.connect() as conn:
            new = conn.exec_driver_sql(self._insert, (digest, moment)).rowcount == 1
        self._prune_if_due(now)
        return new

    def prune(self, now: float) -> int:
        """Delete up to :attr:`PRUNE_BATCH` rows whose proofs have been too old for
        :attr:`CLOCK_MARGIN` seconds at ``now``; the number deleted."""
        cutoff = datetime.fromtimestamp(now - self.CLOCK_MARGIN, UTC)
        # a bounded batch, and on PostgreSQL rows another process is deleting are left to it
        old = (
            select(dpop_proof.c.digest)
            .where(dpop_proof.c.expires_at < cutoff)
            .limit(self.PRUNE_BATCH)
            .with_for_update(skip_locked=True)
        )
        with self.engine.connect() as conn:
            return conn.execute(delete(dpop_proof).where(dpop_proof.c.digest.in_(old))).rowcount

    def _prune_if_due(self, now: float) -> None:
        with self._lock:
            if now < self._next_prune:
                return
            self._next_prune = now + self.PRUNE_INTERVAL
        try:
            deleted = self.prune(now)
        except SQLAlchemyError as exc:  # housekeeping: the proof is decided already
            log.warning("could not prune old DPoP proofs: %s", exc)
            return
        if deleted >= self.PRUNE_BATCH:
            with self._lock:
                self._next_prune = now  # more are waiting: again with the next proof

    def dispose(self) -> None:
        self.engine.dispose()
