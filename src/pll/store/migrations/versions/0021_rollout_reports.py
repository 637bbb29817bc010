"""The rollout team's reports (issue 19): an index for the first lists of a month, the GP
offices' list patients from the organisation register, and per client system and week what
it did (``client_week_count``, and the client system
each list version came through, ``pll_version.client_id``, indexed by time).

Revision ID: 0021
Revises: 0020

Other pieces of issue 19 may add a migration beside this one; the chain is fixed at merge.
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_pll_created", "pll", ["created_at"])
    op.add_column("pll_version", sa.Column("client_id", sa.String(length=100), nullable=True))
    op.create_index("ix_pll_version_recorded", "pll_version", ["recorded_at"])
    op.add_column("organisation", sa.Column("list_patients", sa.Integer(), nullable=True))
    op.create_table(
        "client_week_count",
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column("measure", sa.String(length=24), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "week", "measure"),
    )


def downgrade() -> None:
    op.drop_table("client_week_count")
    with op.batch_alter_table("organisation") as batch:
        batch.drop_column("list_patients")
    op.drop_index("ix_pll_version_recorded", table_name="pll_version")
    with op.batch_alter_table("pll_version") as batch:
        batch.drop_column("client_id")
    op.drop_index("ix_pll_created", table_name="pll")
