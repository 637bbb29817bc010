"""A bulk load and the processes that serve never run on one PostgreSQL database at once.

A bulk import into empty tables drops their keys and indexes until it ends
(:func:`pll.store.bulk.defer_indexes`); a server running meanwhile would go on without them
(two registrations of one patient at the same moment would both be kept), and its requests
would wait behind the load. So (issue 20):

* every ``pll serve``, and every ``pll worker`` started on its own, holds for its whole
  life a shared advisory lock on a connection of its own (:class:`Serving`); it and its
  children (request workers, the worker ``pll serve`` starts, which dies with it) name
  themselves to PostgreSQL: ``application_name`` ``pll-serve …`` / ``pll-worker …`` on every
  connection they open (``PGAPPNAME``, which libpq reads);
* ``pll import`` takes the same lock exclusively, without waiting, and holds it until it
  ends (:func:`loading`). It refuses — before it changes anything — while any server holds
  the lock or any connection of a server is open, and names them; a server started while
  an import holds it refuses to start (:class:`LoadRunning`).

The lock is the guarantee (it is released only when its process or connection ends); the
names are what the refusal says, and they still show a server's request workers whose
``pll serve`` was killed, or a server whose lock connection PostgreSQL lost in a restart.
Nothing here applies to SQLite: a load there drops no key, and SQLite has one writer.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

#: the advisory lock (two-integer key): shared by servers and workers, exclusive for a load
_KEY = "7004, 1"
#: the names serving processes give their connections; an import's are named too
SERVE, WORKER, IMPORT = "pll-serve", "pll-worker", "pll-import"

#: the sessions that use the database as servers: named as one, or holding the lock (any
#: mode: another import holds it exclusively); or, with ``only_loads``, holding it exclusively
_HOLDERS = """
    SELECT a.application_name, host(a.client_addr), a.backend_start
    FROM pg_stat_activity a
    WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND ({which})
    ORDER BY a.backend_start
"""
_LOCKED = """a.pid IN (
    SELECT l.pid FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted AND {mode}
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND (l.classid, l.objid, l.objsubid) = (7004, 1, 2))"""
_SERVERS = text(
    _HOLDERS.format(
        which=f"a.application_name LIKE '{SERVE}%' OR a.application_name LIKE '{WORKER}%' OR "
        + _LOCKED.format(mode="true")
    )
)
_LOADS = text(_HOLDERS.format(which=_LOCKED.format(mode="l.mode = 'ExclusiveLock'")))


class LoadRefused(RuntimeError):
    """``pll import`` may not load now: servers or workers use the database."""


class LoadRunning(RuntimeError):
    """A server may not start now: a bulk import is loading into the database."""


def application_name(role: str) -> str:
    """What a process of ``role`` calls itself to PostgreSQL: its role, process id and
    host, so a refusal can say which process to stop (at most 63 bytes, PostgreSQL's
    limit)."""
    return f"{role} pid={os.getpid()} host={socket.gethostname()}"[:63]


def name_connections(role: str) -> None:
    """Give every PostgreSQL connection this process and its children open from now on the
    name of ``role`` (libpq reads ``PGAPPNAME``)."""
    os.environ["PGAPPNAME"] = application_name(role)


def _describe(rows: list[tuple[str, str | None, object]]) -> str:
    seen: dict[str, int] = {}
    for name, client, _ in rows:
        what = name or "a connection holding the serving lock"
        if client:
            what += f" from {client}"
        seen[what] = seen.get(what, 0) + 1
    return "; ".join(f"{what} ({n} connection{'s' if n > 1 else ''})" for what, n in seen.items())


def _connect(url: str, role: str) -> tuple[Engine, Connection]:
    engine = create_engine(
        url, poolclass=NullPool, connect_args={"application_name": application_name(role)}
    )
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    return engine, conn


@contextmanager
def loading(engine: Engine) -> Iterator[None]:
    """Hold the load's lock for the block (PostgreSQL; SQLite: nothing to hold), or raise
    :class:`LoadRefused` naming the servers and workers that use the database."""
    if engine.dialect.name != "postgresql":
        yield
        return
    url = engine.url.render_as_string(hide_password=False)
    own, conn = _connect(url, IMPORT)
    try:
        got = conn.execute(text(f"SELECT pg_try_advisory_lock({_KEY})")).scalar_one()
        servers = [(r[0], r[1], r[2]) for r in conn.execute(_SERVERS)]
        if not got or servers:
            found = _describe(servers) if servers else "another bulk import"
            raise LoadRefused(
                "a bulk import drops the keys of the tables it loads, so it does not run "
                "beside PLL servers and workers on the same database; connected now: "
                f"{found}. Stop every `pll serve` and `pll worker` on this database (or wait "
                "for the other import), run the import, then start them again."
            )
        yield
    finally:
        conn.close()
        own.dispose()


@dataclass
class Serving:
    """The serving lock of one ``pll serve`` or ``pll worker`` process (see the module):
    taken by :meth:`take`, held until :meth:`release` or the process ends."""

    engine: Engine
    conn: Connection

    @classmethod
    def take(cls, url: str, role: str) -> Serving | None:
        """Name this process's connections, and take the shared lock (PostgreSQL; ``None``
        on SQLite); raises :class:`LoadRunning` while a bulk import holds the lock."""
        if not url.startswith("postgresql"):
            return None
        name_connections(role)
        engine, conn = _connect(url, role)
        got = conn.execute(text(f"SELECT pg_try_advisory_lock_shared({_KEY})")).scalar_one()
        if not got:
            holders = _describe([(r[0], r[1], r[2]) for r in conn.execute(_LOADS)])
            conn.close()
            engine.dispose()
            raise LoadRunning(
                f"a bulk import (pll import) is loading into this database ({holders}); PLL "
                "does not serve a database while its keys may be dropped. Start again when "
                "the import has ended."
            )
        return cls(engine, conn)

    def release(self) -> None:
        self.conn.close()
        self.engine.dispose()
