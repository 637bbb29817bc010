"""The tables, as SQLAlchemy Core metadata.

The schema is *built* by the Alembic migrations (``pll db upgrade``), never by
``create_all``; a test checks that the migrations and this module agree. JSON is stored as
text so the read path can return the stored document untouched.

Timestamps are UTC. SQLite has no time zone type, so :class:`UTCDateTime` stores naive UTC
and hands back aware values on both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    FetchedValue,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC ``datetime`` on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC)


# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

ID = 64  # FHIR ids are at most 64 characters

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
    Column("list_json", Text, nullable=False),
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
    Column("resource", Text, nullable=False),
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
    Column("resource", Text, nullable=False),
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

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("patient_id", String(ID), nullable=False),
    Column("list_id", String(ID), nullable=False),
    Column("list_version", Integer, nullable=False),
    Column("kind", String(60), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("payload", Text, nullable=False),
    #: where the event stands among the writing transactions, filled in by PostgreSQL
    #: (migration 0022; pll.store.repository.add_event); 0 on SQLite and for events written
    #: before. Consumers read in ``(tx, id)`` order (pll.events.outbox).
    Column("tx", BigInteger, nullable=False, server_default=FetchedValue()),
    Index("ix_outbox_tx_id", "tx", "id"),
)

#: One row per access to patient data (DESIGN §3 rule 5). As declared here on SQLite. On
#: PostgreSQL (migration 0023, issue 20) it is partitioned by month of ``recorded_at``
#: (``pll.store.audit_partitions``): the primary key is ``(id, recorded_at)`` and
#: ``uq_audit_event_chain_seq`` is one unique index on ``chain_seq`` per partition, as a
#: partitioned table's unique index must hold the partition key.
audit_event = Table(
    "audit_event",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", String(20), nullable=False),
    Column("resource_type", String(40), nullable=False),
    Column("resource_id", String(ID)),
    Column("patient_id", String(ID)),
    #: the access basis a health worker stated (HPAKUTT, ...), see pll.auth.access
    Column("basis", String(24)),
    #: FHIR AuditEvent.outcome: 0 success, 4 refused
    Column("outcome", String(2), nullable=False, server_default="0"),
    #: for follow-up, such as a blocked worker's emergency access
    Column("flag", String(40)),
    #: HMAC of the record (pll.auth.audit); NULL only for records from before 0002
    Column("mac", String(64)),
    #: the record's place in the sealed chain and the chain hash there; NULL until sealed
    Column("chain_seq", BigInteger),
    Column("chain_hash", String(64)),
    UniqueConstraint("chain_seq", name="uq_audit_event_chain_seq"),
    Index("ix_audit_patient", "patient_id", "recorded_at"),
    Index(
        "ix_audit_unsealed",
        "id",
        postgresql_where=text("chain_seq IS NULL"),
        sqlite_where=text("chain_seq IS NULL"),
    ),
)

#: The head of the sealed audit chain (one row).
audit_chain = Table(
    "audit_chain",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    #: records up to this id, this many, were written before records carried a MAC
    Column("legacy_upto", BigInteger, nullable=False),
    Column("legacy_count", BigInteger, nullable=False),
)

#: The audit records forwarded by a read copy (migration 0026): each by the id the read copy
#: gave it, so a record sent again after a crash between its sending and its marking is
#: taken once (pll.store.audit_receipts). The record itself joins ``audit_event``.
audit_receipt = Table(
    "audit_receipt",
    metadata,
    #: the read copy's id of the record (a UUID)
    Column("record_id", String(36), primary_key=True),
    Column("received_at", UTCDateTime, nullable=False),
)

#: A patient's block on a named health worker (a FHIR Consent with a deny provision).
access_block = Table(
    "access_block",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("patient_id", String(ID), ForeignKey("patient.id"), nullable=False),
    Column("hpr", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Column("resource", Text, nullable=False),
    Index("ix_block_patient_hpr", "patient_id", "hpr"),
)

#: A registered proxy (fullmakt): ``holder`` may act for the patient ``patient_identifier``.
proxy = Table(
    "proxy",
    metadata,
    Column("holder", String(32), primary_key=True),
    Column("patient_identifier", String(32), primary_key=True),
    Column("registered_at", UTCDateTime, nullable=False),
)

# -- the drug catalogue (FEST, catalogue M30) ------------------------------------------------
# Every row carries the catalogue version it came from. An import fills a new version in
# small transactions, then one short transaction makes it the active one, so readers never
# see half a catalogue and a failed import leaves the previous one in place.

#: Search tokens compare bytewise on PostgreSQL too, so a prefix is a plain index range.
Token = String(64).with_variant(String(64, collation="C"), "postgresql")

fest_catalog = Table(
    "fest_catalog",
    metadata,
    Column("version", Integer, primary_key=True),
    #: loading, active or retired
    Column("status", String(10), nullable=False),
    Column("extracted_at", UTCDateTime),
    Column("imported_at", UTCDateTime, nullable=False),
    Column("source", Text, nullable=False),
    Column("counts", Text, nullable=False),
    # one import at a time: at most one version is loading
    Index(
        "ux_fest_catalog_loading",
        "status",
        unique=True,
        postgresql_where=text("status = 'loading'"),
        sqlite_where=text("status = 'loading'"),
    ),
)

fest_drug = Table(
    "fest_drug",
    metadata,
    Column("catalog", Integer, primary_key=True),
    Column("id", String(ID), primary_key=True),
    #: package (Legemiddelpakning), brand (LegemiddelMerkevare), generic (LegemiddelVirkestoff)
    Column("kind", String(10), nullable=False),
    #: what an entry's FEST coding carries: the package's Varenr, else the FEST id
    Column("code", String(ID), nullable=False),
    Column("name", Text, nullable=False),
    Column("atc", String(16)),
    Column("rx_group", String(8)),
    Column("exchange_group", String(ID)),
    Column("brand", String(ID)),
    Column("form", Text),
    Column("active", Boolean, nullable=False),
    #: how long a prescription is valid (Reseptgyldighet, ISO 8601 such as P1Y or P10D), NULL
    #: when FEST gives none; a package has its brand's, a generic its brands' when they agree
    Column("validity", String(16)),
    #: a package's Pakningsinfo as a doctor reads it: "Blisterpakning, 30 stk"
    Column("pack", Text),
    #: the total amount in a package (Multippel x Antall x Mengde) in pack_unit (EnhetPakning)
    Column("pack_amount", Float),
    Column("pack_unit", String(16)),
    Index("ix_fest_drug_code", "catalog", "code"),
    Index("ix_fest_drug_atc", "catalog", "atc"),
    Index("ix_fest_drug_brand", "catalog", "brand"),
)

fest_substance = Table(
    "fest_substance",
    metadata,
    Column("catalog", Integer, primary_key=True),
    Column("id", String(ID), primary_key=True),
    Column("name", Text, nullable=False),
    Column("atc", String(16)),
)

#: VirkestoffMedStyrke: a substance at a strength, which brands and generics name
fest_strength = Table(
    "fest_strength",
    metadata,
    Column("catalog", Integer, primary_key=True),
    Column("id", String(ID), primary_key=True),
    Column("substance", String(ID), nullable=False),
    #: Styrke (and StyrkeNevner) as a doctor reads it: "2,5 mg", "1 mg/ml"
    Column("label", Text),
)

#: What a brand or generic names (a strength, or a substance directly), as the extract says
#: it; resolved into fest_drug_substance once the whole extract is in.
fest_ref = Table(
    "fest_ref",
    metadata,
    Column("catalog", Integer, primary_key=True),
    Column("drug", String(ID), primary_key=True),
    Column("ref", String(ID), primary_key=True),
)

fest_drug_substance = Table(
    "fest_drug_substance",
    metadata,
    Column("catalog", Integer, primary_key=True),
    Column("drug", String(ID), primary_key=True),
    Column("substance", String(ID), primary_key=True),
    Index("ix_fest_drug_substance_substance", "catalog", "substance"),
)

fest_interaction = Table(
    "fest_interaction",
    metadata,
    Column("catalog", Integer, primary_key=True),
    Column("id", String(ID), primary_key=True),
    Column("relevance", String(2), nullable=False),
    Column("consequence", Text, nullable=False),
    Column("mechanism", Text, nullable=False),
    Column("handling", Text, nullable=False),
)

fest_interaction_atc = Table(
    "fest_interaction_atc",
    metadata,
    Column("catalog", Integer, primary_key=True),
    Column("interaction", String(ID), primary_key=True),
    #: which of the two substance groups (1 or 2)
    Column("side", Integer, primary_key=True),
    #: an ATC code at any level, or "@" + a substance id for a substance without one
    Column("atc", String(ID + 1), primary_key=True),
    Column("name", Text),
    Index("ix_fest_interaction_atc_atc", "catalog", "atc"),
)

fest_not_assessed = Table(
    "fest_not_assessed",
    metadata,
    Column("catalog", Integer, primary_key=True),
    Column("atc", String(16), primary_key=True),
)

fest_name = Table(
    "fest_name",
    metadata,
    Column("catalog", Integer, primary_key=True),
    #: one word of a drug's or substance's name, lower case without accents
    Column("token", Token, primary_key=True),
    Column("drug", String(ID), primary_key=True),
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

#: FHIR R4 Subscriptions (rest-hook, Subscriptions Backport style): who is told of changes.
subscription = Table(
    "subscription",
    metadata,
    Column("id", String(ID), primary_key=True),
    #: requested, active, error or off (FHIR Subscription.status)
    Column("status", String(16), nullable=False),
    Column("criteria", String(200), nullable=False),
    #: the patient the criteria names (List?patient=<id>); NULL for every patient
    Column("patient_id", String(ID)),
    Column("endpoint", Text, nullable=False),
    #: the key payloads are signed with (HMAC-SHA256), given by the subscriber
    Column("secret", Text, nullable=False),
    Column("owner", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("resource", Text, nullable=False),
)

#: Each consumer's place in the outbox (the ``(tx, id)`` of the last event it has had), so
#: every consumer gets every event in order, at least once, at its own pace.
consumer = Table(
    "consumer",
    metadata,
    Column("name", String(100), primary_key=True),
    #: the outbox id of the last event it has had
    Column("position", BigInteger, nullable=False),
    #: and that event's ``tx`` (migration 0022; 0 for places made before)
    Column("position_tx", BigInteger, nullable=False, server_default=text("0")),
    Column("attempts", Integer, nullable=False),
    Column("next_try_at", UTCDateTime),
    Column("last_error", Text),
    Column("updated_at", UTCDateTime, nullable=False),
    #: when its deliveries began to fail, until one succeeds again (migration 0020)
    Column("failing_since", UTCDateTime),
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

#: Logins of the web UI. The access token and what the pages remember (the access basis
#: stated per patient, messages to show) stay here; the browser's signed session cookie
#: carries only a random handle, whose SHA-256 is ``id`` (a dump of this table opens no
#: session).
web_login = Table(
    "web_login",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("token", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("state", Text),
    Index("ix_web_login_expires", "expires_at"),
)

#: SMART EHR launches a journal system has registered (pll.services.launches): the user's
#: access token and the patient it has open, until the web UI redeems the launch once. ``id``
#: is the SHA-256 of the opaque launch id the browser carries (a dump of this table opens
#: nothing); the token stays here minutes at most.
smart_launch = Table(
    "smart_launch",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("token", Text, nullable=False),
    #: the journal system (the token's client_id): its PLL_EMBED_ORIGINS may frame the UI
    Column("client_id", String(200), nullable=False),
    #: the user the journal system launched for (HPR number)
    Column("hpr", String(16), nullable=False),
    Column("patient_id", String(ID), ForeignKey("patient.id"), nullable=False),
    #: the fødselsnummer or D-nummer the journal system named, for the page headings
    Column("person_number", String(16), nullable=False),
    Column("basis", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    #: set when the launch is redeemed: it opens one session, once
    Column("used_at", UTCDateTime),
    Index("ix_smart_launch_expires", "expires_at"),
)

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

# -- client systems and technical cases (issue 18; migration 0020) ----------------------------

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

# -- rollout statistics (issue 8; migration 0009) --------------------------------------------

#: The organisation register: who may be counted as live, and where and what they are. Loaded
#: from the national address register's extract (``pll organisations load``); the demo has
#: an invented one. ``live_since`` is set by the statistics consumer the first time the
#: organisation changes or confirms a list.
organisation = Table(
    "organisation",
    metadata,
    Column("id", String(16), primary_key=True),  # organisasjonsnummer
    Column("name", Text, nullable=False),
    Column("municipality", String(4), nullable=False),  # kommunenummer
    Column("region", String(16), nullable=False),
    Column("actor_type", String(40), nullable=False),
    Column("her", String(16)),
    Column("registered_at", UTCDateTime, nullable=False),
    Column("live_since", UTCDateTime),
    #: a GP office's list patients (listepasienter) from the register file; NULL: not given
    #: (issue 19; migration 0021)
    Column("list_patients", Integer),
    Index("ix_organisation_kind", "region", "actor_type"),
)

#: What the statistics remember of each list, so an event can be turned into changes of the
#: counts (a list counted once, moved between confirmation days, multidose flags flipped).
stats_list = Table(
    "stats_list",
    metadata,
    Column("patient_id", String(ID), primary_key=True),
    Column("list_id", String(ID), nullable=False),
    Column("region", String(16), nullable=False),  # "" when the home is not known
    Column("municipality", String(4), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime),
    Column("paper", Boolean, nullable=False),
    Column("emultidose", Boolean, nullable=False),
)

#: The aggregated counts: one row per measure, period and cell, kept current by the
#: statistics consumer with additions, so reading a figure never scans the lists.
stats_count = Table(
    "stats_count",
    metadata,
    Column("measure", String(24), primary_key=True),
    #: "week" (2026-W47), "month" (2026-11), "day" (2026-11-22) or "now" (a current count)
    Column("grain", String(8), primary_key=True),
    Column("period", String(10), primary_key=True),
    Column("region", String(16), primary_key=True),
    Column("municipality", String(4), primary_key=True),
    Column("actor_type", String(40), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

#: What each client system (journal system) did per ISO week (issue 19; migration 0021):
#: changes, conflicts, refusals, overrides, failed sends, counted where they happen (a
#: refusal rolls back everything else it tried). Non-public: read by the rollout team.
client_week_count = Table(
    "client_week_count",
    metadata,
    Column("client_id", String(100), primary_key=True),  # "" when the token named none
    Column("week", String(8), primary_key=True),  # 2026-W47, Norwegian time
    Column("measure", String(24), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

#: Where the statistics consumer is in the audit trail (its place in the outbox is an
#: ordinary ``consumer`` row, so ``/metrics`` shows its lag).
stats_place = Table(
    "stats_place",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: Emergency accesses already counted: one per health worker, patient and day, however many
#: records the access left.
stats_emergency = Table(
    "stats_emergency",
    metadata,
    Column("patient_id", String(ID), primary_key=True),
    Column("hpr", String(16), primary_key=True),
    Column("day", String(10), primary_key=True),
)

#: DPoP proofs accepted within their acceptance window (RFC 9449 §11.1), shared by every
#: process that serves from this database, so a proof is accepted once whichever worker or
#: machine it reaches. ``digest`` is the SHA-256 of the key's thumbprint and the proof's
#: ``jti`` (pll.auth.dpop); a row is deleted a while after ``expires_at``, when its proof is
#: too old to be accepted anyway (pll.store.dpop_proofs).
dpop_proof = Table(
    "dpop_proof",
    metadata,
    Column("digest", LargeBinary, primary_key=True),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_dpop_proof_expires", "expires_at"),
)

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

#: What a bulk import (``pll import lists``/``generate``, issue 20, pll.store.bulk) has done:
#: per job (``generate:seed=1``, ``lists:/abs/folder``) the batches or files loaded, each
#: written in its batch's own transaction so a stopped import continues without duplicates
#: or gaps; and (job ``deferred``) the indexes and foreign keys an import into empty tables
#: dropped, with the SQL that builds each again.
bulk_import = Table(
    "bulk_import",
    metadata,
    Column("job", String(200), primary_key=True),
    Column("item", String(400), primary_key=True),
    Column("detail", Text),
    Column("done_at", UTCDateTime, nullable=False),
)
