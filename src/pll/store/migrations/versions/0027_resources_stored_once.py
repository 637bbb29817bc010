"""Each entry and prescription stored once (issue 20): ``entry.resource`` and
``prescription.resource`` go; the current resource is the version row at the row's version
(``entry_version``, ``prescription_version``), which every change has always written beside it
with the same text (:func:`pll.store.list_writes.save_version`).

At a million patients the two copies were 6 GB each; a change now writes its resource once,
and the current row it updates is small.

Before dropping anything the upgrade checks that every current row has its version row; if
one has not, it stops and names how many, and nothing is changed. On PostgreSQL dropping a
column is immediate (the space is reused as rows are next written, or at once by
``VACUUM FULL``); SQLite rebuilds the two tables.

Revision ID: 0027
Revises: 0026
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

#: (table, its version table, the version table's key column)
TABLES = (
    ("entry", "entry_version", "entry_id"),
    ("prescription", "prescription_version", "prescription_id"),
)


def _missing(table: str, history: str, key: str) -> int:
    """Current rows without their version row: the upgrade would lose their resource."""
    count = op.get_bind().execute(
        sa.text(
            f"SELECT count(*) FROM {table} t WHERE NOT EXISTS "  # noqa: S608 (constants)
            f"(SELECT 1 FROM {history} h WHERE h.{key} = t.id AND h.version = t.version)"
        )
    )
    return int(count.scalar_one())


def upgrade() -> None:
    for table, history, key in TABLES:
        if missing := _missing(table, history, key):
            raise RuntimeError(
                f"0027: {missing} rows of {table} have no row in {history} at their version; "
                "their resource would be lost, so nothing was changed"
            )
    for table, _, _ in TABLES:
        # not a batch (a copy of the table) on SQLite, which cannot drop a table the version
        # rows refer to with their foreign keys on; SQLite drops a column itself since 3.35
        op.execute(f"ALTER TABLE {table} DROP COLUMN resource")


def downgrade() -> None:
    """The column back, filled from the version rows. On SQLite it stays nullable: making it
    NOT NULL would copy the table, which the version rows' foreign keys forbid."""
    for table, history, key in TABLES:
        op.add_column(table, sa.Column("resource", sa.Text(), nullable=True))
        op.execute(
            f"UPDATE {table} SET resource = (SELECT h.resource FROM {history} h "  # noqa: S608
            f"WHERE h.{key} = {table}.id AND h.version = {table}.version)"
        )
        if op.get_bind().dialect.name == "postgresql":
            op.alter_column(table, "resource", existing_type=sa.Text(), nullable=False)
