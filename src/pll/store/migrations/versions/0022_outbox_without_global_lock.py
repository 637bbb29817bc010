"""The outbox without its global lock (issue 20): each event records where it stands among
the writing transactions (``outbox.tx``), and a consumer's place is the pair ``(tx, id)``
(``consumer.position_tx`` beside ``position``), read in that order up to the oldest
transaction still running (:mod:`pll.events.outbox`).

Events written before keep ``tx`` 0 and places keep ``position_tx`` 0: every later event has
a larger ``tx``, so a consumer reads on exactly where it was, missing nothing and getting
nothing twice. On PostgreSQL the server fills ``tx`` itself (no writer names it); on SQLite,
where one writer commits at a time and ids are in commit order, it stays 0.

Revision ID: 0022
Revises: 0021

Other pieces of issue 20 may add a migration beside this one; the chain is fixed at merge.
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

#: The event's place among transactions: its writer's own id, or the newest id of a
#: transaction finished when the insert's snapshot was taken (its ``xmax`` less one) if that
#: is larger (xid8 as bigint; pll.store.repository.add_event says why both).
TX_DEFAULT = (
    "greatest(pg_current_xact_id()::text::bigint, "
    "pg_snapshot_xmax(pg_current_snapshot())::text::bigint - 1)"
)


def upgrade() -> None:
    # 0 for the rows already there; a constant default adds the column without a rewrite
    op.add_column(
        "outbox", sa.Column("tx", sa.BigInteger(), nullable=False, server_default=sa.text("0"))
    )
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("outbox", "tx", server_default=sa.text(TX_DEFAULT))
    op.create_index("ix_outbox_tx_id", "outbox", ["tx", "id"])
    op.add_column(
        "consumer",
        sa.Column("position_tx", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    with op.batch_alter_table("consumer") as batch:
        batch.drop_column("position_tx")
    op.drop_index("ix_outbox_tx_id", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("tx")
