"""The drug catalogue (FEST), patients' drug reactions, and overrides kept with a change.

Revision ID: 0003
Revises: 0002

Catalogue rows carry the catalogue version they belong to, so an import can fill a new
version beside the active one and switch in one short transaction.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = 64


def _id(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.String(length=_ID), nullable=False)


def _catalog() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("catalog", sa.Integer(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "fest_catalog",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("extracted_at", sa.DateTime(), nullable=True),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    # one import at a time: a second one cannot start while a version is loading
    op.create_index(
        "ux_fest_catalog_loading",
        "fest_catalog",
        ["status"],
        unique=True,
        postgresql_where=sa.text("status = 'loading'"),
        sqlite_where=sa.text("status = 'loading'"),
    )
    op.create_table(
        "fest_drug",
        _catalog(),
        _id("id"),
        sa.Column("kind", sa.String(length=10), nullable=False),
        _id("code"),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("atc", sa.String(length=16), nullable=True),
        sa.Column("rx_group", sa.String(length=8), nullable=True),
        sa.Column("exchange_group", sa.String(length=_ID), nullable=True),
        sa.Column("brand", sa.String(length=_ID), nullable=True),
        sa.Column("form", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("catalog", "id"),
    )
    op.create_index("ix_fest_drug_atc", "fest_drug", ["catalog", "atc"])
    op.create_index("ix_fest_drug_code", "fest_drug", ["catalog", "code"])
    op.create_table(
        "fest_substance",
        _catalog(),
        _id("id"),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("atc", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("catalog", "id"),
    )
    op.create_table(
        "fest_strength",
        _catalog(),
        _id("id"),
        _id("substance"),
        sa.PrimaryKeyConstraint("catalog", "id"),
    )
    op.create_table(
        "fest_ref",
        _catalog(),
        _id("drug"),
        _id("ref"),
        sa.PrimaryKeyConstraint("catalog", "drug", "ref"),
    )
    op.create_table(
        "fest_drug_substance",
        _catalog(),
        _id("drug"),
        _id("substance"),
        sa.PrimaryKeyConstraint("catalog", "drug", "substance"),
    )
    op.create_index(
        "ix_fest_drug_substance_substance", "fest_drug_substance", ["catalog", "substance"]
    )
    op.create_table(
        "fest_interaction",
        _catalog(),
        _id("id"),
        sa.Column("relevance", sa.String(length=2), nullable=False),
        sa.Column("consequence", sa.Text(), nullable=False),
        sa.Column("mechanism", sa.Text(), nullable=False),
        sa.Column("handling", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("catalog", "id"),
    )
    op.create_table(
        "fest_interaction_atc",
        _catalog(),
        _id("interaction"),
        sa.Column("side", sa.Integer(), nullable=False),
        sa.Column("atc", sa.String(length=_ID + 1), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("catalog", "interaction", "side", "atc"),
    )
    op.create_index("ix_fest_interaction_atc_atc", "fest_interaction_atc", ["catalog", "atc"])
    op.create_table(
        "fest_not_assessed",
        _catalog(),
        sa.Column("atc", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("catalog", "atc"),
    )
    op.create_table(
        "fest_name",
        _catalog(),
        # bytewise on PostgreSQL, so a prefix search is an index range whatever the locale
        sa.Column(
            "token",
            sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql"),
            nullable=False,
        ),
        _id("drug"),
        sa.PrimaryKeyConstraint("catalog", "token", "drug"),
    )
    op.create_table(
        "allergy",
        _id("id"),
        _id("patient_id"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("atc", sa.String(length=16), nullable=True),
        sa.Column("substance", sa.String(length=_ID), nullable=True),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_allergy_patient", "allergy", ["patient_id"])
    op.create_table(
        "allergy_version",
        _id("id"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", "version"),
    )
    with op.batch_alter_table("pll_version", schema=None) as batch_op:
        batch_op.add_column(sa.Column("override", sa.Text(), nullable=True))
    with op.batch_alter_table("pll", schema=None) as batch_op:
        batch_op.add_column(sa.Column("withdrawn", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pll", schema=None) as batch_op:
        batch_op.drop_column("withdrawn")
    with op.batch_alter_table("pll_version", schema=None) as batch_op:
        batch_op.drop_column("override")
    op.drop_table("allergy_version")
    op.drop_index("ix_allergy_patient", table_name="allergy")
    op.drop_table("allergy")
    for table in (
        "fest_name",
        "fest_not_assessed",
        "fest_interaction_atc",
        "fest_interaction",
        "fest_drug_substance",
        "fest_ref",
        "fest_strength",
        "fest_substance",
        "fest_drug",
        "fest_catalog",
    ):
        op.drop_table(table)
