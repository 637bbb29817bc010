"""Discrepancy cases (avvik): the case with its current Task, and its append-only history.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = 64

# A case's history is what happened, who did it and when: the database itself refuses to
# change or delete it, whatever the application does.
_PG_APPEND_ONLY = """
CREATE FUNCTION discrepancy_case_version_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'discrepancy_case_version is append-only';
END $$;
CREATE TRIGGER discrepancy_case_version_append_only
    BEFORE UPDATE OR DELETE ON discrepancy_case_version
    FOR EACH ROW EXECUTE FUNCTION discrepancy_case_version_append_only();
"""
_SQLITE_APPEND_ONLY = [
    f"""CREATE TRIGGER discrepancy_case_version_no_{what} BEFORE {what.upper()}
ON discrepancy_case_version
BEGIN SELECT RAISE(ABORT, 'discrepancy_case_version is append-only'); END"""
    for what in ("update", "delete")
]


def upgrade() -> None:
    op.create_table(
        "discrepancy_case",
        sa.Column("id", sa.String(length=_ID), nullable=False),
        sa.Column("patient_id", sa.String(length=_ID), nullable=False),
        sa.Column("list_id", sa.String(length=_ID), nullable=False),
        sa.Column("entry_id", sa.String(length=_ID), nullable=True),
        sa.Column("focus_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("reporter", sa.Text(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("owner_org", sa.String(length=16), nullable=True),
        sa.Column("owner_name", sa.Text(), nullable=True),
        sa.Column("handler", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.ForeignKeyConstraint(["list_id"], ["pll.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_discrepancy_case_patient", "discrepancy_case", ["patient_id", "status"])
    op.create_index("ix_discrepancy_case_owner", "discrepancy_case", ["owner_org", "status"])
    op.create_table(
        "discrepancy_case_version",
        sa.Column("case_id", sa.String(length=_ID), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["discrepancy_case.id"]),
        sa.PrimaryKeyConstraint("case_id", "version"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_APPEND_ONLY)
    else:
        for statement in _SQLITE_APPEND_ONLY:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER discrepancy_case_version_append_only ON discrepancy_case_version")
        op.execute("DROP FUNCTION discrepancy_case_version_append_only()")
    else:
        for what in ("update", "delete"):
            op.execute(f"DROP TRIGGER discrepancy_case_version_no_{what}")
    op.drop_table("discrepancy_case_version")
    op.drop_index("ix_discrepancy_case_owner", table_name="discrepancy_case")
    op.drop_index("ix_discrepancy_case_patient", table_name="discrepancy_case")
    op.drop_table("discrepancy_case")
