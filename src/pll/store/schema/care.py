"""Care units (nursing homes, home care, sheltered homes; issue 17): the units, their
patients' registrations and settings, what was given (``MedicationAdministration``) and the
units' acknowledgements of list changes.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from pll.store.schema.base import ID, UTCDateTime, metadata

#: Care units (nursing homes, home care, sheltered homes) by organisation number, with the
#: kind and name last stated by a registration (issue 17, pll.domain.care_units).
care_unit = Table(
    "care_unit",
    metadata,
    Column("orgnr", String(16), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("name", Text),
    Column("registered_at", UTCDateTime, nullable=False),
)

#: A patient's registration with a care unit: open while ``ended_at`` is NULL. Rows are
#: ended, never deleted, so who registered and who ended stays (the authors as JSON).
care_registration = Table(
    "care_registration",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("patient_id", String(ID), ForeignKey("patient.id"), nullable=False),
    Column("unit_orgnr", String(16), ForeignKey("care_unit.orgnr"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("started_by", Text, nullable=False),
    Column("ended_at", UTCDateTime),
    Column("ended_by", Text),
    #: the access decision's lookup (is this patient in the caller's unit's care?)
    Index("ix_care_registration_patient", "patient_id", "unit_orgnr"),
    #: a unit's patients (the schedule and /kurve, later)
    Index("ix_care_registration_unit", "unit_orgnr", "ended_at"),
)

#: A care unit's settings (issue 17, migration 0018): the clock time of each round (HH:MM)
#: and whether group B drugs need a second signer, from the local day ``valid_from`` on.
#: A day's row is kept once the day has begun (pll.domain.administration.unit_settings).
care_unit_settings = Table(
    "care_unit_settings",
    metadata,
    Column("orgnr", String(16), ForeignKey("care_unit.orgnr"), primary_key=True),
    Column("valid_from", String(10), primary_key=True),
    Column("morgen", String(5), nullable=False),
    Column("formiddag", String(5), nullable=False),
    Column("middag", String(5), nullable=False),
    Column("ettermiddag", String(5), nullable=False),
    Column("kveld", String(5), nullable=False),
    Column("natt", String(5), nullable=False),
    Column("group_b_second_signature", Boolean, nullable=False),
    Column("set_at", UTCDateTime, nullable=False),
    Column("set_by", Text, nullable=False),
)

#: What was given (issue 17, migration 0014): the current version of each recorded
#: ``MedicationAdministration`` with the columns its rules and searches need. Amounts are
#: decimal text (exact on both databases). ``slot_taken`` is the planned dose's key while
#: the record stands, NULL once entered in error and for as-needed doses: its unique index
#: refuses a second record of one planned dose.
medication_administration = Table(
    "medication_administration",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("patient_id", String(ID), ForeignKey("patient.id"), nullable=False),
    Column("list_id", String(ID), ForeignKey("pll.id"), nullable=False),
    Column("entry_id", String(ID), nullable=False),
    Column("entry_version", Integer, nullable=False),
    #: the planned dose (pll.domain.administration.PlannedDose.key); NULL: as needed
    Column("slot_key", String(160)),
    Column("slot_taken", String(160)),
    #: the local day (Europe/Oslo) it belongs to: the planned dose's, else the day given
    Column("day", String(10), nullable=False),
    #: completed, not-done or entered-in-error
    Column("status", String(16), nullable=False),
    Column("amount", String(40)),
    Column("unit", String(40)),
    Column("planned_amount", String(40)),
    #: who gave it (the caller, as JSON) and the second signer's HPR number
    Column("performer", Text, nullable=False),
    Column("verifier_hpr", String(16)),
    #: why it was not given (pll.domain.administration.records.NotGiven)
    Column("status_reason", String(40)),
    Column("effective_at", UTCDateTime, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("resource", Text, nullable=False),
    Index("ix_medication_administration_patient_day", "patient_id", "day"),
    Index("ix_medication_administration_entry_day", "entry_id", "day"),
    Index("ux_medication_administration_slot", "slot_taken", unique=True),
)

#: Every version of an administration record, as it then was.
medication_administration_version = Table(
    "medication_administration_version",
    metadata,
    Column(
        "administration_id",
        String(ID),
        ForeignKey("medication_administration.id"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("author", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("resource", Text, nullable=False),
)

#: A care unit's acknowledgement of a list's changes (issue 17, migration 0016): the list
#: version a nurse of the unit has read, who and when. Kept as history, never overwritten
#: (append-only in the database): the unit's newest acknowledgement is its base, the rows
#: before it say when each change was taken in.
care_acknowledgement = Table(
    "care_acknowledgement",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("unit_orgnr", String(16), nullable=False),
    Column("patient_id", String(ID), ForeignKey("patient.id"), nullable=False),
    Column("list_id", String(ID), ForeignKey("pll.id"), nullable=False),
    #: the list version acknowledged, and the unit's base before it
    Column("list_version", Integer, nullable=False),
    Column("base_version", Integer, nullable=False),
    Column("acknowledged_by", Text, nullable=False),
    Column("acknowledged_at", UTCDateTime, nullable=False),
    #: the unit's base for a list (its newest acknowledgement)
    Index("ix_care_acknowledgement_list", "list_id", "unit_orgnr", "list_version"),
    #: the statistics per unit over a period
    Index("ix_care_acknowledgement_unit", "unit_orgnr", "acknowledged_at"),
)

#: Each change an acknowledgement took in, with when it was made: the statistics' time from
#: change to acknowledgement per unit, without reading the lists again.
care_acknowledged_change = Table(
    "care_acknowledged_change",
    metadata,
    Column(
        "acknowledgement_id",
        String(ID),
        ForeignKey("care_acknowledgement.id"),
        primary_key=True,
    ),
    Column("seq", Integer, primary_key=True),
    #: pll.domain.administration.changes.ChangeKind
    Column("kind", String(16), nullable=False),
    Column("entry_id", String(ID)),
    Column("list_version", Integer, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
)
