"""Bulk import (issue 20): ``bulk_import`` records what ``pll import lists`` and
``pll import generate`` have loaded, in the same transaction as each batch, so an import that
was stopped continues where it stopped, without duplicates or gaps; and the definitions of
the indexes and foreign keys an import into empty tables drops, until it builds them again.

Revision ID: 0024
Revises: 0021

Other pieces of issue 20 add migrations beside this one; the chain is fixed at merge.
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bulk_import",
        sa.Column("job", sa.String(length=200), nullable=False),
        sa.Column("item", sa.String(length=400), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("done_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("job", "item"),
    )


def downgrade() -> None:
    op.drop_table("bulk_import")
