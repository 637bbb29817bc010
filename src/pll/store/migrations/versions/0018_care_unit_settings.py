"""A care unit's settings and cases about administrations (issue 17): ``care_unit_settings``
(the clock time of each round and whether group B drugs need a second signer, from a local
day on) and three columns of ``discrepancy_case`` (what a case is about: the kind, the
administration record or the planned dose missed).

Revision ID: 0018
Revises: 0017

Settings are kept per day they apply from: a day already begun keeps the times its doses
were planned and recorded with. The new case columns are NULL for every earlier case, which
were all discrepancies on a list or an entry.
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_ID = 64
_ROUNDS = ("morgen", "formiddag", "middag", "ettermiddag", "kveld", "natt")


def upgrade() -> None:
    op.create_table(
        "care_unit_settings",
        sa.Column("orgnr", sa.String(length=16), nullable=False),
        sa.Column("valid_from", sa.String(length=10), nullable=False),
        *(sa.Column(name, sa.String(length=5), nullable=False) for name in _ROUNDS),
        sa.Column("group_b_second_signature", sa.Boolean(), nullable=False),
        sa.Column("set_at", sa.DateTime(), nullable=False),
        sa.Column("set_by", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["orgnr"], ["care_unit.orgnr"]),
        sa.PrimaryKeyConstraint("orgnr", "valid_from"),
    )
    op.add_column("discrepancy_case", sa.Column("kind", sa.String(length=24), nullable=True))
    op.add_column(
        "discrepancy_case", sa.Column("administration_id", sa.String(length=_ID), nullable=True)
    )
    op.add_column(
        "discrepancy_case", sa.Column("planned_dose", sa.String(length=160), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("discrepancy_case") as batch:
        batch.drop_column("planned_dose")
        batch.drop_column("administration_id")
        batch.drop_column("kind")
    op.drop_table("care_unit_settings")
