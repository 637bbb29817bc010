"""Audit records forwarded by the read copy (issue 21): ``audit_receipt``.

Revision ID: 0026
Revises: 0025

The read copy decides reads and writes their audit records in its own database, so lists
stay readable while the store is down, and forwards the records to ``audit_event`` when the
store is back (``docs/events.md``, "The read copy"). Each record carries the id the read
copy gave it; ``audit_receipt`` keeps that id, in the transaction that appends the record,
so a record sent again (the read copy crashed after sending and before marking it sent) is
taken once. One small row per forwarded record.
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_receipt",
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("record_id"),
    )


def downgrade() -> None:
    op.drop_table("audit_receipt")
