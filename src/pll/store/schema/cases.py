"""Cases and the client systems they may be about: discrepancy cases (*avvik*) on a list,
and (issue 18; migration 0020) the register of client systems and their technical cases.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, Text

from pll.store.schema.base import ID, UTCDateTime, metadata

#: Discrepancy cases (*avvik*): reported on a list or one entry, routed to the responsible
#: prescriber's organisation, tracked to resolution. The current Task is ``resource``; the
#: columns beside it are what rules and searches need.
discrepancy_case = Table(
    "discrepancy_case",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("patient_id", String(ID), ForeignKey("patient.id"), nullable=False),
    Column("list_id", String(ID), ForeignKey("pll.id"), nullable=False),
    #: the entry reported; NULL for the list as a whole
    Column("entry_id", String(ID)),
    #: the version of the entry (or list) the reporter saw
    Column("focus_version", Integer, nullable=False),
    #: open, in-progress, resolved, rejected or withdrawn (pll.domain.cases.Status)
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("reporter", Text, nullable=False),
    #: the person the case went to, and their organisation (organisation number and name)
    Column("recipient", Text, nullable=False),
    Column("owner_org", String(16)),
    Column("owner_name", Text),
    #: who took the case, once someone has
    Column("handler", Text),
    Column("description", Text, nullable=False),
    Column("reported_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("resource", Text, nullable=False),
    #: what the case is about (pll.domain.cases.Kind); NULL: a discrepancy on the list
    #: (migration 0018)
    Column("kind", String(24)),
    #: a case about an administration: the record, or the planned dose missed (its key)
    Column("administration_id", String(ID)),
    Column("planned_dose", String(160)),
    #: when it is overdue if still open (pll.domain.deadlines); NULL for cases reported
    #: before deadlines were kept (migration 0020)
    Column("due_at", UTCDateTime),
    Index("ix_discrepancy_case_patient", "patient_id", "status"),
    #: an organisation's cases
    Index("ix_discrepancy_case_owner", "owner_org", "status"),
)

#: Every version of a case: who did what when (report, status change, comment), with the Task
#: as it then was. Append-only: the database refuses to change or delete a row.
discrepancy_case_version = Table(
    "discrepancy_case_version",
    metadata,
    Column("case_id", String(ID), ForeignKey("discrepancy_case.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("author", Text, nullable=False),
    #: report, take, comment, resolve, reject or withdraw (pll.domain.cases.Action)
    Column("action", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("comment", Text),
    Column("resource", Text, nullable=False),
)

#: The register of client systems (``pll clients add``): the ``client_id`` their tokens carry,
#: the vendor, a contact, and the organisation that operates it (its technical cases go there;
#: none: to PLL's own operations).
client_system = Table(
    "client_system",
    metadata,
    Column("client_id", String(100), primary_key=True),
    Column("name", Text, nullable=False),
    Column("vendor", Text, nullable=False),
    Column("email", Text),
    Column("phone", String(32)),
    Column("operator_orgnr", String(16)),
    Column("registered_at", UTCDateTime, nullable=False),
    Index("ix_client_system_operator", "operator_orgnr"),
)

#: Technical cases (*feilhåndtering*): about a client system, optionally a patient, routed to
#: the client's operator. The current Task is ``resource``.
technical_case = Table(
    "technical_case",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("client_id", String(100), nullable=False),
    #: the patient it is about; NULL: no patient (and no personal data)
    Column("patient_id", String(ID), ForeignKey("patient.id")),
    #: the subscription whose failures made PLL open it
    Column("subscription_id", String(ID)),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("reporter", Text, nullable=False),
    Column("recipient", Text, nullable=False),
    Column("owner_org", String(16), nullable=False),
    Column("handler", Text),
    Column("description", Text, nullable=False),
    Column("reported_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("resource", Text, nullable=False),
    Index("ix_technical_case_owner", "owner_org", "status"),
    Index("ix_technical_case_patient", "patient_id", "status"),
    Index("ix_technical_case_subscription", "subscription_id", "status"),
)

#: Every version of a technical case. Append-only: the database refuses to change or delete
#: a row.
technical_case_version = Table(
    "technical_case_version",
    metadata,
    Column("case_id", String(ID), ForeignKey("technical_case.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("author", Text, nullable=False),
    Column("action", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("comment", Text),
    Column("resource", Text, nullable=False),
)
