"""The migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pll.store.audit_partitions import is_partition
from pll.store.db import Database
from pll.store.schema import metadata


def _declared(name: str | None, kind: str, _parents: Any) -> bool:
    # the audit trail's monthly partitions are made at run time (issue 20)
    return not (kind == "table" and is_partition(name))


def test_migrations_match_the_declared_schema(database: Database) -> None:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": _declared}
        )
        differences = compare_metadata(context, metadata)
    if not database.is_sqlite:
        # PostgreSQL cannot index chain_seq uniquely across the monthly partitions: each
        # partition has its own unique index instead (checked below)
        missing = ("add_constraint", "uq_audit_event_chain_seq")
        assert [d for d in differences if (d[0], getattr(d[1], "name", None)) == missing]
        differences = [d for d in differences if (d[0], getattr(d[1], "name", None)) != missing]
    assert differences == []


def test_each_audit_partition_keeps_chain_positions_unique(database: Database) -> None:
    if database.is_sqlite:
        return
    with database.engine.connect() as conn:
        partitions = conn.execute(
            sa.text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'audit_event'::regclass"
            )
        ).scalars()
        for name in partitions:
            unique = sa.inspect(conn).get_indexes(name)
            assert any(ix["unique"] and ix["column_names"] == ["chain_seq"] for ix in unique), name


def test_upgrade_is_idempotent(database: Database) -> None:
    database.upgrade()
    with database.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0028"
