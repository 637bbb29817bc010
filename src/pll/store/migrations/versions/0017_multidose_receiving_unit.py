"""The care unit that receives a multidose patient's bags (issue 17): a nursing home or
home-care unit named on the e-multidose registration, by organisation number and name.
Two nullable columns on ``multidose``: a registration names at most one receiving unit,
and it goes with the registration (ended with it, changed by registering again).

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
# 0016 is another piece of issue 17, merged beside this one; the chain is fixed at merge
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("multidose", sa.Column("care_unit_org", sa.String(length=16), nullable=True))
    op.add_column("multidose", sa.Column("care_unit_name", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("multidose") as batch:
        batch.drop_column("care_unit_name")
        batch.drop_column("care_unit_org")
