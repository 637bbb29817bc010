"""What a prescriber needs from FEST beside the name: how long a prescription is valid, the
pack a package holds, the strength a brand names; and drug search by brand.

Revision ID: 0011
Revises: 0010

All columns are nullable: FEST gives no validity for many drugs (the e-resept default of one
year applies), and a catalogue imported before this revision has none until the next import.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Reseptgyldighet/Varighet as ISO 8601 (kodeverk 7443: P1Y, P10D); packages take their
    # brand's
    op.add_column("fest_drug", sa.Column("validity", sa.String(length=16), nullable=True))
    # Pakningsinfo as a doctor reads it ("Blisterpakning, 30 stk"), and its total amount
    op.add_column("fest_drug", sa.Column("pack", sa.Text(), nullable=True))
    op.add_column("fest_drug", sa.Column("pack_amount", sa.Float(), nullable=True))
    op.add_column("fest_drug", sa.Column("pack_unit", sa.String(length=16), nullable=True))
    # VirkestoffMedStyrke's Styrke/StyrkeNevner as a doctor reads it ("2,5 mg", "1 mg/ml")
    op.add_column("fest_strength", sa.Column("label", sa.Text(), nullable=True))
    # drug search puts a brand's packages under it: found by this index, not a scan
    op.create_index("ix_fest_drug_brand", "fest_drug", ["catalog", "brand"])


def downgrade() -> None:
    op.drop_index("ix_fest_drug_brand", table_name="fest_drug")
    op.drop_column("fest_strength", "label")
    for name in ("pack_unit", "pack_amount", "pack", "validity"):
        op.drop_column("fest_drug", name)
