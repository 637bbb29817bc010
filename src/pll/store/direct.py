"""The write path's reads, run on the driver's cursor directly (issue 20).

SQLAlchemy builds an execution context and a result for every statement it runs: for the
few keyed reads of a change (the entry, the list row, the access facts, the entries, the
prescriptions) that costs about as much CPU again as the driver's own work. :func:`rows`
runs such a statement the way SQLAlchemy would — its SQL as SQLAlchemy compiles it for the
dialect, ``IN`` lists expanded as SQLAlchemy expands them
(:meth:`~sqlalchemy.sql.compiler.SQLCompiler.construct_expanded_state`), each parameter
through its type's bind processor, each column through its type's result processor (a UTC
timestamp made aware, SQLite's text dates parsed) — but works all of that out once per
statement and shape of ``IN`` lists, and hands back plain named tuples, which read like
SQLAlchemy's rows (``row.version``, ``row[0]``). The engine's ``before_cursor_execute`` and
``after_cursor_execute`` listeners see each statement as they see SQLAlchemy's (the
benchmarks count and capture statements through them; a bulk load's recording ignores
reads). A driver error is raised as SQLAlchemy would raise it
(:class:`sqlalchemy.exc.DBAPIError` and its kinds).

Only for statements built once (module level): each one is a key of the plan cache.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Select

#: how many plans are kept: one per statement and shape of its ``IN`` lists, so a handful
#: per statement in practice; past this the cache starts again rather than grow
MAX_PLANS = 2000


@dataclass
class _Plan:
    """What running one statement with one shape of parameters takes, worked out once."""

    sql: str
    #: every parameter's value as compiled: constants of the statement (the values of a
    #: literal ``IN`` list) stay, the caller's are replaced on each run
    values: dict[str, Any]
    #: an ``IN`` list parameter's names in the SQL, one per value
    expansion: dict[str, list[str]]
    processors: dict[str, Callable[[Any], Any]]
    #: the order of the parameters for a positional driver (SQLite), else ``None``
    positional: Sequence[str] | None
    keys: tuple[str, ...]
    columns: tuple[Any, ...]
    #: how its rows are made, from the first cursor that ran it (a result processor may
    #: depend on the type the driver reports)
    results: _Results | None = None


@dataclass(frozen=True)
class _Results:
    row: Any
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]


_PLANS: dict[tuple[Any, ...], _Plan] = {}
#: the key of the shared cursor in a driver connection's ``info``
_CURSOR = "pll.cursor"
_RAW_CURSOR = "pll.raw_cursor"


def rows(conn: Connection, statement: Select[Any], params: dict[str, Any]) -> list[Any]:
    """The rows ``statement`` selects with ``params`` (a list value is an ``IN`` list)."""
    driver = conn.connection.driver_connection
    if driver is None or not conn.in_transaction():
        return list(conn.execute(statement, params).all())
    plan = _plan(conn, statement, params)
    values = dict(plan.values)
    for name, value in params.items():
        names = plan.expansion.get(name)
        if names is None:
            values[name] = value
        else:
            values.update(zip(names, value, strict=True))
    for name, process in plan.processors.items():
        values[name] = process(values[name])
    sent: Any = tuple(values[n] for n in plan.positional) if plan.positional else values
    shared = cursor(conn)
    conn.dispatch.before_cursor_execute(conn, shared, plan.sql, sent, None, False)
    try:
        shared.execute(plan.sql, sent)
        fetched = shared.fetchall()
        results = plan.results or _results(conn, plan, shared.description)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(
            plan.sql, sent, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
        ) from exc
    conn.dispatch.after_cursor_execute(conn, shared, plan.sql, sent, None, False)
    make = results.row._make
    if not results.processors:
        return [make(r) for r in fetched]
    out = []
    for r in fetched:
        row = list(r)
        for i, process in results.processors:
            row[i] = process(row[i])
        out.append(make(row))
    return out


def cursor(conn: Connection) -> Any:
    """A cursor of the driver's connection under ``conn``, made once per connection and used
    for every statement run here and in :mod:`pll.store.pipeline`: a psycopg cursor costs
    more to make than a keyed read costs to send. Safe to share: a connection serves one
    thread at a time, and a statement's rows are fetched before the next is sent (or, in a
    pipeline, never read)."""
    return _kept(conn, _CURSOR, lambda driver: driver.cursor())


def raw_cursor(conn: Connection) -> Any:
    """As :func:`cursor`, a cursor that sends its SQL as written, with PostgreSQL's own
    ``$1`` placeholders and a list of values (``psycopg.RawCursor``): psycopg does not
    parse it for ``%(name)s`` placeholders, which it does afresh on every run for a
    statement past 4,096 characters or 50 parameters (its cache's bounds), as a change's
    one statement is (:func:`pll.store.pipeline.one_statement`)."""
    return _kept(conn, _RAW_CURSOR, psycopg.RawCursor)


def _kept(conn: Connection, name: str, make: Callable[[Any], Any]) -> Any:
    """The cursor kept as ``name`` in the connection's ``info``, made again when the driver's
    connection under it changed or it was closed."""
    driver = conn.connection.driver_connection
    info = conn.connection.info
    found = info.get(name)
    if found is None or found.connection is not driver or getattr(found, "closed", False):
        found = info[name] = make(driver)
    return found


def first(conn: Connection, statement: Select[Any], params: dict[str, Any]) -> Any | None:
    """The first row :func:`rows` would give, or ``None``."""
    found = rows(conn, statement, params)
    return found[0] if found else None


def _plan(conn: Connection, statement: Select[Any], params: dict[str, Any]) -> _Plan:
    shape = tuple((k, len(v)) for k, v in params.items() if isinstance(v, list | tuple))
    key = (statement, conn.dialect.name, frozenset(params), shape)
    found = _PLANS.get(key)
    if found is not None:
        return found
    compiled = statement.compile(dialect=conn.dialect)
    if compiled.escaped_bind_names:
        raise ValueError("direct.rows: name the parameters plainly (no escaping)")
    state = compiled.construct_expanded_state(params)
    columns = tuple(statement.selected_columns)
    keys = tuple(statement.selected_columns.keys())
    if len(set(keys)) != len(keys):
        raise ValueError(f"direct.rows: label the columns of {keys}: two have one name")
    plan = _Plan(
        sql=state.statement,
        values=dict(state.parameters),
        expansion={k: list(v) for k, v in state.parameter_expansion.items()},
        processors={k: p for k, p in state.processors.items() if p is not None},
        positional=tuple(state.positiontup) if state.positiontup else None,
        keys=keys,
        columns=columns,
    )
    if len(_PLANS) >= MAX_PLANS:
        _PLANS.clear()
    _PLANS[key] = plan
    return plan


def _results(conn: Connection, plan: _Plan, description: Any) -> _Results:
    processors = []
    for i, column in enumerate(plan.columns):
        coltype = description[i][1] if description else None
        process = column.type.dialect_impl(conn.dialect).result_processor(conn.dialect, coltype)
        if process is not None:
            processors.append((i, process))
    made = _Results(namedtuple("Row", plan.keys), tuple(processors))
    plan.results = made
    return made
