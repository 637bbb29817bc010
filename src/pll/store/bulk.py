"""The database side of a bulk import (issue 20): recording the rows a use case inserts,
writing many rows at once (PostgreSQL ``COPY``, SQLite batched inserts), what an import has
done (``bulk_import``, so a stopped import continues), and the indexes and foreign keys an
import into empty tables builds after loading instead of row by row.

Every function takes the caller's connection; what goes into one transaction is the caller's
choice (:mod:`pll.services.bulk_import`: one batch, its rows and its ``bulk_import`` row).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, delete, event, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator

from pll.store import pipeline
from pll.store.schema import bulk_import

#: the job under which the indexes and foreign keys dropped for a load are kept
DEFERRED = "deferred"


@dataclass(frozen=True)
class Inserted:
    """One row an ``INSERT`` wrote: its table and the values the statement set, by column
    name, as Python values before the column types process them. Columns the statement did
    not set (a serial id, a server default) are not in ``values``: the database fills them."""

    table: Table
    values: dict[str, Any]


@dataclass
class Recorded:
    """What :func:`recording` saw: the rows inserted, and any other writing statement."""

    rows: list[Inserted] = field(default_factory=lambda: [])
    others: list[str] = field(default_factory=lambda: [])


@contextmanager
def recording(conn: Connection) -> Iterator[Recorded]:
    """Every row inserted through ``conn`` while the block runs, in the order written, and
    the text of every other statement that is not a read (a use case recorded to be replayed
    must write nothing but inserts: :func:`pll.services.bulk_templates.capture`)."""
    seen = Recorded()
    # held, not just their ids: a context freed would give its id to the next one
    contexts: dict[int, Any] = {}

    def after(
        _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        if context is None or context.compiled is None or not context.isinsert:
            if not statement.lstrip().upper().startswith(_HARMLESS):
                seen.others.append(statement)
            return
        if id(context) in contexts:  # one executemany sent in several round trips
            return
        contexts[id(context)] = context
        table = context.compiled.statement.table
        for params in context.compiled_parameters:
            seen.rows.append(
                Inserted(table, {c.name: params[c.key] for c in table.c if c.key in params})
            )

    event.listen(conn, "after_cursor_execute", after)
    # the rows are read from SQLAlchemy's execution contexts, which a pipelined statement
    # does without (pll.store.pipeline): the same statements, one round trip each
    conn.info[pipeline.UNPIPELINED] = True
    try:
        yield seen
    finally:
        conn.info.pop(pipeline.UNPIPELINED, None)
        event.remove(conn, "after_cursor_execute", after)


#: statements that write nothing (reads, savepoints, the outbox's ordering lock)
_HARMLESS = ("SELECT", "SAVEPOINT", "RELEASE", "ROLLBACK TO", "BEGIN", "SET ")


# -- writing many rows ---------------------------------------------------------------------


def copy_text(value: Any, column: Any, conn: Connection) -> str:
    """``value`` as PostgreSQL's ``COPY … FROM STDIN`` text format reads it for ``column``:
    the column type's own bind processing first (an aware UTC time stored naive), then
    ``\\N`` for NULL and backslash escapes for the characters the format gives a meaning."""
    if isinstance(column.type, TypeDecorator):
        value = column.type.process_bind_param(value, conn.dialect)
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, str):
        return (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    raise TypeError(f"no COPY text for {type(value).__name__} in {column}")


def copy_lines(conn: Connection, table: str, columns: Sequence[str], lines: list[str]) -> None:
    """Write rows given as ``COPY`` text lines (each ending in a newline) into ``table``."""
    if not lines:
        return
    raw: Any = conn.connection.dbapi_connection
    names = ", ".join(f'"{c}"' for c in columns)
    with raw.cursor() as cur, cur.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        step = 2000  # a few MB a write: the buffer stays small, the round trips few
        for i in range(0, len(lines), step):
            copy.write("".join(lines[i : i + step]))


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Write rows given as column values: one statement, executed for every row."""
    if rows:
        conn.execute(insert(table), rows)


# -- what an import has done ---------------------------------------------------------------


def done_items(conn: Connection, job: str) -> list[str]:
    return list(conn.execute(select(bulk_import.c.item).where(bulk_import.c.job == job)).scalars())


def mark_done(conn: Connection, job: str, items: Iterable[str], detail: str | None = None) -> None:
    """Record ``items`` as loaded, in the caller's transaction (the one that loaded them)."""
    now = datetime.now(UTC)
    rows = [{"job": job, "item": i, "detail": detail, "done_at": now} for i in items]
    if rows:
        conn.execute(insert(bulk_import), rows)


class Busy(RuntimeError):
    """Another run of the same import is loading into this database."""


@contextmanager
def only_run(engine: Engine, job: str) -> Iterator[None]:
    """Hold, for the block, a PostgreSQL session lock that only one run of ``job`` can
    hold: two runs would both count the same batches as missing. (SQLite: one writer at a
    time, and the keys stay in place, so a second run's batch fails rather than repeats.)"""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        got = conn.execute(
            text("SELECT pg_try_advisory_lock(7003, hashtext(:job))"), {"job": job}
        ).scalar_one()
        conn.commit()
        if not got:
            raise Busy(f"another import of {job} is running on this database; wait for it")
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(7003, hashtext(:job))"), {"job": job})
            conn.commit()


# -- indexes built after loading (PostgreSQL) ----------------------------------------------


def all_empty(conn: Connection, tables: Iterable[Table]) -> bool:
    return all(conn.execute(select(1).select_from(t).limit(1)).first() is None for t in tables)


_INDEXES = text(
    """
    SELECT i.relname, pg_get_indexdef(i.oid)
    FROM pg_index x
    JOIN pg_class i ON i.oid = x.indexrelid
    JOIN pg_class c ON c.oid = x.indrelid
    WHERE c.relname = ANY(:tables) AND c.relnamespace = current_schema()::regnamespace
      AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.oid)
    ORDER BY i.relname
    """
)
#: constraints of the loaded tables (primary keys, unique, foreign keys) and the foreign
#: keys of other tables that point at them (they depend on the keys dropped)
_CONSTRAINTS = text(
    """
    SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid)
    FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
    WHERE c.relnamespace = current_schema()::regnamespace AND (
        (k.contype IN ('p', 'u', 'f') AND c.relname = ANY(:tables))
        OR (k.contype = 'f' AND k.confrelid IN (
            SELECT oid FROM pg_class WHERE relname = ANY(:tables)
              AND relnamespace = current_schema()::regnamespace)))
    ORDER BY k.contype = 'f' DESC, k.conname
    """
)


def defer_indexes(conn: Connection, tables: Sequence[Table]) -> list[str]:
    """Drop every index and constraint of ``tables`` but ``NOT NULL`` — their secondary
    indexes, primary keys, unique constraints, foreign keys, and the foreign keys of other
    tables pointing at them — only if every one of ``tables`` is empty, keeping in
    ``bulk_import`` the SQL that builds each again (:func:`restore_indexes`), in the same
    transaction. Built once over the loaded rows, an index costs a sort; kept during the
    load, every row costs a random insert into each index, and indexes of random ids grow
    far past memory. A load that writes no row twice needs no key meanwhile (the batches'
    ``bulk_import`` rows see to that); building the keys after proves it. Returns what was
    dropped."""
    if not all_empty(conn, tables):
        return []
    names = [t.name for t in tables]
    dropped: list[str] = []
    for table, name, kind, definition in conn.execute(_CONSTRAINTS, {"tables": names}).all():
        build = f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'
        order = "2 foreign key" if kind == "f" else "1 key"
        mark_done(conn, DEFERRED, [f"{order} {name}"], build)
        conn.execute(text(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"'))
        dropped.append(name)
    for name, found in conn.execute(_INDEXES, {"tables": names}).all():
        # an index of a partitioned table (the audit trail's) reads "ON ONLY": built so,
        # it would be one invalid index with none on the partitions
        definition = found.replace(" ON ONLY ", " ON ", 1)
        mark_done(conn, DEFERRED, [f"1 index {name}"], definition)
        conn.execute(text(f'DROP INDEX "{name}"'))
        dropped.append(name)
    return dropped


def deferred(conn: Connection) -> list[tuple[str, str]]:
    rows = conn.execute(
        select(bulk_import.c.item, bulk_import.c.detail)
        .where(bulk_import.c.job == DEFERRED)
        .order_by(bulk_import.c.item)
    ).all()
    return [(str(r.item), str(r.detail)) for r in rows]


def restore_indexes(engine: Engine) -> list[str]:
    """Build every index and foreign key :func:`defer_indexes` dropped, each in its own
    transaction with its ``bulk_import`` row removed, so a stopped build continues; indexes
    first, then the foreign keys (each checked against the whole table once)."""
    with engine.connect() as conn:
        todo = deferred(conn)
    built = []
    for item, sql in todo:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
            conn.execute(text(sql))
            conn.execute(
                delete(bulk_import).where(bulk_import.c.job == DEFERRED, bulk_import.c.item == item)
            )
        built.append(item.split(" ", 1)[1])
    return built


def has_lz4(engine: Engine) -> bool:
    """Whether this PostgreSQL stores values compressed with lz4 (built with it, 14+)."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                "WHERE name = 'default_toast_compression'"
            )
        ).first()
        return bool(row and row[0])


def vacuum_analyze(engine: Engine, tables: Iterable[Table]) -> None:
    """``VACUUM (ANALYZE)`` the loaded tables (PostgreSQL), so the planner knows their size
    and index-only scans work at once; ``ANALYZE`` on SQLite."""
    if engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        with engine.connect() as plain:
            plain.execution_options(isolation_level="AUTOCOMMIT").execute(
                text(f"VACUUM (ANALYZE) {names}")
            )
        return
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
