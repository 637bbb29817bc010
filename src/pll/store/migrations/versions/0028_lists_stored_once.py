"""Each List stored once, and the list document in its row (issue 20).

``pll.list_json`` goes: the current List is the version row at the list's version
(``pll_version``), which every change has always written with the same text
(:func:`pll.store.list_writes.save_version`), as 0027 did for the entries. The stored
document holds the List too, inside its Bundle; a read of the List alone joins its version row.

On PostgreSQL the document, the hot read's whole answer, is kept in the list's own row:
``STORAGE MAIN`` compresses it and moves it out of line only when the row would not fit a page.
With ``EXTENDED`` (the default) a row over ~2 KB had its largest value moved to the TOAST
table, so a read cost a second index lookup and a second page. Where the server has lz4 the
document is compressed with it, as ``pll import`` already does: it is cheaper to compress on
every write and to decompress on every read than pglz. Both apply to documents written from now
on (docs/operations.md: ``VACUUM FULL pll`` brings the others into their rows, still pglz).

Before dropping anything the upgrade checks that every list has its version row; if one has
not, it stops and names how many, and nothing is changed.

Revision ID: 0028
Revises: 0027
"""

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def _missing() -> int:
    """Lists without a version row at their version: the upgrade would lose their List."""
    count = op.get_bind().execute(
        sa.text(
            "SELECT count(*) FROM pll p WHERE NOT EXISTS (SELECT 1 FROM pll_version v "
            "WHERE v.list_id = p.id AND v.version = p.version)"
        )
    )
    return int(count.scalar_one())


def _has_lz4() -> bool:
    row = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                "WHERE name = 'default_toast_compression'"
            )
        )
        .first()
    )
    return bool(row and row[0])


def upgrade() -> None:
    if missing := _missing():
        raise RuntimeError(
            f"0028: {missing} rows of pll have no row in pll_version at their version; "
            "their List would be lost, so nothing was changed"
        )
    # not a batch (a copy of the table) on SQLite: the version rows refer to it
    op.execute("ALTER TABLE pll DROP COLUMN list_json")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE pll ALTER COLUMN document SET STORAGE MAIN")
        if _has_lz4():
            op.execute("ALTER TABLE pll ALTER COLUMN document SET COMPRESSION lz4")


def downgrade() -> None:
    """The column back, filled from the version rows; the document stored as before. On
    SQLite it stays nullable: making it NOT NULL would copy the table, which the version rows'
    foreign keys forbid."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE pll ALTER COLUMN document SET STORAGE EXTENDED")
        if _has_lz4():  # the upgrade set it (and the clause is PostgreSQL 14's)
            op.execute("ALTER TABLE pll ALTER COLUMN document SET COMPRESSION DEFAULT")
    op.add_column("pll", sa.Column("list_json", sa.Text(), nullable=True))
    op.execute(
        "UPDATE pll SET list_json = (SELECT v.list_json FROM pll_version v "
        "WHERE v.list_id = pll.id AND v.version = pll.version)"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("pll", "list_json", existing_type=sa.Text(), nullable=False)
