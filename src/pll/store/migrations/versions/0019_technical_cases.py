"""Technical cases and the register of client systems (issue 18): ``client_system`` (who
runs each client system PLL's tokens name), ``technical_case`` with its append-only history
``technical_case_version``, the deadline of discrepancy cases (``discrepancy_case.due_at``)
and since when a consumer has been failing (``consumer.failing_since``).

Revision ID: 0019
Revises: 0018

Technical cases have their own tables: one need not be about a patient, while every
discrepancy case is on a list (``discrepancy_case.patient_id`` and ``list_id`` are NOT NULL,
and changing that would rebuild the table on SQLite under its history's foreign key).
Cases reported before this migration have no deadline (``due_at`` NULL) and are never
counted as overdue.
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_ID = 64

_PG_APPEND_ONLY = """
CREATE FUNCTION technical_case_version_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'technical_case_version is append-only';
END $$;
CREATE TRIGGER technical_case_version_append_only
    BEFORE UPDATE OR DELETE ON technical_case_version
    FOR EACH ROW EXECUTE FUNCTION technical_case_version_append_only();
"""
_SQLITE_APPEND_ONLY = [
    f"""CREATE TRIGGER technical_case_version_no_{what} BEFORE {what.upper()}
ON technical_case_version
BEGIN SELECT RAISE(ABORT, 'technical_case_version is append-only'); END"""
    for what in ("update", "delete")
]


def upgrade() -> None:
    op.create_table(
        "client_system",
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("vendor", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("operator_orgnr", sa.String(length=16), nullable=True),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id"),
    )
    op.create_index("ix_client_system_operator", "client_system", ["operator_orgnr"])
    op.create_table(
        "technical_case",
        sa.Column("id", sa.String(length=_ID), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("patient_id", sa.String(length=_ID), nullable=True),
        sa.Column("subscription_id", sa.String(length=_ID), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("reporter", sa.Text(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("owner_org", sa.String(length=16), nullable=False),
        sa.Column("handler", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_technical_case_owner", "technical_case", ["owner_org", "status"])
    op.create_index("ix_technical_case_patient", "technical_case", ["patient_id", "status"])
    op.create_index(
        "ix_technical_case_subscription", "technical_case", ["subscription_id", "status"]
    )
    op.create_table(
        "technical_case_version",
        sa.Column("case_id", sa.String(length=_ID), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["technical_case.id"]),
        sa.PrimaryKeyConstraint("case_id", "version"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_APPEND_ONLY)
    else:
        for statement in _SQLITE_APPEND_ONLY:
            op.execute(statement)
    op.add_column("discrepancy_case", sa.Column("due_at", sa.DateTime(), nullable=True))
    op.add_column("consumer", sa.Column("failing_since", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consumer") as batch:
        batch.drop_column("failing_since")
    with op.batch_alter_table("discrepancy_case") as batch:
        batch.drop_column("due_at")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER technical_case_version_append_only ON technical_case_version")
        op.execute("DROP FUNCTION technical_case_version_append_only()")
    op.drop_table("technical_case_version")
    op.drop_index("ix_technical_case_subscription", table_name="technical_case")
    op.drop_index("ix_technical_case_patient", table_name="technical_case")
    op.drop_index("ix_technical_case_owner", table_name="technical_case")
    op.drop_table("technical_case")
    op.drop_index("ix_client_system_operator", table_name="client_system")
    op.drop_table("client_system")
