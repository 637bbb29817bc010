"""Care units and the patients they give medicines to (issue 17): ``care_unit`` and
``care_registration``.

Revision ID: 0013
Revises: 0012

A registration is ended by setting ``ended_at``, never deleted: who registered the patient
with a unit and who ended it stays. Whether a patient is in a unit's care is asked on every
access decision of a care unit's worker, hence the index on (patient, unit).
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_ID = 64


def upgrade() -> None:
    op.create_table(
        "care_unit",
        sa.Column("orgnr", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("orgnr"),
    )
    op.create_table(
        "care_registration",
        sa.Column("id", sa.String(length=_ID), nullable=False),
        sa.Column("patient_id", sa.String(length=_ID), nullable=False),
        sa.Column("unit_orgnr", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("started_by", sa.Text(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("ended_by", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.ForeignKeyConstraint(["unit_orgnr"], ["care_unit.orgnr"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_care_registration_patient", "care_registration", ["patient_id", "unit_orgnr"]
    )
    op.create_index("ix_care_registration_unit", "care_registration", ["unit_orgnr", "ended_at"])


def downgrade() -> None:
    op.drop_index("ix_care_registration_unit", table_name="care_registration")
    op.drop_index("ix_care_registration_patient", table_name="care_registration")
    op.drop_table("care_registration")
    op.drop_table("care_unit")
