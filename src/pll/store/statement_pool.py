"""A few asyncpg connections for one-statement work on the event loop (the hot read and the
group commit's INSERT, :mod:`pll.store.audited_read`).

Why not ``asyncpg.Pool``: each statement here holds its connection for one round trip, and
the pool's acquire and release machinery (a queue, a timeout, a shielded release task per
use) cost more Python than the statement's own round trip: measured on this project's
machine, 16 tasks running ``SELECT 1`` on 8 connections took ~60 µs of user CPU per
statement through ``asyncpg.Pool`` and ~14 µs through this pool (issue 20). What this pool
does not do, nothing here needs: no session state to reset (the statements leave none), no
transactions held across awaits, no connection setup hooks.

A connection whose statement failed in any way (an error, a lost server, a cancelled task)
is closed, never reused: it may be mid-statement. The next statement opens a new one. After a
failover, :meth:`StatementPool.expire_connections` has every connection replaced.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import asyncpg


class NoConnection(OSError):
    """No connection could be made (the server is down or refuses, the connection timed
    out, no host of the URL is the primary); the cause is asyncpg's error."""


class StatementPool:
    """Up to ``size`` connections to ``dsn`` (asyncpg's form; several hosts allowed), opened
    when first needed within ``connect_timeout`` seconds; one statement at a time each, each
    given ``command_timeout`` seconds (``None``: no limit). Belongs to the event loop it is
    first used on."""

    def __init__(
        self,
        dsn: str,
        size: int,
        *,
        connect_timeout: float = 60.0,
        command_timeout: float | None = None,
    ) -> None:
        self._dsn = dsn
        self._size = size
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._idle: deque[asyncpg.Connection] = deque()
        #: the generation each connection was opened in (:meth:`expire_connections`)
        self._born: dict[asyncpg.Connection, int] = {}
        self._generation = 0
        #: tasks waiting for a connection; given one, or ``None`` to open one themselves
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._open = 0  # connections open or being opened
        self._closed = False

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """The first row of ``sql`` (a prepared statement, cached per connection), in
        autocommit mode: written rows are committed when this returns."""
        conn = self._idle.pop() if self._idle else await self._connection()
        try:
            row: asyncpg.Record | None = await conn.fetchrow(sql, *args)
        except BaseException:
            self._discard(conn)
            raise
        self._give_back(conn)
        return row

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """The first column of the first row of ``sql``, in autocommit mode."""
        conn = self._idle.pop() if self._idle else await self._connection()
        try:
            value = await conn.fetchval(sql, *args)
        except BaseException:
            self._discard(conn)
            raise
        self._give_back(conn)
        return value

    async def execute(self, sql: str, *args: Any) -> None:
        """Run ``sql`` in autocommit mode: committed when this returns."""
        conn = self._idle.pop() if self._idle else await self._connection()
        try:
            await conn.execute(sql, *args)
        except BaseException:
            self._discard(conn)
            raise
        self._give_back(conn)

    async def _connection(self) -> asyncpg.Connection:
        if self._closed:
            raise asyncpg.InterfaceError("the statement pool is closed")
        if self._open >= self._size:
            waiter: asyncio.Future[asyncpg.Connection | None]
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                given = await waiter
            except BaseException:
                # cancelled after a connection was handed over: pass it on
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    handed = waiter.result()
                    if handed is not None:
                        self._give_back(handed)
                    else:
                        self._open -= 1
                        self._wake_one()
                raise
            if given is not None:
                return given
            # a connection was closed: its place is this task's to fill
        else:
            self._open += 1
        generation = self._generation
        try:
            conn: asyncpg.Connection = await asyncpg.connect(
                self._dsn, timeout=self._connect_timeout, command_timeout=self._command_timeout
            )
        except BaseException as exc:
            self._open -= 1
            self._wake_one()
            if isinstance(exc, Exception):
                raise NoConnection(f"no connection: {type(exc).__name__}: {exc}") from exc
            raise
        self._born[conn] = generation
        return conn

    def _give_back(self, conn: asyncpg.Connection) -> None:
        if self._closed or self._born.get(conn) != self._generation:
            self._discard(conn)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    def _discard(self, conn: asyncpg.Connection) -> None:
        conn.terminate()
        self._born.pop(conn, None)
        self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        """Let the first waiting task open a connection in a place that became free."""
        if self._closed:
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._open += 1
                waiter.set_result(None)
                return

    async def expire_connections(self) -> None:
        """Replace every connection: the idle ones are closed now, those in use when their
        statement ends (as ``asyncpg.Pool.expire_connections``: after a failover they lead
        to a server that is gone)."""
        self._generation += 1
        idle, self._idle = list(self._idle), deque()
        for conn in idle:
            self._discard(conn)

    async def close(self) -> None:
        """Close the idle connections; those in use are closed when their statement ends.
        Tasks waiting for a connection get ``InterfaceError``."""
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the statement pool is closed"))
        idle, self._idle = list(self._idle), deque()
        self._open -= len(idle)
        for conn in idle:
            self._born.pop(conn, None)
        await asyncio.gather(*(conn.close() for conn in idle), return_exceptions=True)
