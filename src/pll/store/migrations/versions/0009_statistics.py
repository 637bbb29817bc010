"""Rollout statistics: the organisation register and the counts kept from the events.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = 64


def upgrade() -> None:
    op.create_table(
        "organisation",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("municipality", sa.String(length=4), nullable=False),
        sa.Column("region", sa.String(length=16), nullable=False),
        sa.Column("actor_type", sa.String(length=40), nullable=False),
        sa.Column("her", sa.String(length=16), nullable=True),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.Column("live_since", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_organisation_kind", "organisation", ["region", "actor_type"])
    op.create_table(
        "stats_list",
        sa.Column("patient_id", sa.String(length=_ID), nullable=False),
        sa.Column("list_id", sa.String(length=_ID), nullable=False),
        sa.Column("region", sa.String(length=16), nullable=False),
        sa.Column("municipality", sa.String(length=4), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        sa.Column("paper", sa.Boolean(), nullable=False),
        sa.Column("emultidose", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("patient_id"),
    )
    op.create_table(
        "stats_count",
        sa.Column("measure", sa.String(length=24), nullable=False),
        sa.Column("grain", sa.String(length=8), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("region", sa.String(length=16), nullable=False),
        sa.Column("municipality", sa.String(length=4), nullable=False),
        sa.Column("actor_type", sa.String(length=40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "measure", "grain", "period", "region", "municipality", "actor_type"
        ),
    )
    op.create_table(
        "stats_place",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "stats_emergency",
        sa.Column("patient_id", sa.String(length=_ID), nullable=False),
        sa.Column("hpr", sa.String(length=16), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("patient_id", "hpr", "day"),
    )


def downgrade() -> None:
    for table in ("stats_emergency", "stats_place", "stats_count", "stats_list"):
        op.drop_table(table)
    op.drop_index("ix_organisation_kind", table_name="organisation")
    op.drop_table("organisation")
