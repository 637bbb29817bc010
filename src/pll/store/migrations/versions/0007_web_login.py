"""The web UI's logins (the access token kept on the server, the cookie holding a handle),
and an index for a pharmacy's own multidose patients.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_login",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_web_login_expires", "web_login", ["expires_at"])
    op.create_index("ix_multidose_pharmacy_org", "multidose", ["pharmacy_org"])


def downgrade() -> None:
    op.drop_index("ix_multidose_pharmacy_org", table_name="multidose")
    op.drop_index("ix_web_login_expires", table_name="web_login")
    op.drop_table("web_login")
