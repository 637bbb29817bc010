"""SMART EHR launches (issue 18): ``smart_launch`` holds a launch a journal system has
registered (the user's access token, the patient it has open, the basis it stated) until
PLL's web UI redeems it, once, within minutes.

Revision ID: 0020
Revises: 0019

Other pieces of issue 18 add 0019 and 0020 beside this one; the chain is fixed at merge.
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "smart_launch",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("client_id", sa.String(length=200), nullable=False),
        sa.Column("hpr", sa.String(length=16), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("person_number", sa.String(length=16), nullable=False),
        sa.Column("basis", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_smart_launch_expires", "smart_launch", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_smart_launch_expires", table_name="smart_launch")
    op.drop_table("smart_launch")
