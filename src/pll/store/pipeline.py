"""The statements that write one change, sent to PostgreSQL in one round trip (issue 20).

Once the domain has decided a change, what is left is a run of inserts and updates whose
results nobody reads (the list row, its version, each resource and its version, the
provenance targets, the audit row, the event). :func:`one_round_trip` sends them in
psycopg's pipeline mode: each statement stays its own statement, in its order, in the same
transaction, and the server answers them all at once when the block ends
(https://www.psycopg.org/psycopg3/docs/advanced/pipeline.html). Statements that return rows
must not run inside the block: SQLAlchemy reads a result as soon as it executes, before
the pipeline has fetched it. On SQLite, which runs in-process, the block changes nothing.

An error of any statement in the block is raised when the block ends, as SQLAlchemy would
have raised it (:class:`sqlalchemy.exc.IntegrityError` for a duplicate list, …).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import UpdateBase

from pll.store import direct

Params = dict[str, Any] | list[dict[str, Any]]


#: set in a connection's ``info`` while every statement must go through SQLAlchemy's own
#: execution (a bulk load records the service's rows from it: pll.store.bulk.recording);
#: the same statements are sent, each in its own round trip
UNPIPELINED = "pll.unpipelined"


@contextmanager
def one_round_trip(conn: Connection) -> Iterator[None]:
    """Send the statements run in the block to PostgreSQL in one round trip. A block inside
    another joins the outer one (psycopg would otherwise sync when the inner one ends)."""
    if conn.dialect.name != "postgresql" or conn.info.get(UNPIPELINED):
        yield
        return
    driver = conn.connection.driver_connection
    if driver is None or driver.pgconn.pipeline_status:
        yield
        return
    try:
        with driver.pipeline():
            yield
    except psycopg.Error as exc:
        # raised by the sync at the end of the block, outside SQLAlchemy's execute: wrapped
        # as SQLAlchemy wraps a driver's error, so callers catch the same exceptions
        raise DBAPIError.instance(None, None, exc, psycopg.Error, dialect=conn.dialect) from exc


#: each statement compiled once per dialect and set of parameter names, with the bind
#: processors of its parameters (a UTC timestamp's conversion, …); the statements are built
#: once, at module level, so this stays as small as they are few
_COMPILED: dict[tuple[Any, str, frozenset[str]], tuple[str, dict[str, Any]]] = {}


def execute(conn: Connection, statement: UpdateBase, params: Params) -> None:
    """Run a statement that returns no rows (``params``: one row's, or a list of rows' for
    an executemany). Inside :func:`one_round_trip` on PostgreSQL it goes to the driver's
    pipeline directly: SQLAlchemy's execution context, built and torn down per statement,
    costs about as much CPU as the driver's own work (issue 20). The SQL is SQLAlchemy's
    compilation of ``statement``, its parameters SQLAlchemy's with their bind processors
    applied, and the engine's ``before_cursor_execute``/``after_cursor_execute`` listeners
    see it as they see every statement (the benchmarks count and capture through them).
    Anywhere else, ``conn.execute``."""
    driver = conn.connection.driver_connection
    pgconn = getattr(driver, "pgconn", None)
    if driver is None or pgconn is None or not pgconn.pipeline_status or not params:
        conn.execute(statement, params)
        return
    rows = params if isinstance(params, list) else [params]
    key = (statement, conn.dialect.name, frozenset(rows[0]))
    found = _COMPILED.get(key)
    if found is None:
        compiled = statement.compile(dialect=conn.dialect, column_keys=list(rows[0]))
        processors = {
            name: bind.type.bind_processor(conn.dialect) for name, bind in compiled.binds.items()
        }
        found = _COMPILED[key] = (str(compiled), processors)
    sql, processors = found
    sent = [_processed(compiled_params, processors) for compiled_params in rows]
    many = isinstance(params, list)
    cursor = direct.cursor(conn)
    # what SQLAlchemy does around a cursor's execute, for the engine's listeners
    conn.dispatch.before_cursor_execute(conn, cursor, sql, sent if many else sent[0], None, many)
    if many:
        cursor.executemany(sql, sent)
    else:
        cursor.execute(sql, sent[0])
    conn.dispatch.after_cursor_execute(conn, cursor, sql, sent if many else sent[0], None, many)


def _processed(row: dict[str, Any], processors: dict[str, Any]) -> dict[str, Any]:
    missing = processors.keys() - row.keys()
    if missing:
        # a statement with a value SQLAlchemy would have filled in (a literal, a default)
        # does not belong here
        raise ValueError(f"pipeline.execute: no value for {', '.join(sorted(missing))}")
    return {
        name: (process(row[name]) if process is not None else row[name])
        for name, process in processors.items()
    }
