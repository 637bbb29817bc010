"""The tables, as SQLAlchemy Core metadata.

The schema is *built* by the Alembic migrations (``pll db upgrade``), never by
``create_all``; a test checks that the migrations and this module agree. JSON is stored as
text so the read path can return the stored document untouched.

Timestamps are UTC. SQLite has no time zone type, so :class:`UTCDateTime` stores naive UTC
and hands back aware values on both databases.

The tables are declared by area, all on the one :data:`metadata`
(:mod:`pll.store.schema.base`, with the column types they share); this module names every
one of them, so code imports a table from ``pll.store.schema`` whichever module declares it,
and importing any of them fills :data:`metadata` with them all:

- :mod:`~pll.store.schema.lists`: the patient, the list, its entries, prescriptions and
  versions, drug reactions (CAVE);
- :mod:`~pll.store.schema.events`: the outbox, its consumers, subscriptions;
- :mod:`~pll.store.schema.audit`: the audit trail, patients' blocks, proxies;
- :mod:`~pll.store.schema.catalogue`: the drug catalogue (FEST);
- :mod:`~pll.store.schema.dispensing`: SFM's reads and messages, dispensings, multidose;
- :mod:`~pll.store.schema.care`: care units, administration, acknowledgements;
- :mod:`~pll.store.schema.cases`: discrepancy cases, client systems, technical cases;
- :mod:`~pll.store.schema.stats`: organisations and the rollout statistics;
- :mod:`~pll.store.schema.logins`: web logins, SMART launches, DPoP proofs;
- :mod:`~pll.store.schema.bulk`: bulk imports' progress.
"""

from __future__ import annotations

from pll.store.schema.audit import access_block, audit_chain, audit_event, audit_receipt, proxy
from pll.store.schema.base import ID, BigId, UTCDateTime, metadata
from pll.store.schema.bulk import bulk_import
from pll.store.schema.care import (
    care_acknowledged_change,
    care_acknowledgement,
    care_registration,
    care_unit,
    care_unit_settings,
    medication_administration,
    medication_administration_version,
)
from pll.store.schema.cases import (
    client_system,
    discrepancy_case,
    discrepancy_case_version,
    technical_case,
    technical_case_version,
)
from pll.store.schema.catalogue import (
    Token,
    fest_catalog,
    fest_drug,
    fest_drug_substance,
    fest_interaction,
    fest_interaction_atc,
    fest_name,
    fest_not_assessed,
    fest_ref,
    fest_strength,
    fest_substance,
)
from pll.store.schema.dispensing import (
    dispense,
    multidose,
    multidose_item,
    paper_multidose,
    pll_message,
    sfm_read,
)
from pll.store.schema.events import consumer, outbox, subscription
from pll.store.schema.lists import (
    allergy,
    allergy_version,
    entry,
    entry_version,
    patient,
    pll,
    pll_version,
    prescription,
    prescription_version,
    provenance_target,
)
from pll.store.schema.logins import dpop_proof, smart_launch, web_login
from pll.store.schema.stats import (
    client_week_count,
    organisation,
    stats_count,
    stats_emergency,
    stats_list,
    stats_place,
)

__all__ = [
    "ID",
    "BigId",
    "Token",
    "UTCDateTime",
    "access_block",
    "allergy",
    "allergy_version",
    "audit_chain",
    "audit_event",
    "audit_receipt",
    "bulk_import",
    "care_acknowledged_change",
    "care_acknowledgement",
    "care_registration",
    "care_unit",
    "care_unit_settings",
    "client_system",
    "client_week_count",
    "consumer",
    "discrepancy_case",
    "discrepancy_case_version",
    "dispense",
    "dpop_proof",
    "entry",
    "entry_version",
    "fest_catalog",
    "fest_drug",
    "fest_drug_substance",
    "fest_interaction",
    "fest_interaction_atc",
    "fest_name",
    "fest_not_assessed",
    "fest_ref",
    "fest_strength",
    "fest_substance",
    "medication_administration",
    "medication_administration_version",
    "metadata",
    "multidose",
    "multidose_item",
    "organisation",
    "outbox",
    "paper_multidose",
    "patient",
    "pll",
    "pll_message",
    "pll_version",
    "prescription",
    "prescription_version",
    "provenance_target",
    "proxy",
    "sfm_read",
    "smart_launch",
    "stats_count",
    "stats_emergency",
    "stats_list",
    "stats_place",
    "subscription",
    "technical_case",
    "technical_case_version",
    "web_login",
]
