"""The rows of one change go to PostgreSQL in one round trip (pll.store.pipeline, issue 20):
the statements run in their order, in the caller's transaction, and an error of any of them
surfaces as SQLAlchemy's exception when the block ends, with nothing written."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, insert, select
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
