"""The migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pll.store.db import Database
from pll.store.schema import metadata


def test_migrations_match_the_declared_schema(database: Database) -> None:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_upgrade_is_idempotent(database: Database) -> None:
    database.upgrade()
    with database.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0024"
