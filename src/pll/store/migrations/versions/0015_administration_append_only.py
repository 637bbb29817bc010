"""``medication_administration_version`` is append-only in the database itself (issue 17): a
record of what was given is corrected by a new version, never by changing or deleting an old
one, whatever the application does — as the discrepancy cases' history (0008).

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_TABLE = "medication_administration_version"
_PG_APPEND_ONLY = f"""
CREATE FUNCTION {_TABLE}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{_TABLE} is append-only';
END $$;
CREATE TRIGGER {_TABLE}_append_only
    BEFORE UPDATE OR DELETE ON {_TABLE}
    FOR EACH ROW EXECUTE FUNCTION {_TABLE}_append_only();
"""
_SQLITE_APPEND_ONLY = [
    f"""CREATE TRIGGER {_TABLE}_no_{what} BEFORE {what.upper()}
ON {_TABLE}
BEGIN SELECT RAISE(ABORT, '{_TABLE} is append-only'); END"""
    for what in ("update", "delete")
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_APPEND_ONLY)
    else:
        for statement in _SQLITE_APPEND_ONLY:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {_TABLE}_append_only ON {_TABLE}")
        op.execute(f"DROP FUNCTION {_TABLE}_append_only()")
    else:
        for what in ("update", "delete"):
            op.execute(f"DROP TRIGGER {_TABLE}_no_{what}")
