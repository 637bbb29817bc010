"""The patient, the list (PLL) and everything a change writes to it: every list version,
the entries (``MedicationStatement``) and prescriptions (``MedicationRequest``) with their
versions, what each version wrote (``provenance_target``, the ``Provenance`` search), and the
patient's recorded drug reactions (CAVE).
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from pll.store.schema.base import ID, UTCDateTime, metadata

patient = Table(
    "patient",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("identifier_system", String(64), nullable=False),
    Column("identifier_value", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("resource", Text, nullable=False),
    UniqueConstraint("identifier_system", "identifier_value", name="uq_patient_identifier"),
)

pll = Table(
    "pll",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("patient_id", String(ID), ForeignKey("patient.id"), nullable=False, unique=True),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("baton", Text, nullable=False),
    Column("pause", Text),
    Column("confirmation", Text),
    # When a discontinued entry next drops off (90 days), the stored documents expire.
    Column("expires_at", UTCDateTime),
    # No List: the current one is its version row (pll_version at this version), stored once
    # (migration 0028). The document is the hot read's answer, kept in the row itself
    # (PostgreSQL: STORAGE MAIN, compressed, out of line only past a page).
    Column("document", Text, nullable=False),
    #: entries flagged because the drug catalogue no longer has their medicine (JSON list)
    Column("withdrawn", Text),
    #: per prescription: its last dispensing and what remains (JSON), shown on the list
    Column("dispensed", Text),
    #: the first lists of a month (issue 19, pll.services.rollout_reports): one range scan
    Index("ix_pll_created", "created_at"),
)

pll_version = Table(
    "pll_version",
    metadata,
    Column("list_id", String(ID), ForeignKey("pll.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("author", Text, nullable=False),
    Column("activity", String(200), nullable=False),
    Column("reason", Text),
    Column("touched", Text, nullable=False),
    Column("list_json", Text, nullable=False),
    #: findings the author overrode, with the reason (decision support, DESIGN §3 rule 6)
    Column("override", Text),
    #: the client system a change came through ("" none named; NULL: written by PLL itself,
    #: a pharmacy's record, or before 0021) — the rollout team's per-vendor figures (issue 19)
    Column("client_id", String(100)),
    Index("ix_pll_version_recorded", "recorded_at"),
)

entry = Table(
    "entry",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("list_id", String(ID), ForeignKey("pll.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("last_changed", UTCDateTime, nullable=False),
    Column("changed_by", Text, nullable=False),
    Column("ended_at", UTCDateTime),
    # No resource: the current one is its version row (entry_version at this version), so
    # each resource is stored once (migration 0027, issue 20)
    Index("ix_entry_list_status", "list_id", "status"),
)

entry_version = Table(
    "entry_version",
    metadata,
    Column("entry_id", String(ID), ForeignKey("entry.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("list_version", Integer, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("changed_by", Text, nullable=False),
    Column("resource", Text, nullable=False),
)

prescription = Table(
    "prescription",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("list_id", String(ID), ForeignKey("pll.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("prior_id", String(ID)),
    Column("last_changed", UTCDateTime, nullable=False),
    Column("changed_by", Text, nullable=False),
    # the current resource is its version row, as for entries
    Index("ix_prescription_list_status", "list_id", "status"),
    Index("ix_prescription_prior", "prior_id"),
)

prescription_version = Table(
    "prescription_version",
    metadata,
    Column("prescription_id", String(ID), ForeignKey("prescription.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("list_version", Integer, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("changed_by", Text, nullable=False),
    Column("resource", Text, nullable=False),
)

provenance_target = Table(
    "provenance_target",
    metadata,
    Column("target_type", String(40), primary_key=True),
    Column("target_id", String(ID), primary_key=True),
    Column("list_id", String(ID), primary_key=True),
    Column("list_version", Integer, primary_key=True),
    Column("target_version", Integer, nullable=False),
)

#: A patient's recorded drug reactions (CAVE), as AllergyIntolerance.
allergy = Table(
    "allergy",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("patient_id", String(ID), ForeignKey("patient.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    #: active, inactive or resolved (clinicalStatus); only active ones are checked
    Column("status", String(16), nullable=False),
    Column("atc", String(16)),
    Column("substance", String(ID)),
    Column("resource", Text, nullable=False),
    Index("ix_allergy_patient", "patient_id"),
)

allergy_version = Table(
    "allergy_version",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("author", Text, nullable=False),
    Column("resource", Text, nullable=False),
)
