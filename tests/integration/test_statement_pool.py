"""The hot read's connections (pll.store.statement_pool): at most ``size`` to PostgreSQL; a
connection whose statement failed is closed, never used again; tasks cancelled while they
wait or run leave the pool working."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from pll.store.statement_pool import StatementPool
from tests.conftest import LiveServer

PID = "SELECT pg_backend_pid()"


def _dsn(server: LiveServer) -> str:
    if server.db.is_sqlite:
        pytest.skip("the statement pool is PostgreSQL's (asyncpg); SQLite reads without one")
    return server.db.libpq_url()


def test_statements_share_a_few_connections_and_a_failed_one_is_closed(
    server: LiveServer,
) -> None:
    async def run() -> tuple[set[int], int, set[int], bool]:
        pool = StatementPool(_dsn(server), 3)
        try:
            rows = await asyncio.gather(
                *(pool.fetchrow("SELECT pg_backend_pid(), pg_sleep(0.01)") for _ in range(20))
            )
            used = {row[0] for row in rows if row is not None}
            # a statement that fails: its connection (the last one used) goes
            failing = (await pool.fetchrow(PID) or [0])[0]
            with pytest.raises(asyncpg.DivisionByZeroError):
                await pool.fetchrow("SELECT 1 / 0")
            later = {(await pool.fetchrow(PID) or [0])[0] for _ in range(10)}
            await pool.execute("SELECT 1")
            async with asyncio.timeout(10):
                while await _alive(pool, failing):
                    await asyncio.sleep(0.05)
            return used, failing, later, True
        finally:
            await pool.close()

    used, failing, later, gone = asyncio.run(run())
    assert 1 <= len(used) <= 3
    assert failing not in later
    assert gone


async def _alive(pool: StatementPool, pid: int) -> bool:
    row = await pool.fetchrow("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)
    return row is not None and row[0] > 0


def test_cancelled_statements_and_waiters_leave_the_pool_working(server: LiveServer) -> None:
    async def run() -> list[object]:
        pool = StatementPool(_dsn(server), 1)
        try:
            # the only connection is busy; a second task waits for it and is cancelled
            busy = asyncio.create_task(pool.fetchrow("SELECT pg_sleep(0.3)"))
            await asyncio.sleep(0.05)
            waiting = asyncio.create_task(pool.fetchrow("SELECT 2"))
            await asyncio.sleep(0.05)
            waiting.cancel()
            third = asyncio.create_task(pool.fetchrow("SELECT 3"))
            await busy
            answers: list[object] = [(await third or [None])[0]]
            # a statement cancelled while it runs: the next one is answered
            slow = asyncio.create_task(pool.fetchrow("SELECT pg_sleep(10)"))
            await asyncio.sleep(0.1)
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            answers += [(await pool.fetchrow("SELECT 4") or [None])[0]]
            await pool.close()
            with pytest.raises(asyncpg.InterfaceError, match="closed"):
                await pool.fetchrow("SELECT 5")
            return answers
        finally:
            await pool.close()

    assert asyncio.run(run()) == [3, 4]
