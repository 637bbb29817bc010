"""Access and a tamper-evident audit trail: basis, outcome and seal on audit records; blocks;
proxies.

Revision ID: 0002
Revises: 0001

Records already in the log have no MAC (there was no key when they were written); the chain
head remembers the last of them and how many there were, and cannot be changed, so
``pll audit verify`` can tell those apart from a record inserted later without one.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


#: The columns a record is made of; once written, none may change (the sealer only fills the
#: chain columns, once).
_RECORD = (
    "id",
    "recorded_at",
    "actor",
    "action",
    "resource_type",
    "resource_id",
    "patient_id",
    "basis",
    "outcome",
    "flag",
    "mac",
)
_PG_APPEND_ONLY = f"""
CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'audit_event is append-only: records cannot be deleted';
    END IF;
    IF OLD.chain_seq IS NOT NULL
       OR ({", ".join("NEW." + c for c in _RECORD)})
          IS DISTINCT FROM ({", ".join("OLD." + c for c in _RECORD)}) THEN
        RAISE EXCEPTION 'audit_event is append-only: only the sealer links a record, once';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();

CREATE FUNCTION audit_chain_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.id <> OLD.id OR NEW.seq < OLD.seq
       OR NEW.legacy_upto <> OLD.legacy_upto OR NEW.legacy_count <> OLD.legacy_count THEN
        RAISE EXCEPTION 'audit_chain only moves forward';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_chain_guard BEFORE UPDATE OR DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION audit_chain_guard();

CREATE FUNCTION audit_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: it cannot be truncated', TG_TABLE_NAME;
END $$;
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION audit_no_truncate();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION audit_no_truncate();
"""
_SQLITE_APPEND_ONLY = [
    """CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: records cannot be deleted'); END""",
    f"""CREATE TRIGGER audit_event_seal_only BEFORE UPDATE ON audit_event
WHEN OLD.chain_seq IS NOT NULL OR {" OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in _RECORD)}
BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: only the sealer links a record, once');
END""",
    """CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain
BEGIN SELECT RAISE(ABORT, 'audit_chain only moves forward'); END""",
    """CREATE TRIGGER audit_chain_forward BEFORE UPDATE ON audit_chain
WHEN NEW.id IS NOT OLD.id OR NEW.seq < OLD.seq OR NEW.legacy_upto IS NOT OLD.legacy_upto
  OR NEW.legacy_count IS NOT OLD.legacy_count
BEGIN SELECT RAISE(ABORT, 'audit_chain only moves forward'); END""",
]


def upgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("basis", sa.String(length=24), nullable=True))
        batch_op.add_column(
            sa.Column("outcome", sa.String(length=2), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("flag", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("mac", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("chain_seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("chain_hash", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint("uq_audit_event_chain_seq", ["chain_seq"])
        # Only the records still waiting for the sealer: a small index whatever the log's size.
        batch_op.create_index(
            "ix_audit_unsealed",
            ["id"],
            unique=False,
            postgresql_where=sa.text("chain_seq IS NULL"),
            sqlite_where=sa.text("chain_seq IS NULL"),
        )

    chain = op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("legacy_upto", sa.BigInteger(), nullable=False),
        sa.Column("legacy_count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    upto, count = (
        op.get_bind()
        .execute(sa.text("SELECT COALESCE(MAX(id), 0), COUNT(*) FROM audit_event"))
        .one()
    )
    op.bulk_insert(
        chain,
        [{"id": 1, "seq": 0, "hash": "0" * 64, "legacy_upto": upto, "legacy_count": count}],
    )

    # Append-only in the database itself, whatever the application does; the seal then
    # shows what someone who can drop these triggers did.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_APPEND_ONLY)
    else:
        for statement in _SQLITE_APPEND_ONLY:
            op.execute(statement)

    op.create_table(
        "access_block",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("hpr", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("access_block", schema=None) as batch_op:
        batch_op.create_index("ix_block_patient_hpr", ["patient_id", "hpr"], unique=False)

    op.create_table(
        "proxy",
        sa.Column("holder", sa.String(length=32), nullable=False),
        sa.Column("patient_identifier", sa.String(length=32), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("holder", "patient_identifier"),
    )


def downgrade() -> None:
    op.drop_table("proxy")
    with op.batch_alter_table("access_block", schema=None) as batch_op:
        batch_op.drop_index("ix_block_patient_hpr")
    op.drop_table("access_block")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_event_no_truncate ON audit_event")
        op.execute("DROP TRIGGER audit_event_append_only ON audit_event")
        op.execute("DROP FUNCTION audit_event_append_only()")
        op.execute("DROP TRIGGER audit_chain_no_truncate ON audit_chain")
        op.execute("DROP TRIGGER audit_chain_guard ON audit_chain")
        op.execute("DROP FUNCTION audit_chain_guard()")
        op.execute("DROP FUNCTION audit_no_truncate()")
    else:
        op.execute("DROP TRIGGER audit_event_no_delete")
        op.execute("DROP TRIGGER audit_event_seal_only")
    op.drop_table("audit_chain")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_unsealed")
        batch_op.drop_constraint("uq_audit_event_chain_seq", type_="unique")
        for column in ("chain_hash", "chain_seq", "mac", "flag", "outcome", "basis"):
            batch_op.drop_column(column)
