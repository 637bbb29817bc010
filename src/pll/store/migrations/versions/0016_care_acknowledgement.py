"""A care unit's acknowledgements of list changes (issue 17): ``care_acknowledgement`` and
the changes each took in, ``care_acknowledged_change``.

Revision ID: 0016
Revises: 0015

Both tables are append-only in the database itself, as the administration records' history
(0015): an acknowledgement is history — the time from a change to its acknowledgement is a
rollout figure — so a later acknowledgement is a new row, never an update of the old one.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_ID = 64
_TABLES = ("care_acknowledgement", "care_acknowledged_change")


def _pg_append_only(table: str) -> str:
    return f"""
CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{table} is append-only';
END $$;
CREATE TRIGGER {table}_append_only
    BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION {table}_append_only();
"""


def _sqlite_append_only(table: str, what: str) -> str:
    return f"""CREATE TRIGGER {table}_no_{what} BEFORE {what.upper()}
ON {table}
BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"""


def upgrade() -> None:
    op.create_table(
        "care_acknowledgement",
        sa.Column("id", sa.String(length=_ID), nullable=False),
        sa.Column("unit_orgnr", sa.String(length=16), nullable=False),
        sa.Column("patient_id", sa.String(length=_ID), nullable=False),
        sa.Column("list_id", sa.String(length=_ID), nullable=False),
        sa.Column("list_version", sa.Integer(), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("acknowledged_by", sa.Text(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.ForeignKeyConstraint(["list_id"], ["pll.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_care_acknowledgement_list",
        "care_acknowledgement",
        ["list_id", "unit_orgnr", "list_version"],
    )
    op.create_index(
        "ix_care_acknowledgement_unit", "care_acknowledgement", ["unit_orgnr", "acknowledged_at"]
    )
    op.create_table(
        "care_acknowledged_change",
        sa.Column("acknowledgement_id", sa.String(length=_ID), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("entry_id", sa.String(length=_ID), nullable=True),
        sa.Column("list_version", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["acknowledgement_id"], ["care_acknowledgement.id"]),
        sa.PrimaryKeyConstraint("acknowledgement_id", "seq"),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in _TABLES:
        if postgres:
            op.execute(_pg_append_only(table))
        else:
            for what in ("update", "delete"):
                op.execute(_sqlite_append_only(table, what))


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in _TABLES:
        if postgres:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(f"DROP FUNCTION {table}_append_only()")
        else:
            for what in ("update", "delete"):
                op.execute(f"DROP TRIGGER {table}_no_{what}")
    op.drop_table("care_acknowledged_change")
    op.drop_index("ix_care_acknowledgement_unit", table_name="care_acknowledgement")
    op.drop_index("ix_care_acknowledgement_list", table_name="care_acknowledgement")
    op.drop_table("care_acknowledgement")
