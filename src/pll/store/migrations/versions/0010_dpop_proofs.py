"""The DPoP proofs accepted, shared by every server process (RFC 9449 §11.1).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dpop_proof",
        sa.Column("digest", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    # pruning finds the rows whose proofs are too old by this index
    op.create_index("ix_dpop_proof_expires", "dpop_proof", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_dpop_proof_expires", table_name="dpop_proof")
    op.drop_table("dpop_proof")
