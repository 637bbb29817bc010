"""What ``pll serve`` and ``pll worker`` check before they touch the database, and hold while
they run (issue 20): no bulk import is loading into it, and none stopped half-way.

The lock and the names are :mod:`pll.store.load_guard`; what a stopped import leaves is
:func:`pll.store.bulk.deferred`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from pll.store.db import Database


def start_serving(url: str, command: str, *, child: bool = False) -> Callable[[], None]:
    """Take this process's serving lock and name its connections (PostgreSQL) for
    ``command`` (``serve``, ``worker``), or stop with a clear message while a bulk import
    loads into the database. Held until the process ends or the returned function is
    called (which does nothing on SQLite). ``child``: the worker ``pll serve`` started,
    which holds the lock for it and takes it down with it; the child only names its
    connections (which an import also refuses beside), and saves one connection."""
    from pll.store.load_guard import SERVE, WORKER, LoadRunning, Serving, name_connections

    role = {"serve": SERVE, "worker": WORKER}[command]
    if child:
        if url.startswith("postgresql"):
            name_connections(role)
        return _nothing
    try:
        held = Serving.take(url, role)
    except LoadRunning as exc:
        raise click.ClickException(str(exc)) from None
    return held.release if held is not None else _nothing


def _nothing() -> None:
    return None


def refuse_unfinished_load(database: Database) -> None:
    """Stop with a clear message if a bulk import was killed while the keys of the tables
    it loads were dropped (pll.store.bulk.defer_indexes): PLL never serves a database whose
    patients and lists have no primary or unique keys."""
    from pll.store import bulk

    if database.is_sqlite:
        return
    with database.read() as conn:
        waiting = bulk.deferred(conn)
    if waiting:
        raise click.ClickException(
            f"a bulk import (pll import generate/lists) stopped before it built the "
            f"{len(waiting)} keys and indexes it dropped for the load again; run the same "
            "import command once more to finish it (it continues where it stopped). PLL "
            "does not serve a database without its keys."
        )
