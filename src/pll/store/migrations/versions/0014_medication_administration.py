"""What was given (issue 17): ``medication_administration``, the current version of each
recorded administration, and ``medication_administration_version``, every version of it.

Revision ID: 0014
Revises: 0013

A record is never edited: a correction (``entered-in-error``) or a later note (the effect
of an as-needed dose) is a new version, and the old one stays in the version table.
``slot_taken`` holds the planned dose's key while the record stands (NULL once it is
entered in error, and for as-needed doses): its unique index is the database's own guard
against recording one planned dose twice, whatever two nurses do at the same moment.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_ID = 64


def upgrade() -> None:
    op.create_table(
        "medication_administration",
        sa.Column("id", sa.String(length=_ID), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(length=_ID), nullable=False),
        sa.Column("list_id", sa.String(length=_ID), nullable=False),
        sa.Column("entry_id", sa.String(length=_ID), nullable=False),
        sa.Column("entry_version", sa.Integer(), nullable=False),
        sa.Column("slot_key", sa.String(length=160), nullable=True),
        sa.Column("slot_taken", sa.String(length=160), nullable=True),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.String(length=40), nullable=True),
        sa.Column("unit", sa.String(length=40), nullable=True),
        sa.Column("planned_amount", sa.String(length=40), nullable=True),
        sa.Column("performer", sa.Text(), nullable=False),
        sa.Column("verifier_hpr", sa.String(length=16), nullable=True),
        sa.Column("status_reason", sa.String(length=40), nullable=True),
        sa.Column("effective_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.ForeignKeyConstraint(["list_id"], ["pll.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_medication_administration_patient_day",
        "medication_administration",
        ["patient_id", "day"],
    )
    op.create_index(
        "ix_medication_administration_entry_day", "medication_administration", ["entry_id", "day"]
    )
    op.create_index(
        "ux_medication_administration_slot",
        "medication_administration",
        ["slot_taken"],
        unique=True,
    )
    op.create_table(
        "medication_administration_version",
        sa.Column("administration_id", sa.String(length=_ID), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["administration_id"], ["medication_administration.id"]),
        sa.PrimaryKeyConstraint("administration_id", "version"),
    )


def downgrade() -> None:
    op.drop_table("medication_administration_version")
    op.drop_index("ux_medication_administration_slot", table_name="medication_administration")
    op.drop_index("ix_medication_administration_entry_day", table_name="medication_administration")
    op.drop_index(
        "ix_medication_administration_patient_day", table_name="medication_administration"
    )
    op.drop_table("medication_administration")
