"""e-multidose: who may act for the patient's multidose parties, paper multidose, the items
of a pharmacy's proposals, and what is dispensed on each prescription.

Revision ID: 0006
Revises: 0005
"""

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = 64


def upgrade() -> None:
    op.add_column("multidose", sa.Column("doctor_hpr", sa.String(length=16), nullable=True))
    op.add_column("multidose", sa.Column("pharmacy_org", sa.String(length=16), nullable=True))
    # Registrations imported from SFM before this revision: their doctor's HPR number is in
    # the JSON; SFM names pharmacies by HER-id and AKO only, so pharmacy_org stays empty.
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT patient_id, doctor FROM multidose")).all()
    for patient_id, doctor in rows:
        hpr = orjson.loads(doctor).get("hpr") if doctor else None
        if hpr:
            conn.execute(
                sa.text("UPDATE multidose SET doctor_hpr = :hpr WHERE patient_id = :p"),
                {"hpr": str(hpr)[:16], "p": patient_id},
            )
    op.add_column("pll", sa.Column("dispensed", sa.Text(), nullable=True))
    op.create_index("ix_dispense_prescription", "dispense", ["prescription_id"])
    op.create_table(
        "paper_multidose",
        sa.Column("patient_id", sa.String(length=_ID), nullable=False),
        sa.Column("pharmacy", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.Column("registered_by", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.PrimaryKeyConstraint("patient_id"),
    )
    op.create_table(
        "multidose_item",
        sa.Column("id", sa.String(length=_ID), nullable=False),
        sa.Column("proposal_id", sa.String(length=_ID), nullable=False),
        sa.Column("patient_id", sa.String(length=_ID), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("entry_id", sa.String(length=_ID), nullable=True),
        sa.Column("entry_version", sa.Integer(), nullable=True),
        sa.Column("resource", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("list_version", sa.Integer(), nullable=True),
        sa.Column("entry_result", sa.String(length=_ID), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.ForeignKeyConstraint(["proposal_id"], ["pll_message.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_multidose_item_patient", "multidose_item", ["patient_id", "status"])
    op.create_index("ix_multidose_item_proposal", "multidose_item", ["proposal_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_multidose_item_proposal", table_name="multidose_item")
    op.drop_index("ix_multidose_item_patient", table_name="multidose_item")
    op.drop_table("multidose_item")
    op.drop_table("paper_multidose")
    op.drop_index("ix_dispense_prescription", table_name="dispense")
    with op.batch_alter_table("pll") as batch:
        batch.drop_column("dispensed")
    with op.batch_alter_table("multidose") as batch:
        batch.drop_column("pharmacy_org")
        batch.drop_column("doctor_hpr")
