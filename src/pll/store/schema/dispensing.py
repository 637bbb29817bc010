"""What PLL and the pharmacies' and prescribers' systems exchange beside the list (SFM):
the documents ``$getMedication`` gave out, dispensings (M10), the M25 messages, and
multidose — its parties (M27), paper multidose, and the items of a pharmacy's proposals.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, Text

from pll.store.schema.base import ID, UTCDateTime, metadata

#: The documents ``$getMedication`` gave out: a ``$sendMedication`` must relate to the
#: client's latest one, less than four hours old, and account for what it showed.
sfm_read = Table(
    "sfm_read",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("patient_id", String(ID), ForeignKey("patient.id"), nullable=False),
    Column("client_id", String(200)),
    #: the user: hpr:<HPR number>, pid:<fødselsnummer>
    Column("reader_id", String(ID), nullable=False),
    Column("reader", Text, nullable=False),
    Column("read_at", UTCDateTime, nullable=False),
    Column("list_version", Integer, nullable=False),
    #: {"entries": {id: version}, "heads": {id: version}, "views": {id: what it showed}}
    Column("shown", Text, nullable=False),
    Index("ix_sfm_read_patient", "patient_id", "client_id", "reader_id", "read_at"),
)

#: Dispensings (M10) as ``MedicationDispense``.
dispense = Table(
    "dispense",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("patient_id", String(ID), ForeignKey("patient.id"), nullable=False),
    Column("prescription_id", String(ID)),
    Column("handed_over", String(40)),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("resource", Text, nullable=False),
    Index("ix_dispense_patient", "patient_id"),
    Index("ix_dispense_prescription", "prescription_id"),
)

#: M25 messages PLL holds as SFM shows them (``sfm-PLL-info``): a list sent from another
#: system (M25.1), a pharmacy's proposal (M25.2) or packing report (M25.3).
pll_message = Table(
    "pll_message",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("patient_id", String(ID), ForeignKey("patient.id"), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("identifier", String(ID), nullable=False),
    Column("sent_at", UTCDateTime, nullable=False),
    #: for M25.1: the list version it is the message of
    Column("list_version", Integer),
    Column("author", Text),
    Column("detail", Text, nullable=False),
    Index("ix_pll_message_patient", "patient_id", "kind", "sent_at"),
)

#: The patient's multidose parties (M27): the responsible doctor and the one pharmacy.
multidose = Table(
    "multidose",
    metadata,
    Column("patient_id", String(ID), ForeignKey("patient.id"), primary_key=True),
    Column("doctor", Text),
    Column("pharmacy", Text),
    Column("registered_at", UTCDateTime, nullable=False),
    Column("registered_by", Text, nullable=False),
    #: the doctor's HPR number and the pharmacy's organisation number, which access
    #: decisions compare with the caller's (the JSON columns are SFM's shape for display)
    Column("doctor_hpr", String(16)),
    Column("pharmacy_org", String(16)),
    #: the care unit (nursing home, home care) that receives the bags: orgnr and name
    Column("care_unit_org", String(16)),
    Column("care_unit_name", Text),
    #: a pharmacy's own multidose patients (its start page)
    Index("ix_multidose_pharmacy_org", "pharmacy_org"),
)

#: Paper multidose (*papirmultidose*): multidose still ordered on paper beside the PLL, a risk
#: of a fragmented list that every view of the list shows.
paper_multidose = Table(
    "paper_multidose",
    metadata,
    Column("patient_id", String(ID), ForeignKey("patient.id"), primary_key=True),
    #: the pharmacy that packs from the paper order, as the registrant named it
    Column("pharmacy", Text),
    Column("note", Text),
    Column("registered_at", UTCDateTime, nullable=False),
    Column("registered_by", Text, nullable=False),
)

#: The items of a multidose pharmacy's proposals (M25.2; the proposal itself is its
#: ``pll_message``), each accepted or rejected by the responsible doctor.
multidose_item = Table(
    "multidose_item",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("proposal_id", String(ID), ForeignKey("pll_message.id"), nullable=False),
    Column("patient_id", String(ID), ForeignKey("patient.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    #: new, change or remove
    Column("action", String(8), nullable=False),
    Column("entry_id", String(ID)),
    #: the entry version the pharmacy based a change on (relay baton)
    Column("entry_version", Integer),
    #: the proposed MedicationStatement content (new, change)
    Column("resource", Text),
    Column("reason", Text),
    #: pending, accepted or rejected
    Column("status", String(10), nullable=False),
    Column("decided_at", UTCDateTime),
    Column("decided_by", Text),
    Column("decision_reason", Text),
    #: the list version an accepted item became part of
    Column("list_version", Integer),
    Column("entry_result", String(ID)),
    Index("ix_multidose_item_patient", "patient_id", "status"),
    Index("ix_multidose_item_proposal", "proposal_id", "seq"),
)
