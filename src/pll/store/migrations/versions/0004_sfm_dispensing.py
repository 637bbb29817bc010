"""SFM Basis: reads a send is held to, dispensings, M25 messages and multidose parties.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = 64


def upgrade() -> None:
    op.create_table(
        "sfm_read",
        sa.Column("id", sa.String(length=_ID), nullable=False),
        sa.Column("patient_id", sa.String(length=_ID), nullable=False),
        sa.Column("client_id", sa.String(length=200), nullable=True),
        sa.Column("reader_id", sa.String(length=_ID), nullable=False),
        sa.Column("reader", sa.Text(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=False),
        sa.Column("list_version", sa.Integer(), nullable=False),
        sa.Column("shown", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_sfm_read_patient", "sfm_read", ["patient_id", "client_id", "reader_id", "read_at"]
    )
    op.create_table(
        "dispense",
        sa.Column("id", sa.String(length=_ID), nullable=False),
        sa.Column("patient_id", sa.String(length=_ID), nullable=False),
        sa.Column("prescription_id", sa.String(length=_ID), nullable=True),
        sa.Column("handed_over", sa.String(length=40), nullable=True),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_dispense_patient", "dispense", ["patient_id"])
    op.create_table(
        "pll_message",
        sa.Column("id", sa.String(length=_ID), nullable=False),
        sa.Column("patient_id", sa.String(length=_ID), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("identifier", sa.String(length=_ID), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("list_version", sa.Integer(), nullable=True),
        sa.Column("author", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_pll_message_patient", "pll_message", ["patient_id", "kind", "sent_at"])
    op.create_table(
        "multidose",
        sa.Column("patient_id", sa.String(length=_ID), nullable=False),
        sa.Column("doctor", sa.Text(), nullable=True),
        sa.Column("pharmacy", sa.Text(), nullable=True),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.Column("registered_by", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.PrimaryKeyConstraint("patient_id"),
    )


def downgrade() -> None:
    op.drop_table("multidose")
    op.drop_index("ix_pll_message_patient", table_name="pll_message")
    op.drop_table("pll_message")
    op.drop_index("ix_dispense_patient", table_name="dispense")
    op.drop_table("dispense")
    op.drop_index("ix_sfm_read_patient", table_name="sfm_read")
    op.drop_table("sfm_read")
