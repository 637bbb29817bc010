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

:func:`one_statement` goes one step further for a change's rows: the statements of its block
are sent as **one** statement, each a data-modifying ``WITH`` query of it
(https://www.postgresql.org/docs/15/queries-with.html#QUERIES-WITH-MODIFYING). psycopg's own
work (a query's parsing, its prepared-statement bookkeeping, the pipeline's queue) is paid
once instead of once per row. All parts run on one snapshot and none sees another's effect,
so the block is sent that way only when no part could depend on another: each table is
updated at most once per key and never both inserted into and updated at a key it inserts
(else the parts go in order, one statement each, as :func:`one_round_trip` sends them).
Foreign keys are checked when the whole statement ends, so a new entry and its first
version may go together.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import operators
from sqlalchemy.sql.dml import Insert, Update, UpdateBase
from sqlalchemy.sql.elements import BinaryExpression, BindParameter

from pll.store import direct

Params = dict[str, Any] | list[dict[str, Any]]


#: set in a connection's ``info`` while every statement must go through SQLAlchemy's own
#: execution (a bulk load records the service's rows from it: pll.store.bulk.recording);
#: the same statements are sent, each in its own round trip
UNPIPELINED = "pll.unpipelined"

#: set in a connection's ``info`` inside :func:`one_statement`: the parts it will send
_PARTS = "pll.one_statement"


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


@dataclass(frozen=True)
class _Part:
    """One row's statement, held back by :func:`one_statement`."""

    statement: UpdateBase
    sql: str
    params: dict[str, Any]


@contextmanager
def one_statement(conn: Connection) -> Iterator[None]:
    """Send the statements run with :func:`execute` in the block to PostgreSQL as one
    statement of data-modifying ``WITH`` queries, when none can depend on another (the
    module's docstring), in one round trip with whatever else the block runs. They are sent
    when the block ends, after any statement the block runs otherwise: only statements
    whose results nobody reads belong in it. A block inside another joins the outer one.
    Elsewhere (SQLite, a bulk load's recording) as :func:`one_round_trip`."""
    if (
        conn.dialect.name != "postgresql"
        or conn.info.get(UNPIPELINED)
        or conn.info.get(_PARTS) is not None
    ):
        with one_round_trip(conn):
            yield
        return
    parts: list[_Part] = []
    with one_round_trip(conn):
        conn.info[_PARTS] = parts
        try:
            yield
        finally:
            del conn.info[_PARTS]
        _send(conn, parts)


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
    Anywhere else, ``conn.execute``. Inside :func:`one_statement` it is held until the
    block ends; the engine's listeners then see the one statement with a list of values
    (PostgreSQL's ``$n`` placeholders) where they otherwise see a dict."""
    held: list[_Part] | None = conn.info.get(_PARTS)
    driver = conn.connection.driver_connection
    pgconn = getattr(driver, "pgconn", None)
    if not params or (
        (driver is None or pgconn is None or not pgconn.pipeline_status) and held is None
    ):
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
    if held is not None:
        held.extend(_Part(statement, sql, row) for row in sent)
        return
    _run(conn, sql, sent, isinstance(params, list))


def _run(conn: Connection, sql: str, sent: list[dict[str, Any]], many: bool) -> None:
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


#: a parameter's place in SQLAlchemy's SQL for psycopg (``%(name)s``, maybe with a cast after)
_PARAMETER = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class _Combined:
    """The one statement of a shape of parts, with PostgreSQL's ``$n`` placeholders, and
    the parameter each ``$n`` takes: (the part's place, the parameter's name)."""

    sql: str
    order: tuple[tuple[int, str], ...]


#: the statement of each shape (the parts' SQL in order)
_COMBINED: dict[tuple[str, ...], _Combined] = {}
#: past this many shapes the cache starts again rather than grow
MAX_SHAPES = 500


#: at most this many parts go as one statement (a PUT has eight; a large import's change
#: goes part by part, so its SQL neither fills the caches nor nears the protocol's 65,535
#: parameters)
MAX_PARTS = 32


def _send(conn: Connection, parts: list[_Part]) -> None:
    if not parts:
        return
    if not 1 < len(parts) <= MAX_PARTS or not _independent(parts):
        for part in parts:
            _run(conn, part.sql, [part.params], False)
        return
    shape = tuple(part.sql for part in parts)
    combined = _COMBINED.get(shape)
    if combined is None:
        if len(_COMBINED) >= MAX_SHAPES:
            _COMBINED.clear()
        combined = _COMBINED[shape] = _combine(shape)
    values = [parts[n].params[name] for n, name in combined.order]
    cursor = direct.raw_cursor(conn)
    conn.dispatch.before_cursor_execute(conn, cursor, combined.sql, values, None, False)
    cursor.execute(combined.sql, values)
    conn.dispatch.after_cursor_execute(conn, cursor, combined.sql, values, None, False)


def parts_of(sql: str, values: list[Any]) -> list[tuple[str, dict[str, Any]]] | None:
    """The statements (SQLAlchemy's SQL, with ``%(name)s`` placeholders) and parameters a
    statement made by :func:`one_statement` was made of, ``None`` for any other statement:
    for the benchmark, which turns the server's SQL into pgbench scripts (bench/)."""
    for shape, combined in list(_COMBINED.items()):
        if combined.sql == sql:
            params: list[dict[str, Any]] = [{} for _ in shape]
            for (n, name), value in zip(combined.order, values, strict=True):
                params[n][name] = value
            return list(zip(shape, params, strict=True))
    return None


def _combine(shape: tuple[str, ...]) -> _Combined:
    """``WITH w0 AS (first), w1 AS (second), … last``, numbered for a raw cursor."""
    order: list[tuple[int, str]] = []
    places: dict[tuple[int, str], int] = {}

    def numbered(n: int, sql: str) -> str:
        def place(match: re.Match[str]) -> str:
            key = (n, match.group(1))
            if key not in places:
                order.append(key)
                places[key] = len(order)
            return f"${places[key]}"

        return _PARAMETER.sub(place, sql)

    texts = [numbered(n, sql) for n, sql in enumerate(shape)]
    heads = ",\n".join(f"w{n} AS ({text})" for n, text in enumerate(texts[:-1]))
    return _Combined(f"WITH {heads}\n{texts[-1]}", tuple(order))


def _independent(parts: list[_Part]) -> bool:
    """Whether the parts may run on one snapshot: no row is written by two of them (two
    updates of one row in one statement would keep only one; an update of a row the same
    statement inserts would find none). Only plain shapes are combined (:func:`_shape_of`):
    an update of one row by its primary key bound as ``key``, an insert of given values
    whose primary key, if it is one column ``id``, tells its row."""
    inserted: dict[str, set[Any]] = {}
    updated: dict[str, set[Any]] = {}
    for part in parts:
        shape = _shape_of(part.statement, part.sql)
        if shape is None:
            return False
        is_update, table, key_name = shape
        key = part.params.get(key_name) if key_name else None
        seen = (updated if is_update else inserted).setdefault(table, set())
        if key is not None and key in seen:
            return False
        seen.add(key)
    for table, keys in updated.items():
        rows = inserted.get(table, set())
        if None in keys or None in rows or keys & rows:
            return False
    return True


#: what :func:`_shape_of` found for each statement (they are built once, at module level)
_SHAPES: dict[UpdateBase, tuple[bool, str, str | None] | None] = {}
#: SQL that reads or returns rows, or decides on conflicts: it would read the one snapshot
_NOT_PLAIN = re.compile(r"\b(SELECT|FROM|RETURNING|ON CONFLICT|ON DUPLICATE)\b|%%")


def _shape_of(statement: UpdateBase, sql: str) -> tuple[bool, str, str | None] | None:
    """(an update?, its table, the parameter that names its row) of a plain insert or
    update; ``None`` for anything else (a dialect's upsert, ``INSERT … SELECT``, an update
    by something other than its primary key, ``RETURNING``, …), which is not combined."""
    if statement in _SHAPES:
        return _SHAPES[statement]
    found: tuple[bool, str, str | None] | None = None
    table = statement.table
    if isinstance(table, Table) and not _NOT_PLAIN.search(sql):
        key = list(table.primary_key.columns)
        where = statement.whereclause if type(statement) is Update else None
        if (
            where is not None
            and len(key) == 1
            and isinstance(where, BinaryExpression)
            and where.operator is operators.eq
            and where.left is key[0]
            and isinstance(where.right, BindParameter)
            and where.right.key == "key"
        ):
            found = (True, table.name, "key")
        elif type(statement) is Insert:
            found = (False, table.name, "id" if [c.name for c in key] == ["id"] else None)
    _SHAPES[statement] = found
    return found
