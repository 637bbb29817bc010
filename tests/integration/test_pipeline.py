"""The rows of one change go to PostgreSQL in one round trip (pll.store.pipeline, issue 20):
the statements run in their order, in the caller's transaction, and an error of any of them
surfaces as SQLAlchemy's exception when the block ends, with nothing written. With
``one_statement`` they go as one statement when no row is written twice, else one by one
in their order."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table, bindparam, event, insert, select, update
from sqlalchemy.exc import IntegrityError

from pll.store import pipeline
from pll.store.db import Database
from pll.store.schema import audit_chain, outbox


def _piped(conn: Any) -> bool:
    pgconn = getattr(conn.connection.driver_connection, "pgconn", None)
    return bool(pgconn is not None and pgconn.pipeline_status)


def _write_then_fail(db: Database, event_id: str) -> None:
    with db.write() as conn:
        if conn.execute(select(audit_chain.c.id)).first() is None:
            conn.execute(insert(audit_chain).values(id=1, seq=0, hash="0" * 64))
        with pipeline.one_round_trip(conn):
            pipeline.execute(
                conn,
                insert(outbox).inline(),
                {
                    "event_id": event_id,
                    "patient_id": "p",
                    "list_id": "l",
                    "list_version": 1,
                    "kind": "test",
                    "created_at": datetime.now(UTC),
                    "payload": "{}",
                },
            )
            # the chain head exists already: a duplicate key
            pipeline.execute(conn, insert(audit_chain), {"id": 1, "seq": 0, "hash": "0" * 64})


def test_a_failing_statement_in_the_block_raises_as_sqlalchemy_does(database: Database) -> None:
    event_id = str(uuid.uuid4())
    with pytest.raises(IntegrityError):
        _write_then_fail(database, event_id)
    with database.read() as conn:
        assert (
            conn.execute(select(outbox.c.id).where(outbox.c.event_id == event_id)).first() is None
        )


def test_statements_in_the_block_are_pipelined_and_a_nested_block_joins(database: Database) -> None:
    seen: list[bool] = []

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("SELECT"):  # not SQLite's BEGIN IMMEDIATE
            seen.append(_piped(conn))

    event.listen(database.engine, "before_cursor_execute", before)
    try:
        with database.write() as conn:
            with pipeline.one_round_trip(conn):
                conn.execute(select(audit_chain.c.id).where(audit_chain.c.id == -1))
                with pipeline.one_round_trip(conn):
                    conn.execute(select(audit_chain.c.id).where(audit_chain.c.id == -2))
                # the inner block did not end the outer one
                conn.execute(select(audit_chain.c.id).where(audit_chain.c.id == -3))
                inside = _piped(conn)
            assert not _piped(conn)
    finally:
        event.remove(database.engine, "before_cursor_execute", before)
    postgres = database.engine.dialect.name == "postgresql"
    assert seen == [postgres] * 3
    assert inside is postgres


@contextmanager
def _counted(database: Database) -> Iterator[list[str]]:
    """The writing statements sent to ``database`` while the block runs."""
    sent: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if not statement.startswith(("BEGIN", "SELECT")):
            sent.append(statement)

    event.listen(database.engine, "before_cursor_execute", before)
    try:
        yield sent
    finally:
        event.remove(database.engine, "before_cursor_execute", before)


#: a table of the test's own, keyed by ``id`` as the tables a change writes are
probe = Table(
    "pipeline_probe",
    MetaData(),
    Column("id", String(40), primary_key=True),
    Column("value", String(10)),
)
_SET = update(probe).where(probe.c.id == bindparam("key"))
_ADD = insert(probe)


@pytest.fixture
def probed(database: Database) -> Iterator[Database]:
    """``database`` with the probe table, dropped again (the schema test compares the
    session's database with the declared schema)."""
    with database.write() as conn:
        probe.create(conn, checkfirst=True)
    yield database
    with database.write() as conn:
        probe.drop(conn, checkfirst=True)


def _settings(database: Database, *keys: str) -> dict[str, str]:
    with database.read() as conn:
        rows = conn.execute(select(probe).where(probe.c.id.in_(keys))).all()
    return {row.id: row.value for row in rows}


def test_independent_rows_go_as_one_statement_and_all_are_written(probed: Database) -> None:
    database = probed
    a, b = (f"t-{uuid.uuid4().hex[:8]}" for _ in range(2))
    with database.write() as conn:
        conn.execute(_ADD, [{"id": a, "value": "0"}])
    with _counted(database) as sent, database.write() as conn, pipeline.one_statement(conn):
        pipeline.execute(conn, _SET, {"key": a, "value": "1"})
        with pipeline.one_statement(conn):  # joins the outer block
            pipeline.execute(conn, _ADD, [{"id": b, "value": "2"}])
    postgres = database.engine.dialect.name == "postgresql"
    assert len(sent) == (1 if postgres else 2)
    assert sent[0].startswith("WITH w0 AS (UPDATE") is postgres
    assert _settings(database, a, b) == {a: "1", b: "2"}


@pytest.mark.parametrize("how", ["updated twice", "inserted then updated"])
def test_a_row_written_twice_goes_statement_by_statement_in_order(
    probed: Database, how: str
) -> None:
    database = probed
    key = f"t-{uuid.uuid4().hex[:8]}"
    with database.write() as conn:
        if how == "updated twice":
            conn.execute(_ADD, [{"id": key, "value": "0"}])
    with _counted(database) as sent, database.write() as conn, pipeline.one_statement(conn):
        if how == "inserted then updated":
            pipeline.execute(conn, _ADD, {"id": key, "value": "1"})
        else:
            pipeline.execute(conn, _SET, {"key": key, "value": "1"})
        pipeline.execute(conn, _SET, {"key": key, "value": "2"})
    # as one statement, the second write would not see the first: "1" would be kept or
    # nothing written
    assert len(sent) == 2
    assert _settings(database, key) == {key: "2"}


_BY_VALUE = update(probe).where(probe.c.value == bindparam("key"))
_COPY = insert(probe).from_select(
    ["id", "value"],
    select(bindparam("copy", type_=String), probe.c.value).where(probe.c.id == bindparam("of")),
)


@pytest.mark.parametrize("how", ["update by another column", "insert of a select"])
def test_a_part_that_is_not_plain_goes_statement_by_statement(probed: Database, how: str) -> None:
    """Only an update of one row by its primary key and an insert of given values are
    combined: anything else could read or write rows the other parts write."""
    key = f"t-{uuid.uuid4().hex[:8]}"
    with probed.write() as conn:
        conn.execute(_ADD, [{"id": key, "value": "0"}])
    with _counted(probed) as sent, probed.write() as conn, pipeline.one_statement(conn):
        pipeline.execute(conn, _SET, {"key": key, "value": "1"})
        if how == "update by another column":
            # as one statement it would not see the row the first part changed to "1"
            pipeline.execute(conn, _BY_VALUE, {"key": "1", "value": "2"})
        else:
            pipeline.execute(conn, _COPY, {"of": key, "copy": f"{key}-copy"})
    assert len(sent) == 2
    if how == "update by another column":
        assert _settings(probed, key) == {key: "2"}
    else:
        assert _settings(probed, key, f"{key}-copy") == {key: "1", f"{key}-copy": "1"}


def _add_then_fail(database: Database, key: str, taken: str) -> None:
    with database.write() as conn, pipeline.one_statement(conn):
        pipeline.execute(conn, _ADD, {"id": key, "value": "1"})
        pipeline.execute(conn, _ADD, {"id": taken, "value": "2"})  # a duplicate key


def test_a_failing_part_of_one_statement_raises_and_writes_nothing(probed: Database) -> None:
    key, taken = (f"t-{uuid.uuid4().hex[:8]}" for _ in range(2))
    with probed.write() as conn:
        conn.execute(_ADD, [{"id": taken, "value": "0"}])
    with _counted(probed) as sent, pytest.raises(IntegrityError):
        _add_then_fail(probed, key, taken)
    assert len(sent) == (1 if probed.engine.dialect.name == "postgresql" else 2)
    assert _settings(probed, key, taken) == {taken: "0"}
