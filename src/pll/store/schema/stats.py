"""Rollout statistics (issue 8; migration 0009): the organisation register, what the
statistics consumer keeps so a figure is read without scanning the lists, and each client
system's weekly counts for the rollout team (issue 19).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text

from pll.store.schema.base import ID, UTCDateTime, metadata

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
